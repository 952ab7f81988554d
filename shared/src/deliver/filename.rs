//! Names of delivered files from a template: `{export_id}`, `{tenant}`, `{format}`, `{date}`
//! (YYYY-MM-DD), `{time}` (HHMMSS), `{datetime}` (YYYYMMDDTHHMMSS), in the destination's time
//! zone, and the file's own `{name}`, `{stem}` (before the first `.`) and `{ext}` (after it).
//! The result is one path segment: no `/`, `\`, `..`, control characters.

use chrono::{DateTime, Utc};

const PLACEHOLDERS: [&str; 9] = ["export_id", "tenant", "format", "date", "time", "datetime", "name", "stem", "ext"];

/// Check a template at create time.
pub fn check_template(t: &str) -> Result<(), String> {
    let allowed = || format!("a file name template using {}", PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", "));
    if t.is_empty() || t.len() > 255 {
        return Err(format!("{} (1 to 255 bytes)", allowed()));
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { return Err(format!("{}: a `{{` is not closed", allowed())) };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!("{}: `{{{name}}}` is not one of them", allowed()));
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("{}: a `}}` without `{{`", allowed()));
    }
    let literal: String = t.split('{').map(|s| s.split_once('}').map_or(s, |(_, after)| after)).collect();
    if literal.contains(['/', '\\']) || literal.chars().any(char::is_control) {
        return Err(format!("{}: no `/`, `\\` or control characters (one file name, not a path)", allowed()));
    }
    Ok(())
}

/// What the placeholders stand for.
pub struct NameContext<'a> {
    pub export_id: &'a str,
    pub tenant: &'a str,
    pub format: &'a str,
    pub time: DateTime<Utc>,
    pub zone: chrono_tz::Tz,
}

/// The delivered name of the file `own_name`: the template filled in, checked to be one safe
/// path segment.
pub fn render(template: Option<&str>, own_name: &str, ctx: &NameContext<'_>) -> Result<String, String> {
    let Some(t) = template else { return check_segment(own_name.to_string()) };
    let local = ctx.time.with_timezone(&ctx.zone);
    let (stem, ext) = own_name.split_once('.').unwrap_or((own_name, ""));
    let mut out = t.to_string();
    for (k, v) in [
        ("export_id", ctx.export_id.to_string()),
        ("tenant", ctx.tenant.to_string()),
        ("format", ctx.format.to_string()),
        ("datetime", local.format("%Y%m%dT%H%M%S").to_string()),
        ("date", local.format("%Y-%m-%d").to_string()),
        ("time", local.format("%H%M%S").to_string()),
        ("name", own_name.to_string()),
        ("stem", stem.to_string()),
        ("ext", ext.to_string()),
    ] {
        out = out.replace(&format!("{{{k}}}"), &v);
    }
    check_segment(out)
}

fn check_segment(name: String) -> Result<String, String> {
    if name.is_empty()
        || name.len() > 255
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(format!("the file name `{}` is not one safe path segment", name.escape_debug()));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_in_the_zone_and_never_climb() {
        let ctx = NameContext {
            export_id: "exp_1",
            tenant: "acme",
            format: "xml",
            time: "2026-11-01T23:30:00Z".parse().unwrap(),
            zone: "Europe/Vienna".parse().unwrap(),
        };
        assert_eq!(render(Some("{tenant}_{date}_{stem}.{ext}"), "report.xml.gpg", &ctx).unwrap(), "acme_2026-11-02_report.xml.gpg");
        assert_eq!(render(None, "a.csv", &ctx).unwrap(), "a.csv");
        assert!(render(Some("{tenant}"), "x", &NameContext { tenant: "..", ..ctx }).is_err());
        assert!(check_template("../{name}").is_err());
        assert!(check_template("{nope}").is_err());
        assert!(check_template("{name").is_err());
        assert!(check_template("{date}-{name}").is_ok());
    }
}
