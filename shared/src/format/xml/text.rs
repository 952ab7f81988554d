//! Text inside XML: escaping for content and attributes, the characters XML 1.0 cannot carry,
//! and element names made from column names.

/// The first character XML 1.0 cannot carry (control characters other than tab, line feed
/// and carriage return; U+FFFE and U+FFFF), if any.
pub fn forbidden_char(s: &str) -> Option<char> {
    s.chars().find(|&c| matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}'))
}

/// Append `s` escaped for element content: `&`, `<`, `>`; a carriage return as `&#13;` so
/// that it survives line-end normalisation.
pub fn escape_text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, false)
}

/// Append `s` escaped for a double-quoted attribute value: also `"`, tab, line feed and
/// carriage return (which attribute normalisation would turn into spaces).
pub fn escape_attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, true)
}

fn escape(out: &mut Vec<u8>, s: &str, attr: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            b'"' if attr => b"&quot;",
            b'\n' if attr => b"&#10;",
            b'\t' if attr => b"&#9;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// An element name (an XML NCName) made from a column name: letters, digits, `_`, `-` and
/// `.` are kept, anything else becomes `_`; a name that does not start with a letter or `_`,
/// or that starts with `xml` in any case (reserved), gets a leading `_`.
pub fn safe_name(column: &str) -> String {
    let mut s: String = column.chars().map(|c| if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    let starts_ok = s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !starts_ok || s.to_ascii_lowercase().starts_with("xml") {
        s.insert(0, '_');
    }
    s
}

/// Safe names for every column, unique: a name that repeats gets `_2`, `_3`, ...
pub fn safe_names(columns: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(columns.len());
    for c in columns {
        let base = safe_name(c);
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// Whether `s` is an XML NCName as [`safe_name`] writes them (for names given in options).
pub fn is_ncname(s: &str) -> bool {
    !s.is_empty() && safe_name(s) == s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        escape_text(&mut out, "a<b & \"c\"\r\n");
        assert_eq!(String::from_utf8(out).unwrap(), "a&lt;b &amp; \"c\"&#13;\n");
        let mut out = Vec::new();
        escape_attr(&mut out, "x\"y\tz\n");
        assert_eq!(String::from_utf8(out).unwrap(), "x&quot;y&#9;z&#10;");
        assert_eq!(forbidden_char("ok\tfine\n"), None);
        assert_eq!(forbidden_char("bad\u{1}"), Some('\u{1}'));
    }

    #[test]
    fn names() {
        assert_eq!(
            safe_names(&["amount €".into(), "1st".into(), "xmlns".into(), "a b".into(), "a_b".into(), "Größe".into()]),
            ["amount__", "_1st", "_xmlns", "a_b", "a_b_2", "Größe"]
        );
        assert!(is_ncname("transaction") && !is_ncname("a b") && !is_ncname(""));
    }
}
