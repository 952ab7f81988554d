//! XML: generic (a row format: one element per row, one child per column; generic.rs) or
//! mapped onto a user's XSD (`xsd` + `xml_mapping`: the mapping is compiled against the schema
//! (xsd.rs, mapping.rs) and the document is written in schema order from the export's batches
//! (writer.rs)). `validate: true` checks the file against the XSD before it is delivered
//! (validate.rs).

pub mod generic;
pub mod mapping;
pub mod text;
pub mod validate;
pub mod writer;
pub mod xsd;

use std::path::{Path, PathBuf};

use arrow::datatypes::{Schema, SchemaRef};
use serde_json::Value;

use crate::blob::{BlobError, keys};
use crate::format::{FileContext, FileEncoder, FormatError};
use crate::model::ValidationErrors;
use crate::model::spec::FormatSpecObject;
use crate::model::xml::XsdSource;
use crate::source::SourceContext;
pub use xsd::Bundle;

/// Largest schema document read.
const MAX_XSD_BYTES: usize = 16 << 20;
/// Most documents in one bundle.
const MAX_XSD_FILES: usize = 64;

/// Why a schema bundle could not be read.
#[derive(Debug)]
pub enum BundleError {
    /// The reference or a document is wrong: a validation error for the request.
    Invalid(ValidationErrors),
    /// Storage trouble: worth retrying.
    Storage(String),
}

fn invalid(pointer: &str, value: impl Into<Value>, allowed: impl Into<String>) -> BundleError {
    BundleError::Invalid(ValidationErrors::single(pointer, value, allowed))
}

/// Read the XSD a spec names, and every document it imports or includes.
pub async fn load_bundle(ctx: SourceContext<'_>, src: &XsdSource) -> Result<Bundle, BundleError> {
    const P: &str = "/format/xsd";
    let given = [src.path.is_some(), src.local_path.is_some(), src.inline.is_some()].iter().filter(|b| **b).count();
    if given != 1 {
        return Err(invalid(P, serde_json::to_value(src).unwrap_or_default(), "exactly one of path, local_path or inline"));
    }
    if let Some(text) = &src.inline {
        let refs =
            Bundle::references(text).map_err(|e| invalid(&format!("{P}/inline"), Value::Null, format!("an XML Schema document: {e}")))?;
        if !refs.is_empty() {
            return Err(invalid(
                &format!("{P}/inline"),
                Value::Null,
                format!("a schema without imports or includes (it names {}); give a path to a folder that holds them", refs.join(", ")),
            ));
        }
        return Ok(Bundle { main: "schema.xsd".into(), files: [("schema.xsd".to_string(), text.clone())].into() });
    }
    let (pointer, given_path) = match (&src.path, &src.local_path) {
        (Some(p), _) => (format!("{P}/path"), p.clone()),
        (_, Some(p)) => (format!("{P}/local_path"), p.clone()),
        _ => unreachable!("one of the three is set"),
    };
    let (folder, main) = match given_path.rsplit_once('/') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (String::new(), given_path.clone()),
    };
    let local_folder = match &src.local_path {
        Some(_) => Some(allowed_local_folder(ctx.dataset_roots, &given_path).ok_or_else(|| {
            invalid(&pointer, given_path.as_str(), "an existing .xsd file under one of the host's dataset roots (--dataset-root)")
        })?),
        None => None,
    };
    let mut bundle = Bundle { main: main.clone(), files: Default::default() };
    let mut todo = vec![main];
    while let Some(rel) = todo.pop() {
        if bundle.files.contains_key(&rel) {
            continue;
        }
        if bundle.files.len() >= MAX_XSD_FILES {
            return Err(invalid(&pointer, given_path.as_str(), format!("a schema of at most {MAX_XSD_FILES} documents")));
        }
        let bytes = match &local_folder {
            Some(dir) => read_local(dir, &rel).map_err(|e| invalid(&pointer, given_path.as_str(), e))?,
            None => {
                let key = keys::dataset(ctx.tenant, &if folder.is_empty() { rel.clone() } else { format!("{folder}/{rel}") });
                match ctx.blobs.get_bytes(&key).await {
                    Ok(b) => b.to_vec(),
                    Err(BlobError::NotFound(_)) => {
                        return Err(invalid(&pointer, given_path.as_str(), format!("an XSD in the dataset area; `{rel}` is not there")));
                    }
                    Err(e) => return Err(BundleError::Storage(e.to_string())),
                }
            }
        };
        if bytes.len() > MAX_XSD_BYTES {
            return Err(invalid(
                &pointer,
                given_path.as_str(),
                format!("schema documents of at most {} MB; `{rel}` is larger", MAX_XSD_BYTES >> 20),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(&pointer, given_path.as_str(), format!("UTF-8 schema documents; `{rel}` is not")))?;
        let refs =
            Bundle::references(&text).map_err(|e| invalid(&pointer, given_path.as_str(), format!("XML Schema documents: `{rel}`: {e}")))?;
        for r in refs {
            todo.push(Bundle::resolve(&rel, &r).map_err(|e| invalid(&pointer, given_path.as_str(), format!("`{rel}`: {e}")))?);
        }
        bundle.files.insert(rel, text);
    }
    Ok(bundle)
}

/// The folder of `path` when the file is under one of `roots` (links resolved).
fn allowed_local_folder(roots: &[PathBuf], path: &str) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let roots: Vec<PathBuf> = roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()).collect();
    if !real.is_file() || !roots.iter().any(|r| real.starts_with(r)) {
        return None;
    }
    Some(Path::new(path).parent()?.to_path_buf())
}

/// A document of a local bundle; it must stay inside the main document's folder.
fn read_local(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = dir.join(rel);
    let real = std::fs::canonicalize(&p).map_err(|_| format!("`{rel}` next to the schema (it is missing)"))?;
    let base = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
    if !real.starts_with(&base) {
        return Err(format!("schema documents inside the schema's folder; `{rel}` leads elsewhere"));
    }
    std::fs::read(&real).map_err(|e| e.to_string())
}

/// Everything a mapped XML file needs, prepared before its rows: the schema and the plan.
pub struct Prepared {
    pub bundle: Bundle,
    pub plan: mapping::Plan,
}

/// Compile the spec's mapping for `columns`: the errors name the mapping's fields.
pub fn prepare(o: &FormatSpecObject, bundle: Bundle, columns: &Schema, sort: &[String]) -> Result<Prepared, ValidationErrors> {
    let set = xsd::SchemaSet::load(&bundle)
        .map_err(|e| ValidationErrors::single("/format/xsd", Value::Null, format!("an XML Schema this service reads: {e}")))?;
    let Some(m) = &o.xml_mapping else {
        return Err(ValidationErrors::single("/format/xml_mapping", Value::Null, "a mapping onto the schema"));
    };
    let plan = mapping::compile(&set, m, columns, sort)?;
    Ok(Prepared { bundle, plan })
}

/// The encoder of a mapped XML file.
pub fn mapped_encoder(prepared: Prepared, schema: &SchemaRef, ctx: &FileContext, out: &Path) -> Result<Box<dyn FileEncoder>, FormatError> {
    Ok(Box::new(writer::MappedXml::create(prepared.plan, schema.clone(), ctx, out)?))
}

/// Option checks that need no schema.
pub fn validate_options(o: &FormatSpecObject, errs: &mut ValidationErrors) {
    for (name, v) in [("root_element", &o.root_element), ("row_element", &o.row_element)] {
        if let Some(v) = v
            && !text::is_ncname(v)
        {
            errs.push(
                format!("/format/{name}"),
                v.as_str(),
                "an XML name: a letter or `_`, then letters, digits, `_`, `-` or `.` (not starting with `xml`)",
            );
        }
    }
    let mapped = o.xml_mapping.is_some();
    if mapped && o.xsd.is_none() {
        errs.push("/format/xsd", Value::Null, "the XSD the mapping places values on");
    }
    if mapped {
        for (name, given) in
            [("root_element", o.root_element.is_some()), ("row_element", o.row_element.is_some()), ("namespace", o.namespace.is_some())]
        {
            if given {
                errs.push(format!("/format/{name}"), Value::Null, "not with xml_mapping: the schema and the mapping name the elements");
            }
        }
    }
    if o.validate == Some(true) && o.xsd.is_none() {
        errs.push("/format/validate", true, "an `xsd` to validate against");
    }
}

/// Check the written file when the spec asks: `Err` names the first errors.
pub fn check_file(o: &FormatSpecObject, bundle: Option<&Bundle>, file: &Path, work_dir: &Path) -> Result<(), FormatError> {
    if o.validate != Some(true) {
        return Ok(());
    }
    let bundle = bundle.ok_or_else(|| FormatError::Internal("validate without a schema".into()))?;
    match validate::validate(bundle, file, work_dir) {
        Ok(errors) if errors.is_empty() => Ok(()),
        Ok(errors) => {
            let list: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
            let more = if errors.len() > 3 { " (and more)" } else { "" };
            Err(FormatError::Invalid(format!("the file does not validate against the XSD: {}{more}", list.join("; "))))
        }
        Err(e) => Err(FormatError::Internal(e)),
    }
}
