//! Five-field cron expressions: `minute hour day-of-month month day-of-week`.
//!
//! Each field takes `*`, a value, a range `a-b`, a step `*/s`, `a-b/s` or `a/s` (from `a` to the
//! field's end), and comma lists of these. Months take `JAN`..`DEC`, weekdays `SUN`..`SAT`
//! (case-insensitive); weekday 0 and 7 are both Sunday. The day of month also takes `L`, the
//! last day of the month, and both day fields take `?` as a synonym of `*`. The presets
//! `hourly`, `daily`, `weekly`, `monthly` and `yearly` (also `@hourly`, ..., `@annually`) stand
//! for `0 * * * *`, `0 0 * * *`, `0 0 * * 0`, `0 0 1 * *` and `0 0 1 1 *`.
//!
//! When both day fields are restricted (neither is a bare `*` or `?`), a day matches if either
//! matches, as in Vixie cron and croniter: `0 0 1,15 * MON` runs on the 1st, the 15th and every
//! Monday. A field such as `*/2` counts as restricted (croniter does the same; Vixie cron treats
//! any field starting with `*` as unrestricted).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// The field of a cron expression an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    /// The expression as a whole (its number of fields, an unknown preset).
    Expression,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronField {
    pub fn as_str(self) -> &'static str {
        match self {
            CronField::Expression => "expression",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day_of_month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day_of_week",
        }
    }

    /// What a field accepts, for error messages.
    fn allowed(self) -> &'static str {
        match self {
            CronField::Expression => {
                "five fields `minute hour day-of-month month day-of-week`, or one of hourly, daily, weekly, monthly, yearly (also with `@`)"
            }
            CronField::Minute => "0-59, `*`, ranges `a-b`, steps `*/s` or `a-b/s`, comma lists",
            CronField::Hour => "0-23, `*`, ranges `a-b`, steps `*/s` or `a-b/s`, comma lists",
            CronField::DayOfMonth => "1-31 or `L` (last day of the month), `*`, `?`, ranges `a-b`, steps `*/s` or `a-b/s`, comma lists",
            CronField::Month => "1-12 or JAN-DEC, `*`, ranges `a-b`, steps `*/s` or `a-b/s`, comma lists",
            CronField::DayOfWeek => "0-7 (0 and 7 are Sunday) or SUN-SAT, `*`, `?`, ranges `a-b`, steps `*/s` or `a-b/s`, comma lists",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Expression => (0, 0),
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cron expression that cannot be used: which field, the value given there, what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron {field}: `{value}` is not valid ({reason}); allowed: {allowed}")]
pub struct CronError {
    pub field: CronField,
    /// The part of the expression that is wrong (the whole field, or the item in a list).
    pub value: String,
    /// Why it is wrong.
    pub reason: String,
    /// What the field accepts.
    pub allowed: String,
}

impl CronError {
    fn new(field: CronField, value: &str, reason: impl Into<String>) -> Self {
        CronError { field, value: value.to_string(), reason: reason.into(), allowed: field.allowed().to_string() }
    }
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
/// Weekday names by number, Sunday = 0.
pub(crate) const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed cron expression: the set of values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    minutes: u64,
    hours: u32,
    /// Days 1..=31 as bits 1..=31.
    days: u32,
    /// `L` in the day of month: the last day of each month.
    last_day: bool,
    /// Months 1..=12 as bits 1..=12.
    months: u16,
    /// Weekdays as bits 0..=6, Sunday = 0.
    weekdays: u8,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, CronError> {
        CronExpr::parse(s)
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl CronExpr {
    /// Parse a five-field expression or a preset.
    pub fn parse(s: &str) -> Result<CronExpr, CronError> {
        let trimmed = s.trim();
        let expanded = match trimmed.trim_start_matches('@').to_ascii_lowercase().as_str() {
            "hourly" => "0 * * * *",
            "daily" => "0 0 * * *",
            "weekly" => "0 0 * * 0",
            "monthly" => "0 0 1 * *",
            "yearly" | "annually" => "0 0 1 1 *",
            _ if trimmed.starts_with('@') => {
                return Err(CronError::new(CronField::Expression, trimmed, "not a known preset"));
            }
            _ => trimmed,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError::new(CronField::Expression, trimmed, format!("{} fields, expected 5", parts.len())));
        }
        let minutes = parse_field(parts[0], CronField::Minute)?;
        let hours = parse_field(parts[1], CronField::Hour)?;
        let days = parse_field(parts[2], CronField::DayOfMonth)?;
        let months = parse_field(parts[3], CronField::Month)?;
        let weekdays = parse_field(parts[4], CronField::DayOfWeek)?;
        // Sunday is both 0 and 7.
        let weekday_bits = (weekdays.bits | (weekdays.bits >> 7)) & 0x7f;
        let expr = CronExpr {
            source: trimmed.to_string(),
            minutes: minutes.bits,
            hours: hours.bits as u32,
            days: days.bits as u32,
            last_day: days.last,
            months: months.bits as u16,
            weekdays: weekday_bits as u8,
            day_of_month_restricted: !days.star,
            day_of_week_restricted: !weekdays.star,
        };
        expr.check_some_day_exists(parts[2])?;
        Ok(expr)
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Refuse a day of month that no chosen month has (`0 0 30 2 *`): it would never run.
    /// February 29 counts (leap years).
    fn check_some_day_exists(&self, field: &str) -> Result<(), CronError> {
        if self.day_of_week_restricted || self.last_day {
            return Ok(());
        }
        let exists = (1..=12u32).filter(|m| self.has_month(*m)).any(|m| (1..=max_days(m)).any(|d| self.has_day(d)));
        if exists {
            Ok(())
        } else {
            let months: Vec<&str> = (1..=12u32).filter(|m| self.has_month(*m)).map(|m| MONTHS[m as usize - 1]).collect();
            Err(CronError::new(CronField::DayOfMonth, field, format!("no such day in {}: the schedule would never run", months.join(", "))))
        }
    }

    pub fn has_minute(&self, m: u32) -> bool {
        m < 60 && self.minutes & (1 << m) != 0
    }

    pub fn has_hour(&self, h: u32) -> bool {
        h < 24 && self.hours & (1 << h) != 0
    }

    /// Whether day `d` (1..=31) is in the day-of-month field (not counting `L`).
    pub fn has_day(&self, d: u32) -> bool {
        (1..=31).contains(&d) && self.days & (1 << d) != 0
    }

    pub fn has_month(&self, m: u32) -> bool {
        (1..=12).contains(&m) && self.months & (1 << m) != 0
    }

    /// Whether weekday `w` (0 = Sunday .. 6 = Saturday) is in the day-of-week field.
    pub fn has_weekday(&self, w: u32) -> bool {
        w < 7 && self.weekdays & (1 << w) != 0
    }

    /// Whether the day of month has `L`.
    pub fn has_last_day(&self) -> bool {
        self.last_day
    }

    /// Whether the day of month is anything but `*` / `?`.
    pub fn day_of_month_restricted(&self) -> bool {
        self.day_of_month_restricted
    }

    /// Whether the day of week is anything but `*` / `?`.
    pub fn day_of_week_restricted(&self) -> bool {
        self.day_of_week_restricted
    }

    /// Minutes of the hour, in order.
    pub fn minutes(&self) -> impl Iterator<Item = u32> + '_ {
        (0..60).filter(|m| self.has_minute(*m))
    }

    /// Hours of the day, in order.
    pub fn hours(&self) -> impl Iterator<Item = u32> + '_ {
        (0..24).filter(|h| self.has_hour(*h))
    }

    /// Whether the expression runs on `date` (any time of it).
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if !self.has_month(date.month()) {
            return false;
        }
        let by_day = self.has_day(date.day()) || (self.last_day && date.day() == days_in_month(date.year(), date.month()));
        let by_weekday = self.has_weekday(date.weekday().num_days_from_sunday());
        match (self.day_of_month_restricted, self.day_of_week_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }
}

/// The number of days of month `month` in `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

/// The most days month `month` ever has (February: 29).
pub(crate) fn max_days(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The values of one field.
struct FieldSet {
    bits: u64,
    /// `L` given (day of month only).
    last: bool,
    /// The field is a bare `*` (or `?` in a day field).
    star: bool,
}

fn parse_field(text: &str, field: CronField) -> Result<FieldSet, CronError> {
    let (lo, hi) = field.bounds();
    let day_field = matches!(field, CronField::DayOfMonth | CronField::DayOfWeek);
    if text == "*" || (day_field && text == "?") {
        let bits = (lo..=hi).fold(0u64, |b, v| b | (1 << v));
        return Ok(FieldSet { bits, last: false, star: true });
    }
    let mut set = FieldSet { bits: 0, last: false, star: false };
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::new(field, text, "an empty item in the list"));
        }
        if field == CronField::DayOfMonth && item.eq_ignore_ascii_case("L") {
            set.last = true;
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| CronError::new(field, item, "the step after `/` must be a number"))?;
                if step == 0 || step > hi - lo + 1 {
                    return Err(CronError::new(field, item, format!("the step must be 1 to {}", hi - lo + 1)));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = value(a, field, item, false)?;
            let b = value(b, field, item, true)?;
            if a > b {
                return Err(CronError::new(field, item, "a range must go from the lower to the higher value"));
            }
            (a, b)
        } else {
            let a = value(range, field, item, false)?;
            // `a/s` runs from `a` to the end of the field.
            (a, if step.is_some() { hi } else { a })
        };
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            set.bits |= 1 << v;
            v += step;
        }
    }
    if field == CronField::DayOfWeek && set.bits & (1 << 7) != 0 {
        set.bits |= 1;
    }
    Ok(set)
}

/// One value of a field: a number in range, or a month or weekday name. `range_end`: a weekday
/// `SUN` ending a range is 7, so that `MON-SUN` and `FRI-SUN` read as written.
fn value(text: &str, field: CronField, item: &str, range_end: bool) -> Result<u32, CronError> {
    let (lo, hi) = field.bounds();
    let upper = text.to_ascii_uppercase();
    let named = match field {
        CronField::Month => MONTHS.iter().position(|n| *n == upper).map(|i| i as u32 + 1),
        CronField::DayOfWeek => WEEKDAYS.iter().position(|n| *n == upper).map(|i| if i == 0 && range_end { 7 } else { i as u32 }),
        _ => None,
    };
    if let Some(v) = named {
        return Ok(v);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        let why = if field == CronField::DayOfMonth && upper == "L" {
            "`L` stands alone, without a range or step".to_string()
        } else {
            format!("`{text}` is not a number{}", if matches!(field, CronField::Month | CronField::DayOfWeek) { " or name" } else { "" })
        };
        return Err(CronError::new(field, item, why));
    }
    match text.parse::<u32>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(CronError::new(field, item, format!("{text} is out of range {lo}-{hi}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> CronError {
        CronExpr::parse(s).expect_err(s)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn lists_ranges_and_steps() {
        let e = parse("*/15 9-17/4 1,15,20-22 * *");
        assert_eq!(e.minutes().collect::<Vec<_>>(), [0, 15, 30, 45]);
        assert_eq!(e.hours().collect::<Vec<_>>(), [9, 13, 17]);
        assert!((1..=31).filter(|d| e.has_day(*d)).eq([1, 15, 20, 21, 22]));
        let e = parse("5/20 * * * *");
        assert_eq!(e.minutes().collect::<Vec<_>>(), [5, 25, 45]);
    }

    #[test]
    fn month_and_weekday_names() {
        let e = parse("0 0 * jan,Mar-MAY MON-FRI");
        assert!((1..=12).filter(|m| e.has_month(*m)).eq([1, 3, 4, 5]));
        assert!((0..7).filter(|w| e.has_weekday(*w)).eq([1, 2, 3, 4, 5]));
        // SUN ending a range is 7, so FRI-SUN is Friday to Sunday.
        let e = parse("0 0 * * FRI-SUN");
        assert!((0..7).filter(|w| e.has_weekday(*w)).eq([0, 5, 6]));
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        for s in ["0 0 * * 0", "0 0 * * 7", "0 0 * * SUN"] {
            let e = parse(s);
            assert!((0..7).filter(|w| e.has_weekday(*w)).eq([0]), "{s}");
        }
        assert_eq!(parse("0 0 * * 5-7").weekdays, 0b110_0001);
    }

    #[test]
    fn presets() {
        for (p, e) in
            [("hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("weekly", "0 0 * * 0"), ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *")]
        {
            let (a, b) = (parse(p), parse(e));
            assert_eq!((a.minutes, a.hours, a.days, a.months, a.weekdays), (b.minutes, b.hours, b.days, b.months, b.weekdays), "{p}");
        }
        assert_eq!(err("@reboot").field, CronField::Expression);
    }

    #[test]
    fn either_day_field_matches_when_both_are_restricted() {
        let e = parse("0 0 1,15 * MON");
        assert!(e.matches_date(date(2026, 3, 1))); // a Sunday, the 1st
        assert!(e.matches_date(date(2026, 3, 2))); // a Monday
        assert!(e.matches_date(date(2026, 3, 15)));
        assert!(!e.matches_date(date(2026, 3, 3)));
        // `*/2` is a restriction too.
        let e = parse("0 0 */2 * MON");
        assert!(e.matches_date(date(2026, 3, 2)));
        assert!(e.matches_date(date(2026, 3, 3)));
        assert!(!e.matches_date(date(2026, 3, 4)));
    }

    #[test]
    fn only_the_restricted_day_field_counts() {
        let e = parse("0 0 * * MON");
        assert!(e.matches_date(date(2026, 3, 2)) && !e.matches_date(date(2026, 3, 3)));
        let e = parse("0 0 13 * ?");
        assert!(e.matches_date(date(2026, 3, 13)) && !e.matches_date(date(2026, 3, 16)));
    }

    #[test]
    fn last_day_of_month() {
        let e = parse("0 0 L * *");
        assert!(e.matches_date(date(2026, 2, 28)));
        assert!(e.matches_date(date(2028, 2, 29)) && !e.matches_date(date(2028, 2, 28)));
        assert!(e.matches_date(date(2026, 4, 30)) && e.matches_date(date(2026, 12, 31)));
        let e = parse("0 0 15,L * *");
        assert!(e.matches_date(date(2026, 4, 15)) && e.matches_date(date(2026, 4, 30)));
    }

    #[test]
    fn day_31_only_in_long_months() {
        let e = parse("0 0 31 * *");
        assert!(!e.matches_date(date(2026, 4, 30)));
        assert!(e.matches_date(date(2026, 5, 31)));
    }

    #[test]
    fn errors_name_field_value_and_what_is_allowed() {
        let e = err("61 * * * *");
        assert_eq!((e.field, e.value.as_str()), (CronField::Minute, "61"));
        assert!(e.reason.contains("0-59"), "{e}");
        let e = err("0 24 * * *");
        assert_eq!((e.field, e.value.as_str()), (CronField::Hour, "24"));
        let e = err("0 0 0 * *");
        assert_eq!((e.field, e.value.as_str()), (CronField::DayOfMonth, "0"));
        assert!(e.allowed.contains("`L`"), "{e}");
        let e = err("0 0 * 13 *");
        assert_eq!(e.field, CronField::Month);
        let e = err("0 0 * * 8");
        assert_eq!(e.field, CronField::DayOfWeek);
        let e = err("0 0 * * MONDAY");
        assert_eq!((e.field, e.value.as_str()), (CronField::DayOfWeek, "MONDAY"));
        let e = err("0 0 * *");
        assert_eq!(e.field, CronField::Expression);
        assert!(e.reason.contains("4 fields"), "{e}");
        assert_eq!(err("*/0 * * * *").field, CronField::Minute);
        assert_eq!(err("*/x * * * *").field, CronField::Minute);
        assert_eq!(err("1,,2 * * * *").field, CronField::Minute);
        assert_eq!(err("0 5-2 * * *").field, CronField::Hour);
        assert_eq!(err("0 0 L-3 * *").field, CronField::DayOfMonth);
        assert_eq!(err("0 0 L * L").field, CronField::DayOfWeek);
        assert_eq!(err("0 0 -1 * *").field, CronField::DayOfMonth);
        assert_eq!(err("? 0 * * *").field, CronField::Minute);
        let shown = err("0 0 32 * *").to_string();
        assert!(shown.starts_with("cron day_of_month: `32` is not valid"), "{shown}");
    }

    #[test]
    fn a_day_no_chosen_month_has_is_refused() {
        let e = err("0 0 30 2 *");
        assert_eq!((e.field, e.value.as_str()), (CronField::DayOfMonth, "30"));
        assert!(e.reason.contains("FEB"), "{e}");
        assert_eq!(err("0 0 31 4,6,9,11 *").field, CronField::DayOfMonth);
        // February 29 exists in leap years; with a weekday the OR runs on Mondays anyway.
        parse("0 0 29 2 *");
        parse("0 0 30 2 MON");
        parse("0 0 L 2 *");
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(2026, 2), 28);
        assert_eq!(days_in_month(2028, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2026, 12), 31);
        assert_eq!(days_in_month(2026, 4), 30);
    }
}
