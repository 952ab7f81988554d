//! When a schedule fires: the wall times a cron expression names, in the schedule's zone,
//! turned into instants by the daylight-saving rules of [`zone`](super::zone), and the id each
//! fire's run is known by.
//!
//! Nominal wall times are enumerated in order and resolved one by one; since resolving is
//! monotonic (later wall times never give earlier instants), those that land on the same
//! instant are neighbours, and become one fire. That is how every time of a gap collapses
//! into one fire at the gap's end, or into the fire of the first real time after the gap.

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::cron::CronExpr;
use super::zone::{self, Resolution};

/// One run of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// The wall time the expression names, in `zone`. For a fire whose time fell in a
    /// daylight-saving gap, that time (which the clock never showed); `at` is later.
    pub nominal: NaiveDateTime,
    pub zone: Tz,
    /// When it runs.
    pub at: DateTime<Utc>,
    pub kind: FireKind,
    /// The wall times in a daylight-saving gap that this fire runs for (the nominal time
    /// first when `kind` is [`FireKind::Gap`]); empty for most fires.
    pub gap_times: Vec<NaiveDateTime>,
}

/// How a fire's wall time relates to the zone's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireKind {
    /// The wall time occurs once; the fire runs at it.
    Exact,
    /// The wall time occurs twice (clocks went back); the fire runs at its first occurrence only.
    Fold,
    /// The wall time fell in a gap (clocks went forward); the fire runs at the gap's end.
    Gap,
}

impl Fire {
    /// When it runs, on the zone's clock.
    pub fn local(&self) -> DateTime<Tz> {
        self.at.with_timezone(&self.zone)
    }
}

/// The id of the run of schedule `schedule_id` for `fire`: the same for every scheduler that
/// computes this fire, whatever the time zone database version says about offsets, because it
/// is made of the nominal wall time and the zone, e.g. `sch_1/2026-03-29T02:30[Europe/Vienna]`
/// (RFC 9557 style, without an offset: a wall time in a gap has none).
pub fn fire_key(schedule_id: &str, fire: &Fire) -> String {
    format!("{schedule_id}/{}[{}]", fire.nominal.format("%Y-%m-%dT%H:%M"), fire.zone.name())
}

/// The first `n` fires strictly after `after`.
pub fn next_fires(expr: &CronExpr, zone: Tz, after: DateTime<Utc>, n: usize) -> Vec<Fire> {
    fires(expr, zone, after).take(n).collect()
}

/// The fires with `from <= at < until`.
pub fn fires_between(expr: &CronExpr, zone: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Fire> {
    let before = from.checked_sub_signed(Duration::seconds(1)).unwrap_or(from);
    fires(expr, zone, before).skip_while(|f| f.at < from).take_while(|f| f.at < until).collect()
}

/// Every fire strictly after `after`, in order.
pub fn fires(expr: &CronExpr, zone: Tz, after: DateTime<Utc>) -> Fires<'_> {
    // Start two days early: a wall time up to a day before a gap's end may run at its end.
    let day = zone::local(zone, after).date();
    let start = day.checked_sub_days(Days::new(2)).unwrap_or(day);
    Fires {
        zone,
        after,
        hours: expr.hours().collect(),
        minutes: expr.minutes().collect(),
        expr,
        day: Some(start),
        times: Vec::new(),
        pending: None,
    }
}

/// The fires of an expression, in order (see [`fires`]).
pub struct Fires<'a> {
    expr: &'a CronExpr,
    zone: Tz,
    after: DateTime<Utc>,
    hours: Vec<u32>,
    minutes: Vec<u32>,
    /// The next day to enumerate; `None` once the calendar (or the search bound) ends.
    day: Option<NaiveDate>,
    /// Resolved wall times of the day being read, in reverse order (next one last).
    times: Vec<(NaiveDateTime, DateTime<Utc>, Resolution)>,
    /// The fire being gathered: more wall times may resolve to its instant.
    pending: Option<Fire>,
}

/// Days without a run before the search gives up: a valid expression runs at least every
/// eight years (February 29 skips 2100), so this only ends the calendar.
const MAX_EMPTY_DAYS: u32 = 9 * 366;

impl Fires<'_> {
    /// The next nominal wall time, resolved.
    fn next_time(&mut self) -> Option<(NaiveDateTime, DateTime<Utc>, Resolution)> {
        let mut empty = 0;
        while self.times.is_empty() {
            let day = self.day?;
            self.day = day.succ_opt();
            if self.expr.matches_date(day) {
                for &h in self.hours.iter().rev() {
                    for &m in self.minutes.iter().rev() {
                        let Some(wall) = day.and_hms_opt(h, m, 0) else { continue };
                        let (at, how) = zone::resolve(self.zone, wall);
                        self.times.push((wall, at, how));
                    }
                }
            } else {
                empty += 1;
                if empty > MAX_EMPTY_DAYS {
                    self.day = None;
                }
            }
        }
        self.times.pop()
    }
}

impl Iterator for Fires<'_> {
    type Item = Fire;

    fn next(&mut self) -> Option<Fire> {
        loop {
            let Some((wall, at, how)) = self.next_time() else { return self.pending.take() };
            if at <= self.after {
                continue;
            }
            if let Some(p) = &mut self.pending
                && p.at == at
            {
                // A real wall time at the gap's end is the fire; the gap's times join it.
                if how == Resolution::Gap {
                    p.gap_times.push(wall);
                } else {
                    p.nominal = wall;
                    p.kind = if how == Resolution::Fold { FireKind::Fold } else { FireKind::Exact };
                }
                continue;
            }
            let kind = match how {
                Resolution::Exact => FireKind::Exact,
                Resolution::Fold => FireKind::Fold,
                Resolution::Gap => FireKind::Gap,
            };
            let gap_times = if how == Resolution::Gap { vec![wall] } else { Vec::new() };
            let fire = Fire { nominal: wall, zone: self.zone, at, kind, gap_times };
            if let Some(done) = self.pending.replace(fire) {
                return Some(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Australia, Europe};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn expr(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap()
    }

    /// The local times (with offsets) of the first `n` fires after `after`.
    fn locals(e: &str, zone: Tz, after: &str, n: usize) -> Vec<String> {
        next_fires(&expr(e), zone, utc(after), n).iter().map(|f| f.local().format("%Y-%m-%dT%H:%M%:z").to_string()).collect()
    }

    #[test]
    fn vienna_gap_runs_once_at_three() {
        let fires = next_fires(&expr("30 2 * * *"), Europe::Vienna, utc("2026-03-28T00:00:00Z"), 3);
        assert_eq!(fires[0].local().to_rfc3339(), "2026-03-28T02:30:00+01:00");
        assert_eq!(fires[1].nominal, wall("2026-03-29T02:30"));
        assert_eq!(fires[1].local().to_rfc3339(), "2026-03-29T03:00:00+02:00");
        assert_eq!(fires[1].kind, FireKind::Gap);
        assert_eq!(fires[1].gap_times, [wall("2026-03-29T02:30")]);
        assert_eq!(fires[2].local().to_rfc3339(), "2026-03-30T02:30:00+02:00");
        assert_eq!(fires[2].kind, FireKind::Exact);
    }

    #[test]
    fn several_gap_times_collapse_into_one_fire() {
        let fires = next_fires(&expr("*/15 2 * * *"), Europe::Vienna, utc("2026-03-28T12:00:00Z"), 3);
        assert_eq!(fires[0].nominal, wall("2026-03-29T02:00"));
        assert_eq!(fires[0].at, utc("2026-03-29T01:00:00Z"));
        assert_eq!(fires[0].kind, FireKind::Gap);
        assert_eq!(fires[0].gap_times.len(), 4);
        assert_eq!(fires[1].local().to_rfc3339(), "2026-03-30T02:00:00+02:00");
    }

    #[test]
    fn gap_times_join_the_real_fire_at_the_gaps_end() {
        let got = locals("*/30 1-3 * * *", Europe::Vienna, "2026-03-29T00:00:00Z", 4);
        assert_eq!(got, ["2026-03-29T01:30+01:00", "2026-03-29T03:00+02:00", "2026-03-29T03:30+02:00", "2026-03-30T01:00+02:00"]);
        let fires = next_fires(&expr("*/30 1-3 * * *"), Europe::Vienna, utc("2026-03-29T00:30:00Z"), 1);
        assert_eq!(fires[0].nominal, wall("2026-03-29T03:00"));
        assert_eq!(fires[0].kind, FireKind::Exact);
        assert_eq!(fires[0].gap_times, [wall("2026-03-29T02:00"), wall("2026-03-29T02:30")]);
    }

    #[test]
    fn fold_runs_at_first_occurrence_only() {
        let got = locals("30 2 * * *", Europe::Vienna, "2026-10-24T12:00:00Z", 2);
        assert_eq!(got, ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"]);
        let got = locals("*/30 1-2 * * *", America::New_York, "2026-11-01T04:00:00Z", 5);
        assert_eq!(
            got,
            [
                "2026-11-01T01:00-04:00",
                "2026-11-01T01:30-04:00",
                "2026-11-01T02:00-05:00",
                "2026-11-01T02:30-05:00",
                "2026-11-02T01:00-05:00"
            ]
        );
        let f = &next_fires(&expr("30 1 * * *"), America::New_York, utc("2026-11-01T00:00:00Z"), 1)[0];
        assert_eq!(f.kind, FireKind::Fold);
    }

    #[test]
    fn new_york_gap() {
        let got = locals("0 2 * * *", America::New_York, "2026-03-07T12:00:00Z", 3);
        assert_eq!(got, ["2026-03-08T03:00-04:00", "2026-03-09T02:00-04:00", "2026-03-10T02:00-04:00"]);
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // 2025-10-05: 02:00 +10:30 -> 02:30 +11:00. 02:00 and 02:15 join the 02:30 fire.
        let got = locals("*/15 2 * * *", Australia::Lord_Howe, "2025-10-04T12:00:00Z", 3);
        assert_eq!(got, ["2025-10-05T02:30+11:00", "2025-10-05T02:45+11:00", "2025-10-06T02:00+11:00"]);
        let got = locals("15 2 * * *", Australia::Lord_Howe, "2025-10-04T12:00:00Z", 1);
        assert_eq!(got, ["2025-10-05T02:30+11:00"]);
        // 2026-04-05: 02:00 +11:00 -> 01:30 +10:30; 01:45 occurs twice and runs once.
        let got = locals("45 1 * * *", Australia::Lord_Howe, "2026-04-03T12:00:00Z", 3);
        assert_eq!(got, ["2026-04-04T01:45+11:00", "2026-04-05T01:45+11:00", "2026-04-06T01:45+10:30"]);
    }

    #[test]
    fn kolkata_and_utc_have_no_shifts() {
        let got = locals("0 6 2 * *", Asia::Kolkata, "2026-01-01T00:00:00Z", 2);
        assert_eq!(got, ["2026-01-02T06:00+05:30", "2026-02-02T06:00+05:30"]);
        let fires = next_fires(&expr("0 */2 * * *"), chrono_tz::UTC, utc("2026-03-29T00:00:00Z"), 12);
        assert!(fires.windows(2).all(|w| w[1].at - w[0].at == Duration::hours(2)));
        assert!(fires.iter().all(|f| f.kind == FireKind::Exact));
    }

    #[test]
    fn day_31_is_skipped_in_short_months() {
        let got = locals("0 0 31 * *", chrono_tz::UTC, "2026-01-01T00:00:00Z", 4);
        assert_eq!(got, ["2026-01-31T00:00+00:00", "2026-03-31T00:00+00:00", "2026-05-31T00:00+00:00", "2026-07-31T00:00+00:00"]);
    }

    #[test]
    fn last_day_of_each_month() {
        let got = locals("0 0 L * *", Europe::Vienna, "2027-12-01T00:00:00Z", 4);
        assert_eq!(got, ["2027-12-31T00:00+01:00", "2028-01-31T00:00+01:00", "2028-02-29T00:00+01:00", "2028-03-31T00:00+02:00"]);
    }

    #[test]
    fn after_is_exclusive() {
        let got = locals("0 6 * * *", chrono_tz::UTC, "2026-01-01T06:00:00Z", 1);
        assert_eq!(got, ["2026-01-02T06:00+00:00"]);
        let between = fires_between(&expr("0 6 * * *"), chrono_tz::UTC, utc("2026-01-01T06:00:00Z"), utc("2026-01-03T06:00:00Z"));
        assert_eq!(between.len(), 2);
    }

    #[test]
    fn a_gap_fire_after_the_start_is_kept_when_its_wall_time_is_before_it() {
        // After 01:00:00Z minus a second, the 02:30 nominal fire runs at 01:00:00Z (03:00 local).
        let got = locals("30 2 * * *", Europe::Vienna, "2026-03-29T00:59:59Z", 1);
        assert_eq!(got, ["2026-03-29T03:00+02:00"]);
    }

    #[test]
    fn leap_day_schedule_spans_years() {
        let got = locals("0 0 29 2 *", chrono_tz::UTC, "2096-03-01T00:00:00Z", 1);
        assert_eq!(got, ["2104-02-29T00:00+00:00"]);
    }

    #[test]
    fn ends_of_the_calendar_do_not_panic() {
        let near_end = DateTime::<Utc>::MAX_UTC - Duration::days(3);
        assert!(next_fires(&expr("* * * * *"), Europe::Vienna, near_end, 10).len() == 10);
        assert!(next_fires(&expr("0 0 1 * *"), Europe::Vienna, DateTime::<Utc>::MAX_UTC, 2).is_empty());
        assert_eq!(next_fires(&expr("0 0 * * *"), Europe::Vienna, DateTime::<Utc>::MIN_UTC, 2).len(), 2);
    }

    #[test]
    fn fire_key_is_the_nominal_wall_time_in_its_zone() {
        let fires = next_fires(&expr("30 2 * * *"), Europe::Vienna, utc("2026-03-29T00:00:00Z"), 1);
        assert_eq!(fire_key("sch_1", &fires[0]), "sch_1/2026-03-29T02:30[Europe/Vienna]");
        // Two schedulers computing the same minute from different starts agree.
        let again = next_fires(&expr("30 2 * * *"), Europe::Vienna, utc("2026-03-20T00:00:00Z"), 10);
        assert_eq!(fire_key("sch_1", &again[9]), fire_key("sch_1", &fires[0]));
    }
}
