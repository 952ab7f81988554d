//! Local wall times to instants, with the product's rules for the two daylight-saving cases:
//! a wall time in a spring-forward gap runs at the first valid instant after the gap, and a
//! wall time in a fall-back fold runs at its first occurrence.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// How a wall time became an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The wall time occurs exactly once.
    Exact,
    /// The wall time occurs twice (clocks went back); this is its first occurrence.
    Fold,
    /// The wall time does not exist (clocks went forward); this is the first valid instant
    /// after the gap.
    Gap,
}

/// The instant of the wall time `local` in `zone`.
pub fn resolve(zone: Tz, local: NaiveDateTime) -> (DateTime<Utc>, Resolution) {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => (t.with_timezone(&Utc), Resolution::Exact),
        LocalResult::Ambiguous(a, b) => (a.min(b).with_timezone(&Utc), Resolution::Fold),
        LocalResult::None => (gap_end(zone, local), Resolution::Gap),
    }
}

/// The first instant whose wall time is later than `local`, a wall time inside a gap.
fn gap_end(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // The first whole minute after the gap. Gaps are at most a day long (Pacific/Apia skipped
    // 2011-12-30); the bound only keeps a broken zone table from looping.
    let mut probe = local;
    let mut upper = None;
    for _ in 0..3 * 24 * 60 {
        let Some(next) = probe.checked_add_signed(Duration::minutes(1)) else { break };
        probe = next;
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            upper = Some(t.with_timezone(&Utc));
            break;
        }
    }
    let Some(upper) = upper else { return Utc.from_utc_datetime(&local) };
    // Modern transitions fall on whole minutes, so `upper` is the answer; old ones (local mean
    // time) may fall within the minute before it. Wall time is monotonic there: search it.
    let later = |t: DateTime<Utc>| self::local(zone, t) > local;
    let Some(mut lo) = upper.checked_sub_signed(Duration::seconds(60)) else { return upper };
    let mut hi = upper;
    if later(lo) {
        return upper;
    }
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if later(mid) { hi = mid } else { lo = mid }
    }
    hi
}

/// The wall time of `t` in `zone` (at the ends of chrono's calendar, where the wall time is out
/// of range, the UTC time).
pub fn local(zone: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    let offset = zone.offset_from_utc_datetime(&t.naive_utc()).fix();
    t.naive_utc().checked_add_offset(offset).unwrap_or(t.naive_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn wall(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn gap_resolves_to_its_end() {
        let (t, r) = resolve(chrono_tz::Europe::Vienna, wall(2026, 3, 29, 2, 30));
        assert_eq!((t, r), (utc("2026-03-29T01:00:00Z"), Resolution::Gap));
        let (t, r) = resolve(chrono_tz::America::New_York, wall(2026, 3, 8, 2, 0));
        assert_eq!((t, r), (utc("2026-03-08T07:00:00Z"), Resolution::Gap));
        // Lord Howe moves by half an hour: 02:00 -> 02:30 (+10:30 -> +11:00).
        let (t, r) = resolve(chrono_tz::Australia::Lord_Howe, wall(2025, 10, 5, 2, 15));
        assert_eq!((t, r), (utc("2025-10-04T15:30:00Z"), Resolution::Gap));
    }

    #[test]
    fn fold_resolves_to_first_occurrence() {
        let (t, r) = resolve(chrono_tz::Europe::Vienna, wall(2026, 10, 25, 2, 30));
        assert_eq!((t, r), (utc("2026-10-25T00:30:00Z"), Resolution::Fold));
        let (t, r) = resolve(chrono_tz::America::New_York, wall(2026, 11, 1, 1, 30));
        assert_eq!((t, r), (utc("2026-11-01T05:30:00Z"), Resolution::Fold));
    }

    #[test]
    fn midnight_gap_resolves_to_one_o_clock() {
        // America/Santiago springs forward at 24:00 -> 01:00.
        let (t, r) = resolve(chrono_tz::America::Santiago, wall(2025, 9, 7, 0, 0));
        assert_eq!(r, Resolution::Gap);
        assert_eq!(local(chrono_tz::America::Santiago, t), wall(2025, 9, 7, 1, 0));
    }

    #[test]
    fn gap_ending_within_a_minute() {
        // Asia/Kolkata left Madras time (+05:21:10) for IST (+05:30) at the start of 1906: a gap
        // of 8 minutes 50 seconds, so its end is not on a whole minute.
        let zone = chrono_tz::Asia::Kolkata;
        let gap = (0..120)
            .map(|m| wall(1905, 12, 31, 23, 0) + Duration::minutes(m))
            .find(|w| resolve(zone, *w).1 == Resolution::Gap)
            .expect("a gap around 1906-01-01 in Asia/Kolkata");
        let (end, _) = resolve(zone, gap);
        assert_ne!(end.timestamp() % 60, 0, "the gap ends within a minute");
        assert!(local(zone, end) > gap);
        assert!(local(zone, end - Duration::seconds(1)) < gap);
    }

    #[test]
    fn ordinary_time_is_exact() {
        let (t, r) = resolve(chrono_tz::Asia::Kolkata, wall(2026, 7, 1, 6, 0));
        assert_eq!((t, r), (utc("2026-07-01T00:30:00Z"), Resolution::Exact));
    }
}
