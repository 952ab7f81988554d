//! A schedule in Amazon EventBridge Scheduler terms: `cron(minutes hours day-of-month month
//! day-of-week year)` expressions evaluated in `ScheduleExpressionTimezone`, plus one-time
//! `at(...)` schedules for the fires EventBridge would skip.
//!
//! EventBridge differs from standard cron in three ways that matter here:
//! - one of day-of-month and day-of-week must be `?`. A standard expression that restricts both
//!   (a day matches if either matches) becomes two expressions, one per day field, whose union
//!   is the same set of days. On a day that matches both, both fire: the runs are told apart
//!   by [`fire_key`](super::fire_key), which is the same for both;
//! - day-of-week is 1-7 with 1 = Sunday (written here as names, `SUN`..`SAT`), and `L` in
//!   day-of-month stands alone, so `15,L` becomes two expressions as well;
//! - a time that falls in a spring-forward gap is skipped, where the product's contract runs it
//!   at the gap's end: [`gap_fires`] lists those fires, each with its `at(...)` schedule. A
//!   time in a fall-back fold runs once, as in the contract.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use super::cron::{CronExpr, WEEKDAYS};
use super::fires::{Fire, FireKind, fires_between};

/// A cron schedule as EventBridge Scheduler schedules: the union of `expressions`, each
/// evaluated in `timezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeSchedule {
    /// `cron(...)` expressions; more than one when the standard expression restricts both day
    /// fields, or has `L` among other days.
    pub expressions: Vec<String>,
    /// The IANA zone, for `ScheduleExpressionTimezone`.
    pub timezone: String,
}

/// One fire EventBridge would skip, and the one-time schedule that runs it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapFire {
    pub fire: Fire,
    /// `at(yyyy-mm-ddThh:mm:ss)` of the fire's instant in UTC.
    pub at_expression: String,
    /// `ScheduleExpressionTimezone` for `at_expression`: always `UTC`, so the one-time schedule
    /// does not depend on the zone's rules.
    pub at_timezone: &'static str,
}

/// The EventBridge Scheduler form of `expr` in `zone`. Every expression fits EventBridge's
/// 256 characters: the longest lists (every value but each third) come to 240.
pub fn translate(expr: &CronExpr, zone: Tz) -> EventBridgeSchedule {
    let minutes = render((0..60).filter(|m| expr.has_minute(*m)).collect(), 0, 59, true);
    let hours = render((0..24).filter(|h| expr.has_hour(*h)).collect(), 0, 23, true);
    let months = render((1..=12).filter(|m| expr.has_month(*m)).collect(), 1, 12, false);
    let days: Vec<u32> = (1..=31).filter(|d| expr.has_day(*d)).collect();
    let weekdays: Vec<u32> = (0..7).filter(|w| expr.has_weekday(*w)).collect();

    // The (day-of-month, day-of-week) pairs whose union is the expression's days.
    let mut day_fields: Vec<(String, String)> = Vec::new();
    if expr.day_of_month_restricted() {
        if !days.is_empty() {
            day_fields.push((render(days, 1, 31, false), "?".into()));
        }
        if expr.has_last_day() {
            day_fields.push(("L".into(), "?".into()));
        }
    }
    if expr.day_of_week_restricted() {
        day_fields.push(("?".into(), render_weekdays(&weekdays)));
    }
    if day_fields.is_empty() {
        day_fields.push(("*".into(), "?".into()));
    }
    let expressions = day_fields.into_iter().map(|(dom, dow)| format!("cron({minutes} {hours} {dom} {months} {dow} *)")).collect();
    EventBridgeSchedule { expressions, timezone: zone.name().to_string() }
}

/// The fires in `[from, from + horizon)` whose wall times fall in a daylight-saving gap and
/// that no real wall time covers: EventBridge skips them, so each needs a one-time schedule.
pub fn gap_fires(expr: &CronExpr, zone: Tz, from: DateTime<Utc>, horizon: Duration) -> Vec<GapFire> {
    let until = from.checked_add_signed(horizon).unwrap_or(DateTime::<Utc>::MAX_UTC);
    fires_between(expr, zone, from, until)
        .into_iter()
        .filter(|f| f.kind == FireKind::Gap)
        .map(|fire| GapFire { at_expression: at_expression(fire.at), fire, at_timezone: "UTC" })
        .collect()
}

/// `at(yyyy-mm-ddThh:mm:ss)` of `t` in UTC.
pub fn at_expression(t: DateTime<Utc>) -> String {
    format!("at({})", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// A field's values: `*` for all of them, `a/s` for a step to the field's end (minutes and
/// hours only: the form EventBridge documents), else a list of values and ranges.
fn render(values: Vec<u32>, lo: u32, hi: u32, steps: bool) -> String {
    if values.len() as u32 == hi - lo + 1 {
        return "*".into();
    }
    if steps && values.len() >= 3 {
        let s = values[1] - values[0];
        let progression = values.windows(2).all(|w| w[1] - w[0] == s);
        if progression && values[values.len() - 1] + s > hi {
            return format!("{}/{s}", values[0]);
        }
    }
    runs(&values).into_iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(",")
}

/// Weekdays (0 = Sunday) as EventBridge names, runs as ranges in EventBridge's order (SUN..SAT).
fn render_weekdays(weekdays: &[u32]) -> String {
    runs(weekdays)
        .into_iter()
        .map(|(a, b)| {
            let (a, b) = (WEEKDAYS[a as usize], WEEKDAYS[b as usize]);
            if a == b { a.to_string() } else { format!("{a}-{b}") }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Sorted values as runs of consecutive values; runs of two are two single values.
fn runs(values: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == v => *end = v,
            _ => out.push((v, v)),
        }
    }
    out.into_iter().flat_map(|(a, b)| if b == a + 1 { vec![(a, a), (b, b)] } else { vec![(a, b)] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Europe};

    fn eb(e: &str) -> Vec<String> {
        translate(&CronExpr::parse(e).unwrap(), Europe::Vienna).expressions
    }

    #[test]
    fn common_expressions() {
        assert_eq!(eb("0 6 2 * *"), ["cron(0 6 2 * ? *)"]);
        assert_eq!(eb("daily"), ["cron(0 0 * * ? *)"]);
        assert_eq!(eb("* * * * *"), ["cron(* * * * ? *)"]);
        assert_eq!(eb("0 9 * * MON-FRI"), ["cron(0 9 ? * MON-FRI *)"]);
        assert_eq!(eb("5 4 * * SUN"), ["cron(5 4 ? * SUN *)"]);
        assert_eq!(eb("5 4 * * 7"), ["cron(5 4 ? * SUN *)"]);
        assert_eq!(eb("0 0 * * SAT,SUN"), ["cron(0 0 ? * SUN,SAT *)"]);
        assert_eq!(eb("*/15 1-3 * * *"), ["cron(0/15 1-3 * * ? *)"]);
        assert_eq!(eb("0 */2 * * *"), ["cron(0 0/2 * * ? *)"]);
        assert_eq!(eb("10-20/5 * * * *"), ["cron(10,15,20 * * * ? *)"]);
        assert_eq!(eb("0 0 L * *"), ["cron(0 0 L * ? *)"]);
        assert_eq!(eb("0 0 31 1,3,5-8 *"), ["cron(0 0 31 1,3,5-8 ? *)"]);
        assert_eq!(eb("0 0 1,2,3,10 * *"), ["cron(0 0 1-3,10 * ? *)"]);
        assert_eq!(eb("0 0 1,2 * *"), ["cron(0 0 1,2 * ? *)"]);
    }

    #[test]
    fn both_day_fields_split_into_two() {
        assert_eq!(eb("0 0 1,15 * MON"), ["cron(0 0 1,15 * ? *)", "cron(0 0 ? * MON *)"]);
        assert_eq!(eb("0 0 15,L * *"), ["cron(0 0 15 * ? *)", "cron(0 0 L * ? *)"]);
        assert_eq!(eb("0 0 L * FRI"), ["cron(0 0 L * ? *)", "cron(0 0 ? * FRI *)"]);
    }

    #[test]
    fn zone_is_kept() {
        let s = translate(&CronExpr::parse("0 6 * * *").unwrap(), America::New_York);
        assert_eq!(s.timezone, "America/New_York");
    }

    #[test]
    fn the_longest_lists_fit_eventbridge() {
        let list = |lo: u32, hi: u32| (lo..=hi).filter(|v| v % 3 != 0).map(|v| v.to_string()).collect::<Vec<_>>().join(",");
        let e = format!("{} {} {} {} *", list(0, 59), list(0, 23), list(1, 31), list(1, 12));
        let s = eb(&e);
        assert_eq!(s[0].len(), 240, "{}", s[0]);
    }

    #[test]
    fn gap_fires_with_their_one_time_schedules() {
        let e = CronExpr::parse("30 2 * * *").unwrap();
        let from = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let gaps = gap_fires(&e, Europe::Vienna, from, Duration::days(3 * 365));
        let ats: Vec<&str> = gaps.iter().map(|g| g.at_expression.as_str()).collect();
        assert_eq!(ats, ["at(2026-03-29T01:00:00)", "at(2027-03-28T01:00:00)", "at(2028-03-26T01:00:00)"]);
        assert!(gaps.iter().all(|g| g.at_timezone == "UTC" && g.fire.kind == FireKind::Gap));
        // Gap times that join a real fire (03:00 here) need nothing: EventBridge runs 03:00.
        let e = CronExpr::parse("0 2,3 * * *").unwrap();
        assert!(gap_fires(&e, Europe::Vienna, from, Duration::days(365)).is_empty());
    }
}
