//! `validate: true`: the written file checked against its XSD by libxml2's schema validator,
//! streaming (the file is never held in memory). libxml2 is loaded when a validation is asked
//! for (`libxml2.so.2`), so hosts and Lambda functions that never validate do not need it; a
//! host without it fails such an export with a message that says so.
//!
//! The schema documents are written to a private folder with their relative layout, so imports
//! resolve among them; bundles were read with DTDs refused and imports confined to the
//! bundle (xsd.rs), and the file checked is one this service wrote (no DTD), so libxml2 never
//! reaches for an entity or the network.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::sync::Mutex;

use super::xsd::Bundle;

/// At most this many errors are reported.
pub const MAX_ERRORS: usize = 10;

/// One validation error: where, and what libxml2 said.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub line: u32,
    /// The element path at that line (`/report/transaction/transmode_code`).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.path, self.message)
    }
}

/// libxml2's `xmlError` (stable since 2.x).
#[repr(C)]
struct XmlError {
    domain: c_int,
    code: c_int,
    message: *const c_char,
    level: c_int,
    file: *const c_char,
    line: c_int,
    str1: *const c_char,
    str2: *const c_char,
    str3: *const c_char,
    int1: c_int,
    int2: c_int,
    ctxt: *mut c_void,
    node: *mut c_void,
}

type ErrorFn = unsafe extern "C" fn(*mut c_void, *const XmlError);

struct Lib {
    _lib: libloading::Library,
    init: unsafe extern "C" fn(),
    new_parser: unsafe extern "C" fn(*const c_char) -> *mut c_void,
    parser_errors: unsafe extern "C" fn(*mut c_void, ErrorFn, *mut c_void),
    parse: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    free_parser: unsafe extern "C" fn(*mut c_void),
    new_valid: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
    valid_errors: unsafe extern "C" fn(*mut c_void, ErrorFn, *mut c_void),
    validate_file: unsafe extern "C" fn(*mut c_void, *const c_char, c_int) -> c_int,
    free_valid: unsafe extern "C" fn(*mut c_void),
    free_schema: unsafe extern "C" fn(*mut c_void),
}

/// One load per process; libxml2's schema code is used by one validation at a time.
static LIB: Mutex<Option<Result<&'static Lib, String>>> = Mutex::new(None);

fn load() -> Result<Lib, String> {
    // SAFETY: loading libxml2 runs its constructors, which only set up its globals.
    let lib = unsafe { libloading::Library::new("libxml2.so.2") }
        .map_err(|e| format!("validate: true needs libxml2 (libxml2.so.2) on the host running the encode stage: {e}"))?;
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's type is the one libxml2's headers declare.
            *unsafe { lib.get($name) }.map_err(|e| format!("libxml2 lacks {}: {e}", String::from_utf8_lossy($name)))?
        };
    }
    Ok(Lib {
        init: sym!(b"xmlInitParser"),
        new_parser: sym!(b"xmlSchemaNewParserCtxt"),
        parser_errors: sym!(b"xmlSchemaSetParserStructuredErrors"),
        parse: sym!(b"xmlSchemaParse"),
        free_parser: sym!(b"xmlSchemaFreeParserCtxt"),
        new_valid: sym!(b"xmlSchemaNewValidCtxt"),
        valid_errors: sym!(b"xmlSchemaSetValidStructuredErrors"),
        validate_file: sym!(b"xmlSchemaValidateFile"),
        free_valid: sym!(b"xmlSchemaFreeValidCtxt"),
        free_schema: sym!(b"xmlSchemaFree"),
        _lib: lib,
    })
}

struct Collected {
    errors: Vec<(u32, String)>,
    total: usize,
}

unsafe extern "C" fn collect(data: *mut c_void, err: *const XmlError) {
    // SAFETY: `data` is the `Collected` passed with this callback, alive for the call that
    // reports; `err` is libxml2's error, valid during the callback.
    let (c, e) = unsafe { (&mut *(data as *mut Collected), &*err) };
    c.total += 1;
    if c.errors.len() < MAX_ERRORS {
        let msg =
            if e.message.is_null() { String::new() } else { unsafe { CStr::from_ptr(e.message) }.to_string_lossy().trim().to_string() };
        c.errors.push((e.line.max(0) as u32, msg));
    }
}

/// Check `file` against the bundle's main schema. `Ok(vec![])` when it is valid; the first
/// errors otherwise; `Err` when the check could not run (no libxml2, a schema it rejects).
pub fn validate(bundle: &Bundle, file: &Path, work_dir: &Path) -> Result<Vec<Invalid>, String> {
    let mut guard = LIB.lock().unwrap_or_else(|p| p.into_inner());
    let lib = match guard.get_or_insert_with(|| load().map(|l| &*Box::leak(Box::new(l)))) {
        Ok(l) => *l,
        Err(e) => return Err(e.clone()),
    };
    let dir = tempfile::Builder::new().prefix("xsd-").tempdir_in(work_dir).map_err(|e| e.to_string())?;
    for (name, text) in &bundle.files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
    }
    let main = CString::new(dir.path().join(&bundle.main).to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    let target = CString::new(file.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
    let mut parse_errors = Collected { errors: Vec::new(), total: 0 };
    let mut errors = Collected { errors: Vec::new(), total: 0 };
    // SAFETY: the calls follow libxml2's documented life cycle: parser context -> schema ->
    // validation context, each freed once; the error sinks outlive the calls that use them.
    let rc = unsafe {
        (lib.init)();
        let pctxt = (lib.new_parser)(main.as_ptr());
        if pctxt.is_null() {
            return Err("libxml2 could not open the schema".into());
        }
        (lib.parser_errors)(pctxt, collect, &mut parse_errors as *mut Collected as *mut c_void);
        let schema = (lib.parse)(pctxt);
        (lib.free_parser)(pctxt);
        if schema.is_null() {
            let why: Vec<String> = parse_errors.errors.iter().map(|(l, m)| format!("line {l}: {m}")).collect();
            return Err(format!("libxml2 rejects the schema: {}", why.join("; ")));
        }
        let vctxt = (lib.new_valid)(schema);
        (lib.valid_errors)(vctxt, collect, &mut errors as *mut Collected as *mut c_void);
        let rc = (lib.validate_file)(vctxt, target.as_ptr(), 0);
        (lib.free_valid)(vctxt);
        (lib.free_schema)(schema);
        rc
    };
    drop(guard);
    if rc < 0 {
        return Err(format!("libxml2 could not validate the file (code {rc})"));
    }
    if rc == 0 && errors.errors.is_empty() {
        return Ok(Vec::new());
    }
    let paths = paths_at_lines(file, &errors.errors.iter().map(|(l, _)| *l).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
    let mut out: Vec<Invalid> =
        errors.errors.into_iter().zip(paths).map(|((line, message), path)| Invalid { line, path, message }).collect();
    if out.is_empty() {
        out.push(Invalid { line: 0, path: "/".into(), message: format!("libxml2 reports the file invalid (code {rc})") });
    }
    Ok(out)
}

/// The element path open at the start of each of `lines` (1-based), by one pass over a file
/// this service wrote (one element per line, no comments or CDATA in element content).
fn paths_at_lines(file: &Path, lines: &[u32]) -> std::io::Result<Vec<String>> {
    use std::io::BufRead;
    let mut want: Vec<u32> = lines.to_vec();
    want.sort_unstable();
    want.dedup();
    let mut found = std::collections::HashMap::new();
    let mut stack: Vec<String> = Vec::new();
    let reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let last = want.last().copied().unwrap_or(0);
    for (n, line) in reader.split(b'\n').enumerate() {
        let n = n as u32 + 1;
        if n > last {
            break;
        }
        let line = line?;
        let mut i = 0;
        let mut path_here: Option<String> = None;
        while let Some(off) = line[i..].iter().position(|&b| b == b'<') {
            let start = i + off + 1;
            let end = line[start..].iter().position(|&b| b == b'>').map_or(line.len(), |e| start + e);
            let tag = &line[start..end];
            if tag.first() == Some(&b'/') {
                stack.pop();
            } else if tag.first() != Some(&b'?') && tag.first() != Some(&b'!') {
                let name_end = tag.iter().position(|&b| b == b' ' || b == b'/').unwrap_or(tag.len());
                stack.push(String::from_utf8_lossy(&tag[..name_end]).into_owned());
                if path_here.is_none() {
                    path_here = Some(format!("/{}", stack.join("/")));
                }
                if tag.last() == Some(&b'/') {
                    stack.pop();
                }
            }
            i = end.min(line.len());
            if i >= line.len() {
                break;
            }
        }
        if want.binary_search(&n).is_ok() {
            found.insert(n, path_here.unwrap_or_else(|| format!("/{}", stack.join("/"))));
        }
    }
    Ok(lines.iter().map(|l| found.get(l).cloned().unwrap_or_else(|| "/".into())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XSD: &str = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:element name="r"><xs:complexType><xs:sequence>
        <xs:element name="t" maxOccurs="unbounded"><xs:complexType><xs:sequence>
          <xs:element name="code"><xs:simpleType><xs:restriction base="xs:string">
            <xs:enumeration value="A"/><xs:enumeration value="B"/></xs:restriction></xs:simpleType></xs:element>
        </xs:sequence></xs:complexType></xs:element>
      </xs:sequence></xs:complexType></xs:element></xs:schema>"#;

    #[test]
    fn libxml2_reports_line_path_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = Bundle { main: "s.xsd".into(), files: [("s.xsd".to_string(), XSD.to_string())].into() };
        let good = dir.path().join("good.xml");
        std::fs::write(&good, "<?xml version=\"1.0\"?>\n<r>\n  <t>\n    <code>A</code>\n  </t>\n</r>\n").unwrap();
        assert_eq!(validate(&bundle, &good, dir.path()).unwrap(), vec![]);
        let bad = dir.path().join("bad.xml");
        std::fs::write(&bad, "<?xml version=\"1.0\"?>\n<r>\n  <t>\n    <code>A</code>\n  </t>\n  <t>\n    <code>X</code>\n  </t>\n</r>\n")
            .unwrap();
        let errs = validate(&bundle, &bad, dir.path()).unwrap();
        assert_eq!(errs[0].line, 7, "{errs:?}");
        assert_eq!(errs[0].path, "/r/t/code");
        assert!(errs[0].message.contains("code") && errs[0].message.contains("X"), "{errs:?}");
    }
}
