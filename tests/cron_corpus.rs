//! The schedule engine against independent implementations, over a corpus of cron expressions
//! in five zones (Europe/Vienna, America/New_York, Australia/Lord_Howe with its half-hour
//! shift, Asia/Kolkata at +05:30, UTC):
//! - fire times: the first 1,000 fires after 2025-01-01T00:00Z, and 300 fires from a few days
//!   before each 2025 daylight-saving change, against Python's croniter + zoneinfo
//!   (tests/readers/cron_fires.py, which states how croniter is held to the contract). Fires
//!   stop at 2100: chrono-tz's compiled zone table ends with 2099 (docs/schedules.md);
//! - EventBridge Scheduler: the fires of the translated `cron(...)` expressions, read by a small
//!   evaluator of EventBridge's syntax here (`?`, 1 = SUN, `L`, gap times skipped, fold times
//!   once), together with `gap_fires`, are exactly the engine's fires over four years.

use crate::support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use egress::schedule::eventbridge::{gap_fires, translate};
use egress::schedule::{CronExpr, FireKind, fires_between, next_fires};
use serde_json::{Value, json};

const CORPUS: &[&str] = &[
    "30 2 * * *",
    "*/15 1-3 * * *",
    "*/15 2 * * *",
    "0 6 2 * *",
    "0 0 L * *",
    "0 0 31 * *",
    "0 9 * * MON-FRI",
    "0 0 1,15 * MON",
    "0 */2 * * *",
    "5 4 * * SUN",
    "45 1 * * *",
    "15 2 * * *",
    "0 1 * * *",
    "*/20 * * * *",
    "0 12 13 * FRI",
    "0 3 */2 * *",
    "30 1 1-7 * SAT",
    "59 23 L 2,3 *",
    "0 0,12 * 3,4,10,11 0,6",
    "hourly",
    "@weekly",
    "monthly",
];

const ZONES: &[&str] = &["Europe/Vienna", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"];

/// A few days before each 2025 daylight-saving change of a zone.
fn changes(zone: &str) -> &'static [&'static str] {
    match zone {
        "Europe/Vienna" => &["2025-03-27T00:00:00Z", "2025-10-23T00:00:00Z"],
        "America/New_York" => &["2025-03-06T00:00:00Z", "2025-10-30T00:00:00Z"],
        "Australia/Lord_Howe" => &["2025-04-03T00:00:00Z", "2025-10-02T00:00:00Z"],
        _ => &[],
    }
}

/// The end of the compiled time zone table: later fires use standard time.
const UNTIL: &str = "2100-01-01T00:00:00Z";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[test]
fn fires_agree_with_croniter() {
    let mut cases = Vec::new();
    for expr in CORPUS {
        for zone in ZONES {
            cases.push(json!({"expr": expr, "zone": zone, "start": "2025-01-01T00:00:00Z", "count": 1000, "until": UNTIL}));
            for start in changes(zone) {
                cases.push(json!({"expr": expr, "zone": zone, "start": start, "count": 300, "until": UNTIL}));
            }
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/readers/cron_fires.py");
    let mut child = Command::new(support::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cron_fires.py");
    child.stdin.take().unwrap().write_all(json!({ "cases": cases }).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cron_fires.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("cron_fires.py prints JSON");
    let expected = answer["fires"].as_array().unwrap();
    assert_eq!(expected.len(), cases.len());

    let (mut gaps, mut collapsed, mut joined, mut folds) = (0, 0, 0, 0);
    for (case, want) in cases.iter().zip(expected) {
        let expr = CronExpr::parse(case["expr"].as_str().unwrap()).unwrap();
        let zone: Tz = case["zone"].as_str().unwrap().parse().unwrap();
        let n = case["count"].as_u64().unwrap() as usize;
        let mut fires = next_fires(&expr, zone, utc(case["start"].as_str().unwrap()), n);
        fires.retain(|f| f.at < utc(UNTIL));
        let got: Vec<String> = fires.iter().map(|f| iso(f.at)).collect();
        let want: Vec<String> = want.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert!(got.len() >= 100, "{case}: only {} fires before {UNTIL}", got.len());
        if let Some(i) = (0..n).find(|i| got.get(*i) != want.get(*i)) {
            panic!("{case}: fire {i}: egress {:?} (nominal {:?}), croniter {:?}", got.get(i), fires.get(i).map(|f| f.nominal), want.get(i));
        }
        for f in &fires {
            gaps += usize::from(f.kind == FireKind::Gap);
            collapsed += usize::from(f.kind == FireKind::Gap && f.gap_times.len() > 1);
            joined += usize::from(f.kind != FireKind::Gap && !f.gap_times.is_empty());
            folds += usize::from(f.kind == FireKind::Fold);
        }
    }
    // The corpus must reach every daylight-saving case, and croniter's folds must have needed
    // the normalisation.
    assert!(gaps > 0 && collapsed > 0 && joined > 0 && folds > 0, "gaps {gaps}, collapsed {collapsed}, joined {joined}, folds {folds}");
    assert!(answer["normalised"]["fold_repeat_dropped"].as_u64().unwrap() > 0, "{}", answer["normalised"]);
}

/// One EventBridge Scheduler `cron(minutes hours day-of-month month day-of-week year)`.
struct EbCron {
    minutes: BTreeSet<u32>,
    hours: BTreeSet<u32>,
    /// `None`: `?`.
    days: Option<BTreeSet<u32>>,
    last_day: bool,
    months: BTreeSet<u32>,
    /// EventBridge numbers, 1 = SUN .. 7 = SAT; `None`: `?`.
    weekdays: Option<BTreeSet<u32>>,
}

const EB_DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl EbCron {
    fn parse(e: &str) -> EbCron {
        let inner = e.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')).unwrap_or_else(|| panic!("not cron(...): {e}"));
        let f: Vec<&str> = inner.split(' ').collect();
        assert_eq!(f.len(), 6, "{e}");
        assert_eq!(f[5], "*", "year field of {e}");
        assert!((f[2] == "?") != (f[4] == "?"), "exactly one of day-of-month and day-of-week is `?`: {e}");
        let values = |s: &str, lo: u32, hi: u32, names: &[&str]| -> BTreeSet<u32> {
            let num = |t: &str| names.iter().position(|n| *n == t).map_or_else(|| t.parse::<u32>().unwrap(), |i| i as u32 + lo);
            let mut out = BTreeSet::new();
            for item in s.split(',') {
                if item == "*" {
                    out.extend(lo..=hi);
                } else if let Some((a, step)) = item.split_once('/') {
                    out.extend((num(a)..=hi).step_by(step.parse().unwrap()));
                } else if let Some((a, b)) = item.split_once('-') {
                    out.extend(num(a)..=num(b));
                } else {
                    out.insert(num(item));
                }
            }
            assert!(out.iter().all(|v| (lo..=hi).contains(v)), "{s} in {e}");
            out
        };
        EbCron {
            minutes: values(f[0], 0, 59, &[]),
            hours: values(f[1], 0, 23, &[]),
            days: (f[2] != "?" && f[2] != "L").then(|| values(f[2], 1, 31, &[])),
            last_day: f[2] == "L",
            months: values(f[3], 1, 12, &[]),
            weekdays: (f[4] != "?").then(|| values(f[4], 1, 7, &EB_DAYS)),
        }
    }

    fn matches_date(&self, d: NaiveDate) -> bool {
        if !self.months.contains(&d.month()) {
            return false;
        }
        if let Some(w) = &self.weekdays {
            return w.contains(&(d.weekday().num_days_from_sunday() + 1));
        }
        if self.last_day {
            return d.succ_opt().is_some_and(|n| n.month() != d.month());
        }
        self.days.as_ref().is_some_and(|days| days.contains(&d.day()))
    }

    /// The instants EventBridge runs at in `[from, until)`: a wall time in a gap is skipped,
    /// one in a fold runs once.
    fn runs(&self, zone: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> BTreeSet<DateTime<Utc>> {
        let mut out = BTreeSet::new();
        let mut d = from.with_timezone(&zone).date_naive() - Duration::days(1);
        let last = until.with_timezone(&zone).date_naive() + Duration::days(1);
        while d <= last {
            if self.matches_date(d) {
                for h in &self.hours {
                    for m in &self.minutes {
                        let wall = d.and_hms_opt(*h, *m, 0).unwrap();
                        let at = match zone.from_local_datetime(&wall) {
                            LocalResult::Single(t) => t,
                            LocalResult::Ambiguous(a, b) => a.min(b),
                            LocalResult::None => continue,
                        };
                        let at = at.with_timezone(&Utc);
                        if at >= from && at < until {
                            out.insert(at);
                        }
                    }
                }
            }
            d = d.succ_opt().unwrap();
        }
        out
    }
}

#[test]
fn eventbridge_translation_and_gap_fires_give_the_same_fires() {
    let (from, until) = (utc("2025-01-01T00:00:00Z"), utc("2029-01-01T00:00:00Z"));
    let mut gap_total = 0;
    for source in CORPUS {
        let expr = CronExpr::parse(source).unwrap();
        for zone in ZONES {
            let zone: Tz = zone.parse().unwrap();
            let schedule = translate(&expr, zone);
            assert_eq!(schedule.timezone, zone.name());
            let mut eventbridge = BTreeSet::new();
            for e in &schedule.expressions {
                eventbridge.extend(EbCron::parse(e).runs(zone, from, until));
            }
            let gaps = gap_fires(&expr, zone, from, until - from);
            gap_total += gaps.len();
            let one_time: BTreeSet<DateTime<Utc>> = gaps
                .iter()
                .map(|g| {
                    assert_eq!(g.at_timezone, "UTC");
                    let inner = g.at_expression.strip_prefix("at(").and_then(|s| s.strip_suffix(')')).unwrap();
                    let at = Utc.from_utc_datetime(&chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S").unwrap());
                    assert_eq!(at, g.fire.at);
                    at
                })
                .collect();
            assert!(eventbridge.is_disjoint(&one_time), "{source} in {zone}: EventBridge already runs a gap fire");
            let engine: BTreeSet<DateTime<Utc>> = fires_between(&expr, zone, from, until).iter().map(|f| f.at).collect();
            let union: BTreeSet<DateTime<Utc>> = eventbridge.union(&one_time).copied().collect();
            if union != engine {
                let missing: Vec<String> = engine.difference(&union).take(3).map(|t| iso(*t)).collect();
                let extra: Vec<String> = union.difference(&engine).take(3).map(|t| iso(*t)).collect();
                panic!("{source} in {zone} as {:?}: missing {missing:?}, extra {extra:?}", schedule.expressions);
            }
        }
    }
    assert!(gap_total > 0, "the corpus has gap fires");
}
