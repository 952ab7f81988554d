//! Reading an XML Schema (XSD 1.0) into the element structure a mapping is placed on: global
//! elements, named and anonymous types, sequences, choices, `all`, attributes, simple
//! content, extension of complex types, element references, and several documents joined by
//! `xs:import` and `xs:include`. Facets (lengths, patterns, enumerations) are not checked here:
//! `validate: true` hands the file to libxml2's validator (validate.rs).
//!
//! Documents are parsed with DTDs refused (no entity can be declared, so none is expanded or
//! fetched), and imports are read only from the bundle the schema came with, never from the
//! network. A construct this reader does not know is an error naming it, never a silent skip.

use std::collections::{BTreeMap, HashMap};

pub const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// A namespace-qualified name; `ns` is `None` for no namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName {
    pub ns: Option<String>,
    pub local: String,
}

impl std::fmt::Display for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ns {
            Some(ns) => write!(f, "{{{ns}}}{}", self.local),
            None => f.write_str(&self.local),
        }
    }
}

/// How many times a particle may occur; `max: None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurs {
    pub min: u32,
    pub max: Option<u32>,
}

impl Occurs {
    pub const ONCE: Occurs = Occurs { min: 1, max: Some(1) };
    pub fn repeats(self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }
}

#[derive(Debug, Clone)]
pub struct ElementDecl {
    /// The element's name; `name.ns` is set when the element is namespace-qualified.
    pub name: QName,
    pub ty: TypeRef,
    pub occurs: Occurs,
}

#[derive(Debug, Clone)]
pub enum TypeRef {
    Named(QName),
    Inline(Box<TypeDef>),
}

#[derive(Debug, Clone)]
pub enum TypeDef {
    /// Text only: the builtin type at the end of its restriction chain is found by
    /// [`SchemaSet::builtin_of`].
    Simple {
        base: Option<QName>,
    },
    Complex(ComplexDef),
}

#[derive(Debug, Clone)]
pub struct ComplexDef {
    pub attributes: Vec<AttrDecl>,
    pub content: Content,
    /// `complexContent/extension`: the base type's content comes first, then this one's.
    pub extends: Option<QName>,
}

#[derive(Debug, Clone)]
pub enum Content {
    Empty,
    /// Text of this simple type, with the attributes.
    Simple(TypeRef),
    Particle(Particle),
}

#[derive(Debug, Clone)]
pub enum Particle {
    Element(ElementDecl),
    /// `<xs:element ref="..."/>`.
    Ref(QName, Occurs),
    Sequence(Vec<Particle>, Occurs),
    Choice(Vec<Particle>, Occurs),
    All(Vec<Particle>, Occurs),
    /// `xs:any`: nothing can be mapped into it.
    Any(Occurs),
}

impl Particle {
    pub fn occurs(&self) -> Occurs {
        match self {
            Particle::Element(e) => e.occurs,
            Particle::Ref(_, o) | Particle::Sequence(_, o) | Particle::Choice(_, o) | Particle::All(_, o) | Particle::Any(o) => *o,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttrDecl {
    pub name: QName,
    pub required: bool,
}

/// The schema documents of one bundle: `main` and what it imports, by path relative to the
/// main document's folder.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub main: String,
    pub files: BTreeMap<String, String>,
}

impl Bundle {
    /// The locations `text` imports or includes, relative to its own folder.
    pub fn references(text: &str) -> Result<Vec<String>, String> {
        let doc = parse_document(text)?;
        let mut out = Vec::new();
        for n in doc.root_element().children().filter(|n| n.is_element() && n.tag_name().namespace() == Some(XS)) {
            if matches!(n.tag_name().name(), "import" | "include" | "redefine" | "override")
                && let Some(loc) = n.attribute("schemaLocation")
            {
                out.push(loc.to_string());
            }
        }
        Ok(out)
    }

    /// `location` as a path of the bundle, relative to the folder of `from`: only relative
    /// paths that stay inside the bundle's folder.
    pub fn resolve(from: &str, location: &str) -> Result<String, String> {
        if location.contains("://") || location.starts_with('/') || location.contains('\\') {
            return Err(format!(
                "schemaLocation `{location}`: only paths relative to the schema's folder are read (never the network or an absolute path)"
            ));
        }
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in location.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!("schemaLocation `{location}` leads out of the schema's folder"));
                    }
                }
                s => parts.push(s),
            }
        }
        Ok(parts.join("/"))
    }
}

/// Parse one XML document, refusing DTDs (so no entity is declared, expanded or fetched).
pub fn parse_document(text: &str) -> Result<roxmltree::Document<'_>, String> {
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 5_000_000, ..Default::default() };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => "a DTD (<!DOCTYPE>): DTDs and external entities are refused".to_string(),
        other => other.to_string(),
    })
}

/// Every global declaration of a bundle.
#[derive(Debug, Default)]
pub struct SchemaSet {
    pub elements: HashMap<QName, ElementDecl>,
    pub types: HashMap<QName, TypeDef>,
    /// Prefixes the documents declare for their namespaces (first declaration wins), for
    /// writing: `crs` for `urn:oecd:ties:crs:v2`.
    pub prefixes: Vec<(String, String)>,
}

impl SchemaSet {
    /// Read every document of the bundle, starting at its main document.
    pub fn load(bundle: &Bundle) -> Result<Self, String> {
        let mut set = SchemaSet::default();
        let mut done: Vec<String> = Vec::new();
        let mut todo = vec![(bundle.main.clone(), None::<String>)];
        while let Some((path, chameleon_ns)) = todo.pop() {
            if done.contains(&path) {
                continue;
            }
            done.push(path.clone());
            let text = bundle.files.get(&path).ok_or_else(|| format!("`{path}` is not in the schema bundle"))?;
            let doc = parse_document(text).map_err(|e| format!("{path}: {e}"))?;
            let root = doc.root_element();
            if root.tag_name().namespace() != Some(XS) || root.tag_name().name() != "schema" {
                return Err(format!("{path}: not an XML Schema (the document element is not xs:schema)"));
            }
            let target = root.attribute("targetNamespace").map(str::to_string).or(chameleon_ns);
            let ctx = DocContext {
                path: &path,
                target: target.clone(),
                qualified_elements: root.attribute("elementFormDefault") == Some("qualified"),
                qualified_attributes: root.attribute("attributeFormDefault") == Some("qualified"),
            };
            for ns in root.namespaces() {
                if let Some(prefix) = ns.name()
                    && ns.uri() != XS
                    && !set.prefixes.iter().any(|(_, u)| u == ns.uri())
                    && !set.prefixes.iter().any(|(p, _)| p == prefix)
                {
                    set.prefixes.push((prefix.to_string(), ns.uri().to_string()));
                }
            }
            for n in root.children().filter(|n| n.is_element()) {
                if n.tag_name().namespace() != Some(XS) {
                    continue;
                }
                match n.tag_name().name() {
                    "import" | "include" => {
                        if let Some(loc) = n.attribute("schemaLocation") {
                            let p = Bundle::resolve(&path, loc)?;
                            // An included document without a target namespace takes the includer's.
                            let ns = if n.tag_name().name() == "include" { target.clone() } else { None };
                            todo.push((p, ns));
                        } else if n.tag_name().name() == "import" {
                            return Err(format!("{path}: an xs:import without schemaLocation (the schema must come with its imports)"));
                        }
                    }
                    "element" => {
                        let mut e = ctx.element(n, true)?;
                        e.occurs = Occurs::ONCE;
                        set.elements.insert(e.name.clone(), e);
                    }
                    "complexType" | "simpleType" => {
                        let name = n.attribute("name").ok_or_else(|| format!("{path}: a global type without a name"))?;
                        set.types.insert(QName { ns: target.clone(), local: name.to_string() }, ctx.type_def(n)?);
                    }
                    "annotation" | "attribute" | "notation" => {}
                    other => return Err(format!("{path}: the global xs:{other} is not supported")),
                }
            }
        }
        Ok(set)
    }

    pub fn type_def(&self, name: &QName) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The builtin XSD type a simple type comes from (`dateTime`, `decimal`, `string`), or
    /// `None` for a complex type.
    pub fn builtin_of(&self, ty: &TypeRef) -> Option<String> {
        let mut current = ty.clone();
        for _ in 0..64 {
            match current {
                TypeRef::Named(q) if q.ns.as_deref() == Some(XS) => return Some(q.local),
                TypeRef::Named(q) => current = TypeRef::Inline(Box::new(self.types.get(&q)?.clone())),
                TypeRef::Inline(def) => match *def {
                    TypeDef::Simple { base: Some(b) } => current = TypeRef::Named(b),
                    TypeDef::Simple { base: None } => return Some("string".into()),
                    TypeDef::Complex(c) => match c.content {
                        Content::Simple(t) => current = t,
                        _ => return None,
                    },
                },
            }
        }
        None
    }

    /// The complex type behind a reference (a named simple type or a builtin is `None`), with
    /// extensions flattened: attributes of the base first, its content before this one's.
    pub fn complex(&self, ty: &TypeRef) -> Result<Option<ComplexDef>, String> {
        let def = match ty {
            TypeRef::Named(q) if q.ns.as_deref() == Some(XS) => return Ok(None),
            TypeRef::Named(q) => self.types.get(q).ok_or_else(|| format!("the type {q} is not defined in the schema"))?.clone(),
            TypeRef::Inline(d) => (**d).clone(),
        };
        let TypeDef::Complex(mut c) = def else { return Ok(None) };
        let mut depth = 0;
        while let Some(base) = c.extends.take() {
            depth += 1;
            if depth > 32 {
                return Err(format!("the type {base} extends itself"));
            }
            let Some(TypeDef::Complex(b)) = self.types.get(&base).cloned() else {
                // Extending a simple type is simple content with attributes.
                c.content = Content::Simple(TypeRef::Named(base));
                continue;
            };
            let mut attrs = b.attributes.clone();
            attrs.extend(c.attributes);
            c.attributes = attrs;
            c.content = match (b.content, c.content) {
                (Content::Particle(bp), Content::Particle(p)) => Content::Particle(Particle::Sequence(vec![bp, p], Occurs::ONCE)),
                (bc, Content::Empty) => bc,
                (Content::Empty, cc) => cc,
                (_, cc) => cc,
            };
            c.extends = b.extends;
        }
        Ok(Some(c))
    }
}

struct DocContext<'a> {
    path: &'a str,
    target: Option<String>,
    qualified_elements: bool,
    qualified_attributes: bool,
}

impl DocContext<'_> {
    fn err(&self, n: roxmltree::Node, what: impl std::fmt::Display) -> String {
        let pos = n.document().text_pos_at(n.range().start);
        format!("{} line {}: {what}", self.path, pos.row)
    }

    /// A `type="p:name"` or `base=` value as a QName, by the prefixes in scope at `n`.
    fn qname(&self, n: roxmltree::Node, value: &str) -> Result<QName, String> {
        let (prefix, local) = match value.split_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, value),
        };
        let ns = n.lookup_namespace_uri(prefix).map(str::to_string);
        if prefix.is_some() && ns.is_none() {
            return Err(self.err(n, format!("the prefix of `{value}` is not declared")));
        }
        Ok(QName { ns, local: local.to_string() })
    }

    fn occurs(&self, n: roxmltree::Node) -> Result<Occurs, String> {
        let min = match n.attribute("minOccurs") {
            Some(v) => v.parse().map_err(|_| self.err(n, format!("minOccurs `{v}`")))?,
            None => 1,
        };
        let max = match n.attribute("maxOccurs") {
            Some("unbounded") => None,
            Some(v) => Some(v.parse().map_err(|_| self.err(n, format!("maxOccurs `{v}`")))?),
            None => Some(1),
        };
        Ok(Occurs { min, max })
    }

    fn xs_children<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
        n.children().filter(|c| c.is_element() && c.tag_name().namespace() == Some(XS) && c.tag_name().name() != "annotation")
    }

    fn element(&self, n: roxmltree::Node, global: bool) -> Result<ElementDecl, String> {
        let occurs = self.occurs(n)?;
        let name = n.attribute("name").ok_or_else(|| self.err(n, "an element without a name"))?;
        let qualified = global || n.attribute("form").map_or(self.qualified_elements, |f| f == "qualified");
        let name = QName { ns: if qualified { self.target.clone() } else { None }, local: name.to_string() };
        let ty = if let Some(t) = n.attribute("type") {
            TypeRef::Named(self.qname(n, t)?)
        } else if let Some(def) = Self::xs_children(n).find(|c| matches!(c.tag_name().name(), "complexType" | "simpleType")) {
            TypeRef::Inline(Box::new(self.type_def(def)?))
        } else {
            // No type: anyType. Treated as text.
            TypeRef::Named(QName { ns: Some(XS.into()), local: "string".into() })
        };
        Ok(ElementDecl { name, ty, occurs })
    }

    fn type_def(&self, n: roxmltree::Node) -> Result<TypeDef, String> {
        match n.tag_name().name() {
            "simpleType" => {
                let inner = Self::xs_children(n).next().ok_or_else(|| self.err(n, "an empty simpleType"))?;
                let base = match inner.tag_name().name() {
                    "restriction" => match inner.attribute("base") {
                        Some(b) => Some(self.qname(inner, b)?),
                        None => match Self::xs_children(inner).find(|c| c.tag_name().name() == "simpleType") {
                            Some(_) => None,
                            None => return Err(self.err(inner, "a restriction without a base")),
                        },
                    },
                    // Lists and unions are written as the text given.
                    "list" | "union" => None,
                    other => return Err(self.err(inner, format!("xs:{other} inside a simpleType is not supported"))),
                };
                Ok(TypeDef::Simple { base })
            }
            "complexType" => {
                let mut def = ComplexDef { attributes: Vec::new(), content: Content::Empty, extends: None };
                for c in Self::xs_children(n) {
                    match c.tag_name().name() {
                        "sequence" | "choice" | "all" => def.content = Content::Particle(self.particle(c)?),
                        "attribute" => def.attributes.push(self.attribute(c)?),
                        "anyAttribute" => {}
                        "simpleContent" => {
                            let d = Self::xs_children(c).next().ok_or_else(|| self.err(c, "an empty simpleContent"))?;
                            let base = self.qname(d, d.attribute("base").ok_or_else(|| self.err(d, "no base"))?)?;
                            for a in Self::xs_children(d).filter(|a| a.tag_name().name() == "attribute") {
                                def.attributes.push(self.attribute(a)?);
                            }
                            def.content = Content::Simple(TypeRef::Named(base));
                        }
                        "complexContent" => {
                            let d = Self::xs_children(c).next().ok_or_else(|| self.err(c, "an empty complexContent"))?;
                            let base = self.qname(d, d.attribute("base").ok_or_else(|| self.err(d, "no base"))?)?;
                            for x in Self::xs_children(d) {
                                match x.tag_name().name() {
                                    "sequence" | "choice" | "all" => def.content = Content::Particle(self.particle(x)?),
                                    "attribute" => def.attributes.push(self.attribute(x)?),
                                    "anyAttribute" => {}
                                    other => return Err(self.err(x, format!("xs:{other} in complexContent is not supported"))),
                                }
                            }
                            match d.tag_name().name() {
                                "extension" if base.ns.as_deref() != Some(XS) => def.extends = Some(base),
                                "extension" | "restriction" => {}
                                other => return Err(self.err(d, format!("xs:{other} in complexContent is not supported"))),
                            }
                        }
                        "group" | "attributeGroup" => return Err(self.err(c, format!("xs:{} is not supported", c.tag_name().name()))),
                        other => return Err(self.err(c, format!("xs:{other} in a complexType is not supported"))),
                    }
                }
                Ok(TypeDef::Complex(def))
            }
            other => Err(self.err(n, format!("xs:{other} is not a type"))),
        }
    }

    fn attribute(&self, n: roxmltree::Node) -> Result<AttrDecl, String> {
        if let Some(r) = n.attribute("ref") {
            return Ok(AttrDecl { name: self.qname(n, r)?, required: n.attribute("use") == Some("required") });
        }
        let name = n.attribute("name").ok_or_else(|| self.err(n, "an attribute without a name"))?;
        let qualified = n.attribute("form").map_or(self.qualified_attributes, |f| f == "qualified");
        Ok(AttrDecl {
            name: QName { ns: if qualified { self.target.clone() } else { None }, local: name.to_string() },
            required: n.attribute("use") == Some("required"),
        })
    }

    fn particle(&self, n: roxmltree::Node) -> Result<Particle, String> {
        let occurs = self.occurs(n)?;
        match n.tag_name().name() {
            "element" => match n.attribute("ref") {
                Some(r) => Ok(Particle::Ref(self.qname(n, r)?, occurs)),
                None => Ok(Particle::Element(self.element(n, false)?)),
            },
            "sequence" | "choice" | "all" => {
                let items = Self::xs_children(n).map(|c| self.particle(c)).collect::<Result<Vec<_>, _>>()?;
                Ok(match n.tag_name().name() {
                    "sequence" => Particle::Sequence(items, occurs),
                    "choice" => Particle::Choice(items, occurs),
                    _ => Particle::All(items, occurs),
                })
            }
            "any" => Ok(Particle::Any(occurs)),
            other => Err(self.err(n, format!("xs:{other} is not supported in a content model"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(main: &str, files: &[(&str, &str)]) -> Bundle {
        Bundle { main: main.into(), files: files.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn a_dtd_is_refused() {
        let text = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>"#;
        let err = SchemaSet::load(&bundle("a.xsd", &[("a.xsd", text)])).unwrap_err();
        assert!(err.contains("DTD"), "{err}");
    }

    #[test]
    fn imports_resolve_inside_the_bundle_only() {
        assert_eq!(Bundle::resolve("crs/main.xsd", "types.xsd").unwrap(), "crs/types.xsd");
        assert_eq!(Bundle::resolve("crs/main.xsd", "../common/t.xsd").unwrap(), "common/t.xsd");
        assert!(Bundle::resolve("main.xsd", "../t.xsd").is_err());
        assert!(Bundle::resolve("main.xsd", "http://example.com/t.xsd").unwrap_err().contains("network"));
        assert!(Bundle::resolve("main.xsd", "/etc/t.xsd").is_err());
    }

    #[test]
    fn types_extensions_and_namespaces_are_read() {
        let main = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:a="urn:a" xmlns:b="urn:b"
              targetNamespace="urn:a" elementFormDefault="qualified">
            <xs:import namespace="urn:b" schemaLocation="b.xsd"/>
            <xs:element name="Doc" type="a:DocType"/>
            <xs:complexType name="Base"><xs:sequence><xs:element name="Id" type="xs:string"/></xs:sequence>
              <xs:attribute name="v" type="xs:string" use="required"/></xs:complexType>
            <xs:complexType name="DocType"><xs:complexContent><xs:extension base="a:Base">
              <xs:sequence><xs:element name="Amt" type="b:Amount" maxOccurs="unbounded"/></xs:sequence>
            </xs:extension></xs:complexContent></xs:complexType>
        </xs:schema>"#;
        let b = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:b" elementFormDefault="qualified">
            <xs:simpleType name="Dec"><xs:restriction base="xs:decimal"><xs:fractionDigits value="2"/></xs:restriction></xs:simpleType>
            <xs:complexType name="Amount"><xs:simpleContent><xs:extension base="Dec_alias">
              <xs:attribute name="Ccy" type="xs:string" use="required"/></xs:extension></xs:simpleContent></xs:complexType>
        </xs:schema>"#;
        let b = b.replace("Dec_alias", "xs:decimal");
        let set = SchemaSet::load(&bundle("x/a.xsd", &[("x/a.xsd", main), ("x/b.xsd", &b)])).unwrap();
        let doc = &set.elements[&QName { ns: Some("urn:a".into()), local: "Doc".into() }];
        let c = set.complex(&doc.ty).unwrap().unwrap();
        assert_eq!(c.attributes.len(), 1);
        let Content::Particle(Particle::Sequence(items, _)) = &c.content else { panic!("a sequence") };
        assert_eq!(items.len(), 2, "base content, then the extension's");
        let amount = QName { ns: Some("urn:b".into()), local: "Amount".into() };
        assert_eq!(set.builtin_of(&TypeRef::Named(amount.clone())).as_deref(), Some("decimal"));
        assert!(set.prefixes.contains(&("b".into(), "urn:b".into())));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let text = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
            <xs:complexType name="T"><xs:group ref="g"/></xs:complexType></xs:schema>"#;
        let err = SchemaSet::load(&bundle("a.xsd", &[("a.xsd", text)])).unwrap_err();
        assert!(err.contains("xs:group") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_regulatory_schemas_load() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/schemas");
        for (dir, main) in [("goaml-5.0.1", "goAMLSchema.xsd"), ("iso20022", "pain.001.001.03.xsd"), ("crs", "CrsXML_v2.0.xsd")] {
            let mut files = BTreeMap::new();
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "xsd") {
                    files.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap());
                }
            }
            let set = SchemaSet::load(&Bundle { main: main.into(), files }).unwrap();
            assert!(!set.elements.is_empty(), "{dir}");
        }
    }
}
