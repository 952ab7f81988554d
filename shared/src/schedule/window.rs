//! The time window a scheduled run exports, relative to when it fires, on the calendar of the
//! schedule's zone: `{"type": "previous_month"}` run at 2026-03-02 06:00 Europe/Vienna covers
//! 2026-02-01T00:00+01:00 up to (not including) 2026-03-01T00:00+01:00.
//!
//! Windows are half-open, `[start, end)`, in UTC. Day boundaries are local midnights; a midnight
//! that does not exist (zones that change the clock at midnight, such as America/Santiago)
//! is the first valid instant after it, and one that occurs twice is its first occurrence.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::zone;

/// Which window a scheduled run exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "WindowSpec")]
pub enum Window {
    /// The calendar day before the day of the run.
    PreviousDay,
    /// The ISO week (Monday to Monday) before the week of the run.
    PreviousWeek,
    /// The calendar month before the month of the run.
    PreviousMonth,
    /// From the first of the run's month up to the run.
    MonthToDate,
    /// The `n` hours (elapsed time, 1 to 8784) up to the run.
    LastNHours { n: u32 },
    /// The `n` whole calendar days (1 to 366) before the day of the run; `n = 1` is
    /// `previous_day`.
    LastNDays { n: u32 },
}

/// A window as written: read first, then checked, so that a `Window` read from JSON is valid
/// (serde's `deny_unknown_fields` lets `{"type": "previous_day", "n": 1}` through).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    #[serde(rename = "type")]
    kind: WindowKind,
    n: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WindowKind {
    PreviousDay,
    PreviousWeek,
    PreviousMonth,
    MonthToDate,
    LastNHours,
    LastNDays,
}

impl TryFrom<WindowSpec> for Window {
    type Error = String;

    fn try_from(spec: WindowSpec) -> Result<Window, String> {
        let window = match (spec.kind, spec.n) {
            (WindowKind::LastNHours, Some(n)) => Window::LastNHours { n },
            (WindowKind::LastNDays, Some(n)) => Window::LastNDays { n },
            (WindowKind::LastNHours | WindowKind::LastNDays, None) => return Err("missing field `n`".into()),
            (_, Some(_)) => return Err("`n` is only for last_n_hours and last_n_days".into()),
            (WindowKind::PreviousDay, None) => Window::PreviousDay,
            (WindowKind::PreviousWeek, None) => Window::PreviousWeek,
            (WindowKind::PreviousMonth, None) => Window::PreviousMonth,
            (WindowKind::MonthToDate, None) => Window::MonthToDate,
        };
        window.validate().map_err(|e| e.to_string())?;
        Ok(window)
    }
}

/// A half-open interval of instants: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A window whose parameter is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window {kind}: n = {value} is not allowed; allowed: {allowed}")]
pub struct WindowError {
    /// The window's `type`.
    pub kind: &'static str,
    /// The field, `n`.
    pub field: &'static str,
    pub value: u32,
    pub allowed: &'static str,
}

const MAX_DAYS: u32 = 366;
const MAX_HOURS: u32 = 366 * 24;

impl Window {
    /// Check the parameter: `n` of `last_n_days` 1 to 366, of `last_n_hours` 1 to 8784.
    pub fn validate(&self) -> Result<(), WindowError> {
        match *self {
            Window::LastNDays { n } if !(1..=MAX_DAYS).contains(&n) => {
                Err(WindowError { kind: "last_n_days", field: "n", value: n, allowed: "1 to 366 days" })
            }
            Window::LastNHours { n } if !(1..=MAX_HOURS).contains(&n) => {
                Err(WindowError { kind: "last_n_hours", field: "n", value: n, allowed: "1 to 8784 hours" })
            }
            _ => Ok(()),
        }
    }

    /// The window of a run at `at` of a schedule in `zone`.
    pub fn resolve(&self, at: DateTime<Utc>, zone: Tz) -> Result<TimeWindow, WindowError> {
        self.validate()?;
        let today = zone::local(zone, at).date();
        let midnight = |d: NaiveDate| zone::resolve(zone, d.and_time(chrono::NaiveTime::MIN)).0;
        let first_of_month = today.with_day(1).unwrap_or(today);
        let days_before = |d: NaiveDate, n: u32| d.checked_sub_days(Days::new(n.into())).unwrap_or(NaiveDate::MIN);
        let (start, end) = match *self {
            Window::PreviousDay => (midnight(days_before(today, 1)), midnight(today)),
            Window::PreviousWeek => {
                let monday = days_before(today, today.weekday().num_days_from_monday());
                (midnight(days_before(monday, 7)), midnight(monday))
            }
            Window::PreviousMonth => {
                let previous = first_of_month.checked_sub_months(Months::new(1)).unwrap_or(first_of_month);
                (midnight(previous), midnight(first_of_month))
            }
            Window::MonthToDate => (midnight(first_of_month), at),
            Window::LastNHours { n } => (at.checked_sub_signed(Duration::hours(n.into())).unwrap_or(DateTime::<Utc>::MIN_UTC), at),
            Window::LastNDays { n } => (midnight(days_before(today, n)), midnight(today)),
        };
        Ok(TimeWindow { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe};
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The window as local RFC 3339 times.
    fn window(w: Window, at: &str, zone: Tz) -> (String, String) {
        let r = w.resolve(utc(at), zone).unwrap();
        (r.start.with_timezone(&zone).to_rfc3339(), r.end.with_timezone(&zone).to_rfc3339())
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn previous_month_in_vienna() {
        // A run at 2026-03-02 06:00 Europe/Vienna.
        let got = window(Window::PreviousMonth, "2026-03-02T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00"));
        // Across the change to summer time: March has 743 hours.
        let got = window(Window::PreviousMonth, "2026-04-02T04:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"));
        let w = Window::PreviousMonth.resolve(utc("2026-04-02T04:00:00Z"), Europe::Vienna).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(31 * 24 - 1));
    }

    #[test]
    fn year_ends() {
        let got = window(Window::PreviousMonth, "2026-01-02T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2025-12-01T00:00:00+01:00", "2026-01-01T00:00:00+01:00"));
        let got = window(Window::PreviousDay, "2026-01-01T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2025-12-31T00:00:00+01:00", "2026-01-01T00:00:00+01:00"));
        // 2026-01-01 is a Thursday; its ISO week began on Monday 2025-12-29.
        let got = window(Window::PreviousWeek, "2026-01-01T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2025-12-22T00:00:00+01:00", "2025-12-29T00:00:00+01:00"));
        let got = window(Window::LastNDays { n: 3 }, "2026-01-02T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2025-12-30T00:00:00+01:00", "2026-01-02T00:00:00+01:00"));
    }

    #[test]
    fn the_local_day_not_the_utc_day() {
        // 2026-03-02 01:00 in Kolkata is still 2026-03-01 in UTC.
        let got = window(Window::PreviousDay, "2026-03-01T19:30:00Z", Asia::Kolkata);
        assert_eq!(got, pair("2026-03-01T00:00:00+05:30", "2026-03-02T00:00:00+05:30"));
        // 2026-03-01 21:00 in New York is 2026-03-02 in UTC.
        let got = window(Window::PreviousDay, "2026-03-02T02:00:00Z", America::New_York);
        assert_eq!(got, pair("2026-02-28T00:00:00-05:00", "2026-03-01T00:00:00-05:00"));
    }

    #[test]
    fn previous_day_across_daylight_saving() {
        let w = Window::PreviousDay.resolve(utc("2026-03-30T04:00:00Z"), Europe::Vienna).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(23));
        let w = Window::PreviousDay.resolve(utc("2026-10-26T05:00:00Z"), Europe::Vienna).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(25));
        let w = Window::PreviousWeek.resolve(utc("2026-11-04T12:00:00Z"), America::New_York).unwrap();
        assert_eq!(w.end - w.start, Duration::hours(7 * 24 + 1));
    }

    #[test]
    fn month_to_date_and_last_n_hours() {
        let got = window(Window::MonthToDate, "2026-03-02T05:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2026-03-01T00:00:00+01:00", "2026-03-02T06:00:00+01:00"));
        // Elapsed hours: across the change the wall clock moves by 4, the window is 3 hours.
        let got = window(Window::LastNHours { n: 3 }, "2026-03-29T02:00:00Z", Europe::Vienna);
        assert_eq!(got, pair("2026-03-29T00:00:00+01:00", "2026-03-29T04:00:00+02:00"));
    }

    #[test]
    fn missing_midnight_is_the_first_valid_instant() {
        // America/Santiago springs forward at 2025-09-07 00:00 -> 01:00.
        let got = window(Window::PreviousDay, "2025-09-08T12:00:00Z", America::Santiago);
        assert_eq!(got, pair("2025-09-07T01:00:00-03:00", "2025-09-08T00:00:00-03:00"));
        // Asia/Beirut (2026-03-29 00:00 -> 01:00).
        let got = window(Window::PreviousDay, "2026-03-30T09:00:00Z", Asia::Beirut);
        assert_eq!(got, pair("2026-03-29T01:00:00+03:00", "2026-03-30T00:00:00+03:00"));
    }

    #[test]
    fn ends_of_the_calendar_do_not_panic() {
        for w in [Window::PreviousWeek, Window::PreviousMonth, Window::LastNDays { n: 366 }, Window::LastNHours { n: 8784 }] {
            w.resolve(DateTime::<Utc>::MIN_UTC, Europe::Vienna).unwrap();
            w.resolve(DateTime::<Utc>::MAX_UTC, Europe::Vienna).unwrap();
        }
    }

    #[test]
    fn serde_tags() {
        let w: Window = serde_json::from_value(json!({"type": "previous_month"})).unwrap();
        assert_eq!(w, Window::PreviousMonth);
        let w: Window = serde_json::from_value(json!({"type": "last_n_days", "n": 7})).unwrap();
        assert_eq!(w, Window::LastNDays { n: 7 });
        assert_eq!(serde_json::to_value(Window::LastNHours { n: 6 }).unwrap(), json!({"type": "last_n_hours", "n": 6}));
        assert!(serde_json::from_value::<Window>(json!({"type": "since_last_success"})).is_err());
        assert!(serde_json::from_value::<Window>(json!({"type": "previous_day", "n": 1})).is_err());
        assert!(serde_json::from_value::<Window>(json!({"type": "last_n_days"})).is_err());
        assert!(serde_json::from_value::<Window>(json!({"type": "last_n_days", "n": 7, "x": 1})).is_err());
        let e = serde_json::from_value::<Window>(json!({"type": "last_n_hours", "n": 9000})).unwrap_err();
        assert!(e.to_string().contains("1 to 8784 hours"), "{e}");
    }

    #[test]
    fn n_is_validated() {
        let e = Window::LastNDays { n: 0 }.validate().unwrap_err();
        assert_eq!((e.kind, e.field, e.value, e.allowed), ("last_n_days", "n", 0, "1 to 366 days"));
        assert!(Window::LastNDays { n: 367 }.resolve(utc("2026-01-01T00:00:00Z"), chrono_tz::UTC).is_err());
        assert!(Window::LastNDays { n: 366 }.validate().is_ok());
        let e = Window::LastNHours { n: 8785 }.validate().unwrap_err();
        assert_eq!(e.to_string(), "window last_n_hours: n = 8785 is not allowed; allowed: 1 to 8784 hours");
        assert!(Window::LastNHours { n: 8784 }.validate().is_ok());
    }
}
