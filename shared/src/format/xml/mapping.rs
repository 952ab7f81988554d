//! Compiling an `xml_mapping` against its XSD and the export's columns into a [`Plan`]: the
//! tree of elements to write, in the order the schema's content models require, each with its
//! attributes and where its text comes from. Every mapped path must exist in the schema, every
//! element or attribute the schema requires (inside what is written) must get a value, only
//! one branch of a choice may be mapped, and a value may use a row's columns only inside the
//! repeated element of that row (or the group's `group_by` columns at a group level).

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::{DataType, Schema};

use super::xsd::{Content, ElementDecl, Particle, QName, SchemaSet, TypeRef};
use crate::model::ValidationErrors;
use crate::model::xml::{Aggregate, Generated, MappedValue, XmlMapping};

/// Where a text comes from, resolved against the columns.
#[derive(Debug, Clone)]
pub enum Source {
    Column(usize),
    Constant(String),
    /// Literal pieces and column indices.
    Template(Vec<TemplatePart>),
    Generated(Generated),
    Count,
    Sum(usize),
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Text(String),
    Column(usize),
}

/// One value of the plan.
#[derive(Debug, Clone)]
pub struct Value {
    /// The mapped path, for messages.
    pub path: String,
    pub source: Source,
    pub format: Option<String>,
    pub scale: Option<u8>,
    pub map: Option<BTreeMap<String, String>>,
    pub map_default: Option<String>,
    /// The repeat level it is written at (0: the document outside every level).
    pub level: usize,
    /// The schema requires it where it is written (minOccurs >= 1 / use="required").
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: QName,
    /// Attributes: name and an index into [`Plan::values`].
    pub attrs: Vec<(QName, usize)>,
    pub body: Body,
    /// The repeat level this element belongs to.
    pub level: usize,
    /// `Some(l)` when this is the repeated element of level `l`.
    pub repeat: Option<usize>,
    /// minOccurs 0: left out when nothing inside it has a value.
    pub optional: bool,
    /// A repeated element lies inside (it is always written).
    pub holds_repeat: bool,
}

#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Text(usize),
    Children(Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub root: Node,
    pub values: Vec<Value>,
    /// Per level from 1: the `group_by` column indices (empty for the last level).
    pub group_by: Vec<Vec<usize>>,
    /// Namespace declarations for the document element: (prefix or "" for the default, URI).
    pub namespaces: Vec<(String, String)>,
}

impl Plan {
    pub fn levels(&self) -> usize {
        self.group_by.len()
    }
}

struct Compiler<'a> {
    set: &'a SchemaSet,
    mapping: &'a XmlMapping,
    columns: &'a Schema,
    errs: ValidationErrors,
    values: Vec<Value>,
    used: BTreeSet<String>,
    levels: Vec<String>,
}

const POINTER: &str = "/format/xml_mapping";

/// Compile `mapping` for rows of `columns`; `sort` is the export's sort columns (group levels
/// need rows sorted by their `group_by` columns).
pub fn compile(set: &SchemaSet, mapping: &XmlMapping, columns: &Schema, sort: &[String]) -> Result<Plan, ValidationErrors> {
    let mut c =
        Compiler { set, mapping, columns, errs: ValidationErrors::new(), values: Vec::new(), used: BTreeSet::new(), levels: Vec::new() };
    let root_decl = set.elements.iter().find(|(q, _)| q.local == mapping.root).map(|(_, d)| d.clone());
    let Some(root_decl) = root_decl else {
        let mut names: Vec<&str> = set.elements.keys().map(|q| q.local.as_str()).collect();
        names.sort();
        c.errs.push(format!("{POINTER}/root"), mapping.root.as_str(), format!("a global element of the schema: {}", names.join(", ")));
        return Err(c.errs);
    };
    // Levels: nested paths, each inside the one before; group levels first.
    let mut group_by = Vec::new();
    let mut needed_sort: Vec<&str> = Vec::new();
    for (i, l) in mapping.repeat.iter().enumerate() {
        let p = format!("{POINTER}/repeat/{i}");
        let last = i + 1 == mapping.repeat.len();
        if i > 0 && !l.path.starts_with(&format!("{}/", mapping.repeat[i - 1].path)) {
            c.errs.push(format!("{p}/path"), l.path.as_str(), format!("a path inside the level before ({})", mapping.repeat[i - 1].path));
        }
        if last && !l.group_by.is_empty() {
            c.errs.push(format!("{p}/group_by"), serde_json::json!(l.group_by), "none on the last level: it is one element per row");
        }
        if !last && l.group_by.is_empty() {
            c.errs.push(
                format!("{p}/group_by"),
                serde_json::json!([]),
                "the columns that start a new group (every level but the last groups rows)",
            );
        }
        let mut idx = Vec::new();
        for (j, g) in l.group_by.iter().enumerate() {
            match columns.index_of(g) {
                Ok(k) => idx.push(k),
                Err(_) => c.errs.push(format!("{p}/group_by/{j}"), g.as_str(), c.column_list()),
            }
            needed_sort.push(g);
        }
        group_by.push(idx);
        c.levels.push(l.path.clone());
    }
    if mapping.repeat.is_empty() {
        c.errs.push(format!("{POINTER}/repeat"), serde_json::json!([]), "the path of the element written once per row");
    }
    if !needed_sort.is_empty()
        && (sort.len() < needed_sort.len() || sort[..needed_sort.len()].iter().zip(&needed_sort).any(|(a, b)| a != b))
    {
        c.errs.push(
            "/sort",
            serde_json::json!(sort),
            format!("sort keys that begin with the group_by columns ({}), so each group's rows come together", needed_sort.join(", ")),
        );
    }
    let root = c.element(&root_decl, &mapping.root, 0, false, false);
    for path in mapping.values.keys() {
        if !c.used.contains(path) {
            c.errs.push(
                format!("{POINTER}/values/{}", escape_pointer(path)),
                serde_json::Value::Null,
                "a path the schema defines inside what is written (see the problem's other errors for the names there)",
            );
        }
    }
    for (i, l) in mapping.repeat.iter().enumerate() {
        if !c.used.contains(&format!("repeat:{}", l.path)) {
            c.errs.push(
                format!("{POINTER}/repeat/{i}/path"),
                l.path.as_str(),
                "the path of an element the schema repeats (maxOccurs above 1)",
            );
        }
    }
    let namespaces = namespaces(set, root.as_ref());
    c.errs.into_result().map(|_| Plan { root: root.expect("no errors"), values: c.values, group_by, namespaces })
}

/// `~` and `/` escaped for a JSON pointer token.
fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Compiler<'_> {
    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.fields().iter().map(|f| f.name().as_str()).collect();
        format!("a column of the export: {}", names.join(", "))
    }

    /// Something is mapped at or below `path`.
    fn used(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.mapping.values.keys().any(|k| k == path || k.starts_with(&prefix))
            || self.levels.iter().any(|l| l == path || l.starts_with(&prefix))
    }

    /// The element `decl` at `path`; `repeated` when a group around it in its parent's
    /// content model repeats (`<xs:sequence maxOccurs="unbounded">`).
    fn element(&mut self, decl: &ElementDecl, path: &str, level: usize, optional: bool, repeated: bool) -> Option<Node> {
        let mut level = level;
        let mut repeat = None;
        if self.levels.get(level).is_some_and(|l| l == path) {
            if decl.occurs.repeats() || repeated {
                level += 1;
                repeat = Some(level);
                self.used.insert(format!("repeat:{path}"));
            } else {
                return None;
            }
        }
        let complex = match self.set.complex(&decl.ty) {
            Ok(c) => c,
            Err(e) => {
                self.errs.push(format!("{POINTER}/values"), path, e);
                return None;
            }
        };
        let mut node = Node { name: decl.name.clone(), attrs: Vec::new(), body: Body::Empty, level, repeat, optional, holds_repeat: false };
        let text_type = match &complex {
            None => Some(decl.ty.clone()),
            Some(c) => match &c.content {
                Content::Simple(t) => Some(t.clone()),
                _ => None,
            },
        };
        if let Some(c) = &complex {
            for a in &c.attributes {
                let apath = format!("{path}/@{}", a.name.local);
                if self.mapping.values.contains_key(&apath) {
                    let v = self.value(&apath, level, a.required, None);
                    if let Some(v) = v {
                        node.attrs.push((a.name.clone(), v));
                    }
                } else if a.required {
                    self.errs.push(
                        format!("{POINTER}/values/{}", escape_pointer(&apath)),
                        serde_json::Value::Null,
                        format!("a value: the schema requires attribute `{}` on {path}", a.name.local),
                    );
                }
            }
        }
        if let Some(t) = text_type {
            if self.mapping.values.contains_key(path) {
                if let Some(v) = self.value(path, level, !optional, Some(&t)) {
                    node.body = Body::Text(v);
                }
            } else {
                self.errs.push(
                    format!("{POINTER}/values/{}", escape_pointer(path)),
                    serde_json::Value::Null,
                    format!(
                        "a value: {path} holds text{}",
                        if optional { " (it is written because something inside it is mapped)" } else { " and the schema requires it" }
                    ),
                );
            }
            return Some(node);
        }
        if self.mapping.values.contains_key(path) {
            self.errs.push(
                format!("{POINTER}/values/{}", escape_pointer(path)),
                serde_json::Value::Null,
                format!("{path} holds elements, not text: map its children"),
            );
            self.used.insert(path.to_string());
        }
        if let Some(Content::Particle(p)) = complex.map(|c| c.content) {
            let children = self.particle(&p, path, level, true, false);
            node.holds_repeat = node.repeat.is_some() || children.iter().any(|c| c.holds_repeat || c.repeat.is_some());
            node.body = Body::Children(children);
        }
        Some(node)
    }

    /// Anything inside `p` (as direct children of the element at `path`) is mapped.
    fn used_within(&self, p: &Particle, path: &str) -> bool {
        match p {
            Particle::Element(e) => self.used(&format!("{path}/{}", e.name.local)),
            Particle::Ref(q, _) => self.used(&format!("{path}/{}", q.local)),
            Particle::Sequence(items, _) | Particle::Choice(items, _) | Particle::All(items, _) => {
                items.iter().any(|i| self.used_within(i, path))
            }
            Particle::Any(_) => false,
        }
    }

    /// Required element names directly in `p` that nothing is mapped to.
    fn unmapped_required(&self, p: &Particle, path: &str) -> usize {
        match p {
            Particle::Element(e) => usize::from(e.occurs.min >= 1 && !self.used(&format!("{path}/{}", e.name.local))),
            Particle::Ref(q, o) => usize::from(o.min >= 1 && !self.used(&format!("{path}/{}", q.local))),
            Particle::Sequence(items, o) | Particle::All(items, o) if o.min >= 1 => {
                items.iter().map(|i| self.unmapped_required(i, path)).sum()
            }
            Particle::Choice(items, o) if o.min >= 1 => items.iter().map(|i| self.unmapped_required(i, path)).min().unwrap_or(0),
            _ => 0,
        }
    }

    fn names_in(p: &Particle, out: &mut Vec<String>) {
        match p {
            Particle::Element(e) => out.push(e.name.local.clone()),
            Particle::Ref(q, _) => out.push(q.local.clone()),
            Particle::Sequence(items, _) | Particle::Choice(items, _) | Particle::All(items, _) => {
                items.iter().for_each(|i| Self::names_in(i, out))
            }
            Particle::Any(_) => {}
        }
    }

    fn particle(&mut self, p: &Particle, path: &str, level: usize, required: bool, repeated: bool) -> Vec<Node> {
        let repeated = repeated || p.occurs().repeats();
        match p {
            Particle::Element(e) => self.child(e, path, level, required, repeated),
            Particle::Ref(q, occurs) => match self.set.elements.get(q).cloned() {
                Some(mut e) => {
                    e.occurs = *occurs;
                    self.child(&e, path, level, required, repeated)
                }
                None => {
                    self.errs.push(
                        format!("{POINTER}/values"),
                        path,
                        format!("the schema refers to element {q}, which it does not define"),
                    );
                    Vec::new()
                }
            },
            Particle::Sequence(items, occurs) | Particle::All(items, occurs) => {
                let required = (required && occurs.min >= 1) || items.iter().any(|i| self.used_within(i, path));
                items.iter().flat_map(|i| self.particle(i, path, level, required, repeated)).collect::<Vec<_>>()
            }
            Particle::Choice(items, occurs) => {
                let used: Vec<&Particle> = items.iter().filter(|i| self.used_within(i, path)).collect();
                if used.is_empty() {
                    if required && occurs.min >= 1 {
                        let mut names = Vec::new();
                        Self::names_in(p, &mut names);
                        self.errs.push(
                            format!("{POINTER}/values"),
                            path,
                            format!("a value inside one of {}: the schema requires one of them in {path}", names.join(", ")),
                        );
                    }
                    return Vec::new();
                }
                // The branch that holds every mapped name with the fewest required names left
                // unmapped (a name can appear in two branches: CRS's AddressFree).
                let mapped: Vec<String> = {
                    let mut all = Vec::new();
                    Self::names_in(p, &mut all);
                    all.into_iter().filter(|n| self.used(&format!("{path}/{n}"))).collect()
                };
                let best = used
                    .iter()
                    .filter(|b| {
                        let mut names = Vec::new();
                        Self::names_in(b, &mut names);
                        mapped.iter().all(|m| names.contains(m))
                    })
                    .min_by_key(|b| self.unmapped_required(b, path));
                match best {
                    Some(b) => self.particle(b, path, level, true, repeated),
                    None => {
                        self.errs.push(
                            format!("{POINTER}/values"),
                            path,
                            format!(
                                "values in one branch of the schema's choice in {path}; the mapping fills several: {}",
                                mapped.join(", ")
                            ),
                        );
                        Vec::new()
                    }
                }
            }
            Particle::Any(_) => Vec::new(),
        }
    }

    fn child(&mut self, e: &ElementDecl, path: &str, level: usize, required: bool, repeated: bool) -> Vec<Node> {
        let cpath = format!("{path}/{}", e.name.local);
        if self.used(&cpath) {
            self.used.insert(cpath.clone());
            let optional = e.occurs.min == 0 || !required;
            return self.element(e, &cpath, level, optional, repeated).into_iter().collect();
        }
        if required && e.occurs.min >= 1 {
            self.errs.push(
                format!("{POINTER}/values/{}", escape_pointer(&cpath)),
                serde_json::Value::Null,
                format!("a value: the schema requires element {cpath} (minOccurs {})", e.occurs.min),
            );
        }
        Vec::new()
    }

    fn value(&mut self, path: &str, level: usize, required: bool, text_type: Option<&TypeRef>) -> Option<usize> {
        self.used.insert(path.to_string());
        let m: MappedValue = self.mapping.values[path].clone();
        let p = format!("{POINTER}/values/{}", escape_pointer(path));
        let sources = m.sources();
        if sources.len() != 1 {
            self.errs.push(
                p,
                serde_json::to_value(&m).unwrap_or_default(),
                "exactly one of column, constant, template, generated or aggregate",
            );
            return None;
        }
        let last = self.levels.len();
        let col = |c: &mut Self, name: &str, what: &str| -> Option<usize> {
            match c.columns.index_of(name) {
                Ok(i) => Some(i),
                Err(_) => {
                    let allowed = c.column_list();
                    c.errs.push(format!("{p}/{what}"), name, allowed);
                    None
                }
            }
        };
        let source = if let Some(agg) = m.aggregate {
            if level == last {
                self.errs.push(
                    format!("{p}/aggregate"),
                    path,
                    "an aggregate outside the element written per row (it totals the rows of a group or of the file)",
                );
                return None;
            }
            match (agg, &m.column) {
                (Aggregate::Count, _) => Source::Count,
                (Aggregate::Sum, Some(name)) => {
                    let i = col(self, name, "column")?;
                    if !is_numeric(self.columns.field(i).data_type()) {
                        self.errs.push(format!("{p}/column"), name.as_str(), "a numeric column to sum");
                        return None;
                    }
                    Source::Sum(i)
                }
                (Aggregate::Sum, None) => {
                    self.errs.push(format!("{p}/column"), serde_json::Value::Null, "the column to sum");
                    return None;
                }
            }
        } else if let Some(name) = &m.column {
            let i = col(self, name, "column")?;
            let grouped = level > 0 && level < last && self.mapping.repeat[level - 1].group_by.contains(name);
            if level != last && !grouped {
                self.errs.push(
                    format!("{p}/column"),
                    name.as_str(),
                    if level == 0 {
                        "a constant, generated value or aggregate: outside the repeated element there is no row".to_string()
                    } else {
                        format!("one of the group's group_by columns ({})", self.mapping.repeat[level - 1].group_by.join(", "))
                    },
                );
                return None;
            }
            Source::Column(i)
        } else if let Some(c) = &m.constant {
            Source::Constant(match c {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        } else if let Some(t) = &m.template {
            let parts = match parse_template(t) {
                Ok(parts) => parts,
                Err(e) => {
                    self.errs.push(format!("{p}/template"), t.as_str(), e);
                    return None;
                }
            };
            let mut out = Vec::new();
            for part in parts {
                match part {
                    Err(name) => {
                        let i = col(self, &name, "template")?;
                        if level != last {
                            self.errs.push(
                                format!("{p}/template"),
                                t.as_str(),
                                "column placeholders only inside the element written per row",
                            );
                            return None;
                        }
                        out.push(TemplatePart::Column(i));
                    }
                    Ok(text) => out.push(TemplatePart::Text(text)),
                }
            }
            Source::Template(out)
        } else {
            let g = m.generated.expect("one source");
            if g == Generated::RowNumber && level != last {
                self.errs.push(format!("{p}/generated"), "row_number", "row_number only inside the element written per row");
                return None;
            }
            Source::Generated(g)
        };
        if let Some(f) = &m.format {
            let ok = match &source {
                Source::Column(i) => {
                    matches!(self.columns.field(*i).data_type(), DataType::Date32 | DataType::Date64 | DataType::Timestamp(..))
                }
                Source::Generated(Generated::GeneratedAt) => true,
                _ => false,
            };
            if !ok {
                self.errs.push(format!("{p}/format"), f.as_str(), "a format only for a date or timestamp column, or generated_at");
            } else if !valid_strftime(f) {
                self.errs.push(format!("{p}/format"), f.as_str(), "a strftime pattern such as %Y-%m-%dT%H:%M:%S");
            }
        }
        if let Some(s) = m.scale {
            let ok = match &source {
                Source::Column(i) | Source::Sum(i) => is_numeric(self.columns.field(*i).data_type()),
                _ => false,
            };
            if !ok || s > 38 {
                self.errs.push(format!("{p}/scale"), s, "fraction digits (0 to 38) for a numeric column or a sum");
            }
        }
        if m.map_default.is_some() && m.map.is_none() {
            self.errs.push(format!("{p}/map_default"), m.map_default.clone().unwrap_or_default(), "a map_default only with map");
        }
        let _ = text_type;
        self.values.push(Value {
            path: path.to_string(),
            source,
            format: m.format.clone(),
            scale: m.scale,
            map: m.map.clone(),
            map_default: m.map_default.clone(),
            level,
            required,
        });
        Some(self.values.len() - 1)
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
}

/// Whether chrono understands every specifier of `f`.
pub fn valid_strftime(f: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    StrftimeItems::new(f).all(|i| !matches!(i, Item::Error))
}

/// A template's pieces: `Ok(text)` or `Err(column name)`.
fn parse_template(t: &str) -> Result<Vec<Result<String, String>>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                if name.is_empty() {
                    return Err("`{column}` placeholders with a column name; `{{` and `}}` for braces".into());
                }
                if !text.is_empty() {
                    out.push(Ok(std::mem::take(&mut text)));
                }
                out.push(Err(name));
            }
            '}' => return Err("a `}` without its `{` (write `}}` for a brace)".into()),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Ok(text));
    }
    Ok(out)
}

/// Prefixes for the namespaces the written elements use: the schema's own prefixes where it
/// declares one, the default namespace when every element is qualified and one namespace has
/// no prefix, `ns1`, `ns2`... otherwise.
fn namespaces(set: &SchemaSet, root: Option<&Node>) -> Vec<(String, String)> {
    let mut used = BTreeSet::new();
    let mut unqualified = false;
    fn walk(n: &Node, used: &mut BTreeSet<String>, unq: &mut bool) {
        match &n.name.ns {
            Some(ns) => {
                used.insert(ns.clone());
            }
            None => *unq = true,
        }
        for (a, _) in &n.attrs {
            if let Some(ns) = &a.ns {
                used.insert(ns.clone());
            }
        }
        if let Body::Children(c) = &n.body {
            c.iter().for_each(|c| walk(c, used, unq));
        }
    }
    if let Some(r) = root {
        walk(r, &mut used, &mut unqualified);
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut n = 0;
    let root_ns = root.and_then(|r| r.name.ns.clone());
    for ns in used {
        let prefix = match set.prefixes.iter().find(|(_, u)| *u == ns) {
            Some((p, _)) => p.clone(),
            None if !unqualified && Some(&ns) == root_ns.as_ref() => String::new(),
            None => {
                n += 1;
                format!("ns{n}")
            }
        };
        out.push((prefix, ns));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(parse_template("DE-{a}-{{x}}").unwrap(), vec![Ok("DE-".into()), Err("a".into()), Ok("-{x}".into())]);
        assert!(parse_template("a}").is_err());
        assert!(parse_template("{}").is_err());
        assert!(valid_strftime("%Y-%m-%dT%H:%M:%S") && !valid_strftime("%Q"));
    }
}

/// The mappings of the test suite (tests/xml) against the regulatory schemas (tests/schemas)
/// and the synthetic transactions' columns.
#[cfg(test)]
mod regulatory {
    use std::collections::BTreeMap;

    use crate::format::xml::xsd::{Bundle, SchemaSet};
    use crate::model::xml::{MappedValue, XmlMapping};

    fn bundle(dir: &str, main: &str) -> Bundle {
        let root = format!("{}/../tests/schemas/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "xsd") {
                files.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap());
            }
        }
        Bundle { main: main.into(), files }
    }

    fn mapping(name: &str) -> XmlMapping {
        let p = format!("{}/../tests/xml/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn the_test_mappings_compile() {
        let columns = crate::synthetic::transactions::schema();
        for (dir, main, m, sort) in [
            ("goaml-5.0.1", "goAMLSchema.xsd", "goaml.json", vec![]),
            ("iso20022", "pain.001.001.03.xsd", "pain001.json", vec!["account_id".to_string()]),
            ("crs", "CrsXML_v2.0.xsd", "crs.json", vec![]),
        ] {
            let set = SchemaSet::load(&bundle(dir, main)).unwrap();
            if let Err(e) = super::compile(&set, &mapping(m), &columns, &sort) {
                panic!("{m}: {e}");
            }
        }
    }

    #[test]
    fn a_missing_required_element_and_a_second_choice_branch_are_named() {
        let columns = crate::synthetic::transactions::schema();
        let set = SchemaSet::load(&bundle("goaml-5.0.1", "goAMLSchema.xsd")).unwrap();
        let mut m = mapping("goaml.json");
        m.values.remove("report/transaction/amount_local");
        m.values
            .insert("report/transaction/t_from_my_client/from_funds_code".into(), MappedValue::from_json(serde_json::json!("K")).unwrap());
        m.values.insert("report/transaction/no_such_element".into(), MappedValue::from_json(serde_json::json!("x")).unwrap());
        let e = super::compile(&set, &m, &columns, &[]).unwrap_err().to_string();
        assert!(e.contains("report/transaction/amount_local"), "{e}");
        assert!(e.contains("t_from_my_client") && e.contains("choice"), "{e}");
        assert!(e.contains("no_such_element"), "{e}");
        let mut m = mapping("pain001.json");
        m.values.insert(
            "Document/CstmrCdtTrfInitn/GrpHdr/MsgId".into(),
            MappedValue::from_json(serde_json::json!({"column": "memo"})).unwrap(),
        );
        let e = super::compile(&set_of("iso20022", "pain.001.001.03.xsd"), &m, &columns, &[]).unwrap_err().to_string();
        assert!(e.contains("no row") && e.contains("/sort"), "{e}");
    }

    fn set_of(dir: &str, main: &str) -> SchemaSet {
        SchemaSet::load(&bundle(dir, main)).unwrap()
    }
}
