//! What a user should know about a schedule when creating it: days some months lack, both day
//! fields restricted (either matches), and wall times that daylight saving moves or runs once.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, Utc};
use chrono_tz::Tz;

use super::cron::{CronExpr, WEEKDAYS};
use super::fires::{Fire, FireKind, fires_between};

const MONTH_NAMES: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/// How far ahead the daylight-saving cases are looked for.
const HORIZON_DAYS: i64 = 2 * 366;

/// Human warnings for a schedule of `expr` in `zone`, created at `now`. Empty when nothing
/// is surprising.
pub fn warnings(expr: &CronExpr, zone: Tz, now: DateTime<Utc>) -> Vec<String> {
    let mut out = day_warnings(expr);
    out.extend(daylight_saving_warnings(expr, zone, now));
    out
}

fn day_warnings(expr: &CronExpr) -> Vec<String> {
    let mut out = Vec::new();
    if expr.day_of_month_restricted() {
        for day in 29..=31u32 {
            if !expr.has_day(day) {
                continue;
            }
            let short: Vec<u32> = (1..=12).filter(|m| expr.has_month(*m) && day > super::cron::max_days(*m)).collect();
            let leap_only = day == 29 && expr.has_month(2);
            if short.is_empty() && !leap_only {
                continue;
            }
            let months = if short.len() >= 5 {
                format!("months shorter than {day} days")
            } else if short.is_empty() {
                String::new()
            } else {
                join(&short.iter().map(|m| MONTH_NAMES[*m as usize - 1].to_string()).collect::<Vec<_>>())
            };
            let mut text = format!("day {day} is skipped in {months}");
            if leap_only {
                text = if short.is_empty() {
                    format!("day {day} is skipped in February except in leap years")
                } else {
                    format!("{text}, and in February except in leap years")
                };
            }
            out.push(format!("{text} (not moved to another day; use L for the last day of the month)"));
        }
    }
    if expr.day_of_month_restricted() && expr.day_of_week_restricted() {
        let weekdays: Vec<String> = (0..7).filter(|w| expr.has_weekday(*w)).map(|w| WEEKDAYS[w as usize].to_string()).collect();
        out.push(format!(
            "both day of month and day of week are set: the schedule runs on days that match either (any {} as well as the days of month given)",
            join(&weekdays)
        ));
    }
    out
}

fn daylight_saving_warnings(expr: &CronExpr, zone: Tz, now: DateTime<Utc>) -> Vec<String> {
    // Wall times in a gap, keyed by the times of day and the time they ran at; folds by time
    // of day. The value is the first date it happens.
    let mut gaps: BTreeMap<(Vec<NaiveTime>, NaiveTime), NaiveDate> = BTreeMap::new();
    let mut folds: BTreeMap<NaiveTime, NaiveDate> = BTreeMap::new();
    for f in transition_fires(expr, zone, now) {
        if !f.gap_times.is_empty() {
            let times = f.gap_times.iter().map(|t| t.time()).collect();
            gaps.entry((times, super::zone::local(zone, f.at).time())).or_insert(f.gap_times[0].date());
        }
        if f.kind == FireKind::Fold {
            folds.entry(f.nominal.time()).or_insert(f.nominal.date());
        }
    }
    let mut out = Vec::new();
    for ((times, ran), first) in gaps {
        let (subject, verb) = if times.len() == 1 { (hhmm(times[0]), "falls") } else { (describe_times(&times), "fall") };
        let runs = if times.len() == 1 { "then runs" } else { "then run once" };
        out.push(format!(
            "{subject} {verb} in the daylight-saving gap on some days in {zone} and {runs} at {} (next on {first})",
            hhmm(ran),
            zone = zone.name()
        ));
    }
    if !folds.is_empty() {
        let first = folds.values().min().copied().unwrap_or_default();
        let times: Vec<NaiveTime> = folds.into_keys().collect();
        let (subject, verb) = if times.len() == 1 { (hhmm(times[0]), "occurs") } else { (describe_times(&times), "occur") };
        let runs = if times.len() == 1 { "runs" } else { "each runs" };
        out.push(format!(
            "{subject} {verb} twice on some days in {zone} when clocks go back, and {runs} only at its first occurrence (next on {first})",
            zone = zone.name()
        ));
    }
    out
}

/// The fires around each change of the zone's offset within the horizon. Looking only there
/// keeps a schedule that runs every minute cheap to check.
fn transition_fires(expr: &CronExpr, zone: Tz, now: DateTime<Utc>) -> Vec<Fire> {
    let offset = |t: DateTime<Utc>| t.with_timezone(&zone).offset().fix();
    let plus = |t: DateTime<Utc>, d: Duration| t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let step = Duration::hours(12);
    let end = plus(now, Duration::days(HORIZON_DAYS));
    let mut out: Vec<Fire> = Vec::new();
    let mut t = now;
    while t < end {
        let next = plus(t, step);
        if offset(t) != offset(next) {
            // A gap's wall times may be up to a day before its end.
            let day_before = t.checked_sub_signed(Duration::days(1)).unwrap_or(t);
            let from = day_before.max(out.last().map_or(now, |f| plus(f.at, Duration::seconds(1))));
            out.extend(fires_between(expr, zone, from, plus(next, Duration::days(1))));
        }
        t = next;
    }
    out
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// `02:00, 02:15 and 02:30`, or `12 times from 02:00 to 02:55` for long lists.
fn describe_times(times: &[NaiveTime]) -> String {
    if times.len() > 4 {
        return format!("{} times from {} to {}", times.len(), hhmm(times[0]), hhmm(times[times.len() - 1]));
    }
    join(&times.iter().map(|t| hhmm(*t)).collect::<Vec<_>>())
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Australia, Europe};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn warn(e: &str, zone: Tz) -> Vec<String> {
        warnings(&CronExpr::parse(e).unwrap(), zone, utc("2026-01-15T00:00:00Z"))
    }

    #[test]
    fn day_31_and_30_and_29() {
        assert_eq!(
            warn("0 6 31 * *", chrono_tz::UTC),
            ["day 31 is skipped in months shorter than 31 days (not moved to another day; use L for the last day of the month)"]
        );
        assert_eq!(
            warn("0 6 30 * *", chrono_tz::UTC),
            ["day 30 is skipped in February (not moved to another day; use L for the last day of the month)"]
        );
        assert_eq!(
            warn("0 6 29 * *", chrono_tz::UTC),
            ["day 29 is skipped in February except in leap years (not moved to another day; use L for the last day of the month)"]
        );
        assert_eq!(
            warn("0 6 31 1-6 *", chrono_tz::UTC),
            ["day 31 is skipped in February, April and June (not moved to another day; use L for the last day of the month)"]
        );
        assert!(warn("0 6 31 1,3,5 *", chrono_tz::UTC).is_empty());
        assert!(warn("0 6 L * *", chrono_tz::UTC).is_empty());
        assert!(warn("0 6 * * *", chrono_tz::UTC).is_empty());
    }

    #[test]
    fn both_day_fields() {
        assert_eq!(
            warn("0 0 1,15 * MON,FRI", chrono_tz::UTC),
            [
                "both day of month and day of week are set: the schedule runs on days that match either (any MON and FRI as well as the days of month given)"
            ]
        );
    }

    #[test]
    fn vienna_gap() {
        assert_eq!(
            warn("30 2 * * *", Europe::Vienna),
            [
                "02:30 falls in the daylight-saving gap on some days in Europe/Vienna and then runs at 03:00 (next on 2026-03-29)",
                "02:30 occurs twice on some days in Europe/Vienna when clocks go back, and runs only at its first occurrence (next on 2026-10-25)"
            ]
        );
    }

    #[test]
    fn collapsed_gap_times() {
        let w = warn("*/15 2 * * *", Europe::Vienna);
        assert_eq!(
            w[0],
            "02:00, 02:15, 02:30 and 02:45 fall in the daylight-saving gap on some days in Europe/Vienna and then run once at 03:00 (next on 2026-03-29)"
        );
        let w = warn("*/5 * * * *", America::New_York);
        assert_eq!(
            w[0],
            "12 times from 02:00 to 02:55 fall in the daylight-saving gap on some days in America/New_York and then run once at 03:00 (next on 2026-03-08)"
        );
        assert_eq!(
            w[1],
            "12 times from 01:00 to 01:55 occur twice on some days in America/New_York when clocks go back, and each runs only at its first occurrence (next on 2026-11-01)"
        );
    }

    #[test]
    fn lord_howe_half_hour() {
        let w = warn("15 2 * * *", Australia::Lord_Howe);
        assert_eq!(
            w,
            ["02:15 falls in the daylight-saving gap on some days in Australia/Lord_Howe and then runs at 02:30 (next on 2026-10-04)"]
        );
    }

    #[test]
    fn end_of_the_calendar_does_not_panic() {
        let e = CronExpr::parse("30 2 31 * *").unwrap();
        assert_eq!(warnings(&e, Europe::Vienna, DateTime::<Utc>::MAX_UTC).len(), 1);
    }

    #[test]
    fn no_daylight_saving_no_warning() {
        assert!(warn("30 2 * * *", Asia::Kolkata).is_empty());
        assert!(warn("0 6 2 * *", Europe::Vienna).is_empty());
    }
}
