//! Schedules: the `/v1/schedules` routes, and the in-process scheduler on a clock the test
//! moves (a month of daily runs in moments), across a restart, after downtime, with two
//! schedulers racing on one store, and an incremental sync with a failed run in the middle.
//! In process, over the local host's real services (SQLite, folder blob store, local runner).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use egress::local::client::Client;
use egress::local::{LocalHost, LocalOptions};
use egress::scheduler::{ManualClock, Scheduler};
use egress::store::{ExportQuery, ExportStore};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const TENANT: &str = "acme";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn open(dir: &Path, roots: &Path) -> LocalHost {
    LocalHost::open(LocalOptions { data_dir: dir.into(), public_url: "http://127.0.0.1:1".into(), dataset_roots: vec![roots.into()] })
        .unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    roots: PathBuf,
    dataset: PathBuf,
}

/// A dataset folder of CSV files with a timestamp column `ts`: `rows` rows an hour from
/// `from` for `hours` hours, in `part-000.csv`.
fn setup(from: DateTime<Utc>, hours: i64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("datasets");
    let dataset = roots.join("events");
    std::fs::create_dir_all(&dataset).unwrap();
    write_rows(&dataset, "part-000.csv", from, hours, 0);
    Setup { data: dir.path().join("data"), roots, dataset, _dir: dir }
}

/// Write two rows an hour (at :10 and :40) for `hours` hours from `from`, ids from `first_id`.
fn write_rows(dir: &Path, name: &str, from: DateTime<Utc>, hours: i64, first_id: u64) -> u64 {
    let mut s = String::from("id,ts,amount\n");
    let mut id = first_id;
    for h in 0..hours {
        for m in [10, 40] {
            let t = from + Span::hours(h) + Span::minutes(m);
            s.push_str(&format!("{id},{},{}.5\n", t.format("%Y-%m-%dT%H:%M:%SZ"), id % 97));
            id += 1;
        }
    }
    std::fs::write(dir.join(name), s).unwrap();
    id
}

async fn admin(host: &LocalHost) -> String {
    egress::local::demo::admin_key(host, TENANT).await.unwrap()
}

fn export_body(s: &Setup) -> Value {
    json!({"source": {"type": "dataset", "local_path": s.dataset.to_str().unwrap()}, "format": "csv", "sort": [{"column": "id"}]})
}

/// The schedule's runs, oldest first, once none is still going.
async fn settled_runs(client: &Client<'_>, id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs?limit=100"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut items = body["items"].as_array().unwrap().clone();
        if items.iter().all(|r| !matches!(r["status"].as_str(), Some("pending" | "running" | "paused"))) {
            items.reverse();
            return items;
        }
        assert!(Instant::now() < deadline, "runs did not finish: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(client: &Client<'_>, body: Value) -> Value {
    let (status, _, created) = client.call(Method::POST, "/v1/schedules", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_routes() {
    let s = setup(utc("2026-01-01T00:00:00Z"), 24);
    let host = open(&s.data, &s.roots);
    let client = Client { services: &host.services, token: admin(&host).await };
    let body = json!({
        "name": "month end", "cron": "0 6 31 * *", "timezone": "Europe/Vienna", "export": export_body(&s),
        "window": {"type": "previous_month", "column": "ts"}, "timeout_secs": 3600
    });
    let created = create(&client, body.clone()).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sch_"));
    let next = created["next_runs"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    for r in next {
        let local = DateTime::parse_from_rfc3339(r["local"].as_str().unwrap()).unwrap();
        assert_eq!(local.with_timezone(&Utc), utc(r["utc"].as_str().unwrap()));
        assert!(r["local"].as_str().unwrap().contains("-31T06:00:00+0"), "{r}");
        assert!(r["utc"].as_str().unwrap().ends_with('Z'));
    }
    let warnings = created["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("day 31 is skipped")), "{warnings:?}");

    // Get, list.
    let (status, _, got) = client.call(Method::GET, &format!("/v1/schedules/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["cron"], "0 6 31 * *");
    assert_eq!(got["window"], json!({"type": "previous_month", "column": "ts"}));
    assert_eq!(got["overlap"], "skip");
    assert_eq!(got["missed"], "run_once");
    assert_eq!(got["next_runs"], created["next_runs"]);
    assert!(got.get("created_by").is_none());
    let (_, _, list) = client.call(Method::GET, "/v1/schedules", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // The name is unique per tenant.
    let (status, _, p) = client.call(Method::POST, "/v1/schedules", Some(&body)).await;
    assert_eq!((status, p["code"].as_str()), (StatusCode::CONFLICT, Some("CONFLICT")), "{p}");

    // Bad fields are named.
    let mut bad = body.clone();
    bad["name"] = "bad".into();
    bad["cron"] = "0 25 * * *".into();
    bad["timezone"] = "Europe/Atlantis".into();
    bad["window"] = json!({"type": "last_n_days", "n": 0, "column": "ts"});
    let (status, _, p) = client.call(Method::POST, "/v1/schedules", Some(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(pointers(&p), ["/cron", "/timezone", "/window"]);
    let errors = p["errors"].as_array().unwrap();
    assert_eq!(errors[0]["value"], "0 25 * * *");
    assert!(errors[0]["allowed"].as_str().unwrap().contains("0-23"), "{p}");
    assert_eq!(errors[1]["value"], "Europe/Atlantis");
    assert!(errors[2]["allowed"].as_str().unwrap().contains("1 to 366"), "{p}");
    let mut bad = body.clone();
    bad["name"] = "bad".into();
    bad["window"] = json!({"type": "previous_day"});
    let (_, _, p) = client.call(Method::POST, "/v1/schedules", Some(&bad)).await;
    assert_eq!(pointers(&p), ["/window/column"]);
    // The export body goes through the export route's checks.
    bad["window"] = json!({"type": "previous_day", "column": "no_such_column"});
    let (status, _, p) = client.call(Method::POST, "/v1/schedules", Some(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(pointers(&p), ["/export/time_range/column"]);
    bad["window"] = json!({"type": "previous_day", "column": "ts"});
    bad["export"]["format"] = "docx".into();
    let (status, _, p) = client.call(Method::POST, "/v1/schedules", Some(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(pointers(&p).iter().all(|x| x.starts_with("/export/format")), "{p}");

    // Update: a new expression; the name cannot change.
    let mut changed = body.clone();
    changed["cron"] = "daily".into();
    let (status, _, put) = client.call(Method::PUT, &format!("/v1/schedules/{id}"), Some(&changed)).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["cron"], "daily");
    assert!(put["warnings"].as_array().unwrap().is_empty(), "{put}");
    changed["name"] = "renamed".into();
    let (status, _, p) = client.call(Method::PUT, &format!("/v1/schedules/{id}"), Some(&changed)).await;
    assert_eq!((status, pointers(&p)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["/name".to_string()]));

    // Pause, resume.
    let (status, _, paused) = client.call(Method::POST, &format!("/v1/schedules/{id}/pause"), None).await;
    assert_eq!((status, &paused["paused"]), (StatusCode::OK, &json!(true)));
    assert!(paused["next_runs"].as_array().unwrap().is_empty());
    let (_, _, resumed) = client.call(Method::POST, &format!("/v1/schedules/{id}/resume"), None).await;
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["next_runs"].as_array().unwrap().len(), 5);

    // Run now, twice: two runs, newest first, each with its export and the window of now.
    for _ in 0..2 {
        let (status, _, run) = client.call(Method::POST, &format!("/v1/schedules/{id}/run"), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{run}");
        assert_eq!(run["trigger"], "manual");
    }
    let runs = settled_runs(&client, &id).await;
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r["status"], "completed", "{r}");
        assert!(r["export_id"].as_str().unwrap().starts_with("exp_"));
        assert!(r["finished_at"].is_string() && r["bytes"].as_u64().unwrap() > 0);
        assert_eq!(r["destinations"].as_array().unwrap().len(), 1, "{r}");
        let (_, _, e) = client.call(Method::GET, &format!("/v1/exports/{}", r["export_id"].as_str().unwrap()), None).await;
        assert_eq!(e["schedule"]["id"], id.as_str());
        assert_eq!(e["spec"]["time_range"]["column"], "ts");
    }
    let (_, _, page) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs?limit=1"), None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], runs[1]["id"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, _, page) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs?limit=1&cursor={cursor}"), None).await;
    assert_eq!(page["items"][0]["id"], runs[0]["id"]);

    // Delete.
    let (status, _, _) = client.call(Method::DELETE, &format!("/v1/schedules/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = client.call(Method::GET, &format!("/v1/schedules/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, _, audit) = client.call(Method::GET, "/v1/audit?limit=100", None).await;
    let actions: BTreeSet<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for a in ["schedule.create", "schedule.update", "schedule.pause", "schedule.resume", "schedule.run", "schedule.fire", "schedule.delete"]
    {
        assert!(actions.contains(a), "{a} missing from {actions:?}");
    }
}

/// A daily 06:00 UTC schedule of the previous day.
fn daily(s: &Setup, name: &str, missed: &str) -> Value {
    json!({"name": name, "cron": "0 6 * * *", "timezone": "UTC", "export": export_body(s),
           "window": {"type": "previous_day", "column": "ts"}, "missed": missed})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_daily_runs_across_a_restart() {
    let t0 = utc("2026-01-01T00:00:00Z");
    let s = setup(t0, 24);
    let clock = Arc::new(ManualClock::new(t0));
    let mut host = open(&s.data, &s.roots);
    let token = admin(&host).await;
    let id = {
        let client = Client { services: &host.services, token: token.clone() };
        create(&client, daily(&s, "daily", "run_once")).await["id"].as_str().unwrap().to_string()
    };
    let started = Instant::now();
    let mut scheduler = Scheduler::new(host.services.clone(), clock.clone());
    scheduler.tick().await.unwrap();
    for day in 0..30 {
        if day == 15 {
            // Restart: a new host and scheduler over the same data folder.
            drop(scheduler);
            drop(host);
            host = open(&s.data, &s.roots);
            host.orchestrator.recover().await.unwrap();
            scheduler = Scheduler::new(host.services.clone(), clock.clone());
        }
        // Ticks before, at and after the fire: one run each day.
        clock.set(t0 + Span::days(day) + Span::hours(5));
        scheduler.tick().await.unwrap();
        clock.set(t0 + Span::days(day) + Span::hours(6) + Span::seconds(5));
        let r = scheduler.tick().await.unwrap();
        assert_eq!(r.started, 1, "day {day}: {r:?}");
        clock.advance(Span::minutes(30));
        let client = Client { services: &host.services, token: token.clone() };
        settled_runs(&client, &id).await;
        scheduler.tick().await.unwrap();
    }
    let client = Client { services: &host.services, token: token.clone() };
    let runs = settled_runs(&client, &id).await;
    assert_eq!(runs.len(), 30);
    for (i, r) in runs.iter().enumerate() {
        let day = t0 + Span::days(i as i64);
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["trigger"], "schedule");
        assert_eq!(r["fire_key"], format!("{id}/{}[UTC]", (day + Span::hours(6)).format("%Y-%m-%dT%H:%M")));
        assert_eq!(utc(r["window"]["start"].as_str().unwrap()), day - Span::days(1));
        assert_eq!(utc(r["window"]["end"].as_str().unwrap()), day);
        // Only the dataset's day (the day before the second run) has rows.
        assert_eq!(r["rows"], if i == 1 { 48 } else { 0 }, "{r}");
    }
    let exports = host.store.list_exports(TENANT, &ExportQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(exports.items.len(), 30);
    eprintln!("30 daily runs in {:.2} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downtime_runs_the_latest_missed_fire_once_or_none() {
    let t0 = utc("2026-01-01T00:00:00Z");
    let s = setup(t0, 24);
    let clock = Arc::new(ManualClock::new(t0));
    let host = open(&s.data, &s.roots);
    let client = Client { services: &host.services, token: admin(&host).await };
    let once = create(&client, daily(&s, "once", "run_once")).await["id"].as_str().unwrap().to_string();
    let skip = create(&client, daily(&s, "skip", "skip")).await["id"].as_str().unwrap().to_string();
    let scheduler = Scheduler::new(host.services.clone(), clock.clone());
    scheduler.tick().await.unwrap();
    // Down from before the first fire until noon of the fifth day: five fires missed.
    clock.set(t0 + Span::days(4) + Span::hours(12));
    scheduler.tick().await.unwrap();
    scheduler.tick().await.unwrap();
    let runs = settled_runs(&client, &once).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "catch_up");
    assert_eq!(runs[0]["fire_key"], format!("{once}/2026-01-05T06:00[UTC]"));
    assert_eq!(runs[0]["status"], "completed");
    assert!(settled_runs(&client, &skip).await.is_empty());
    // The next fire runs on time for both.
    clock.set(t0 + Span::days(5) + Span::hours(6) + Span::seconds(30));
    scheduler.tick().await.unwrap();
    assert_eq!(settled_runs(&client, &once).await.len(), 2);
    let runs = settled_runs(&client, &skip).await;
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0]["trigger"].as_str(), runs[0]["status"].as_str()), (Some("schedule"), Some("completed")));
    // Two minutes late is missed: skip runs nothing, run_once runs it as a catch-up.
    clock.set(t0 + Span::days(6) + Span::hours(6) + Span::minutes(2));
    scheduler.tick().await.unwrap();
    assert_eq!(settled_runs(&client, &skip).await.len(), 1);
    let runs = settled_runs(&client, &once).await;
    assert_eq!((runs.len(), runs[2]["trigger"].as_str()), (3, Some("catch_up")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_make_one_run_per_fire() {
    let t0 = utc("2026-01-01T00:00:00Z");
    let s = setup(t0, 24);
    let clock = Arc::new(ManualClock::new(t0));
    let host = open(&s.data, &s.roots);
    // A second host over the same data folder: its own SQLite connection and runner.
    let other = open(&s.data, &s.roots);
    let client = Client { services: &host.services, token: admin(&host).await };
    let mut body = daily(&s, "raced", "run_once");
    body["cron"] = "0 * * * *".into();
    body["window"] = json!({"type": "last_n_hours", "n": 1, "column": "ts"});
    let id = create(&client, body).await["id"].as_str().unwrap().to_string();
    let a = Scheduler::new(host.services.clone(), clock.clone());
    let b = Scheduler::new(other.services.clone(), clock.clone());
    a.tick().await.unwrap();
    for hour in 1..=12 {
        clock.set(t0 + Span::hours(hour) + Span::seconds(1));
        let (ra, rb) = tokio::join!(a.tick(), b.tick());
        ra.unwrap();
        rb.unwrap();
        settled_runs(&client, &id).await;
    }
    let runs = settled_runs(&client, &id).await;
    assert_eq!(runs.len(), 12, "{runs:#?}");
    let keys: BTreeSet<&str> = runs.iter().map(|r| r["fire_key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 12);
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:#?}");
    let exports = host.store.list_exports(TENANT, &ExportQuery { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(exports.items.len(), 12);
    // Every hour's rows, once.
    assert_eq!(runs.iter().map(|r| r["rows"].as_u64().unwrap()).sum::<u64>(), 24);
}

/// The `id`s of a completed export's CSV files.
fn delivered_ids(host: &LocalHost, export: &egress::model::Export) -> Vec<u64> {
    let mut ids = Vec::new();
    for f in &export.result.as_ref().unwrap().files {
        let text = std::fs::read_to_string(host.blobs.path_of(&f.key).unwrap()).unwrap();
        for line in text.lines().skip(1) {
            ids.push(line.split(',').next().unwrap().parse().unwrap());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_delivers_every_row_once_across_a_failed_run() {
    let t0 = utc("2026-01-01T00:00:00Z");
    let s = setup(t0, 1);
    let clock = Arc::new(ManualClock::new(t0));
    let host = open(&s.data, &s.roots);
    let client = Client { services: &host.services, token: admin(&host).await };
    let body = json!({"name": "sync", "cron": "hourly", "timezone": "UTC", "export": export_body(&s),
                      "window": {"type": "since_last_success", "column": "ts", "initial": "2026-01-01T00:00:00Z"}});
    let id = create(&client, body).await["id"].as_str().unwrap().to_string();
    let scheduler = Scheduler::new(host.services.clone(), clock.clone());
    scheduler.tick().await.unwrap();
    let mut next_id = 2; // part-000.csv holds ids 0 and 1 (the first hour).
    for hour in 1..=6 {
        // Rows of the hour before this fire arrive before it.
        if hour > 1 {
            next_id = write_rows(&s.dataset, &format!("part-{hour:03}.csv"), t0 + Span::hours(hour - 1), 1, next_id);
        }
        // The third run reads a broken file and fails.
        let broken = s.dataset.join("part-zzz.csv");
        if hour == 3 {
            std::fs::write(&broken, "id,ts,amount\n999,not a time,1.0\n").unwrap();
        }
        clock.set(t0 + Span::hours(hour) + Span::seconds(2));
        scheduler.tick().await.unwrap();
        settled_runs(&client, &id).await;
        if hour == 3 {
            std::fs::remove_file(&broken).unwrap();
        }
    }
    let runs = settled_runs(&client, &id).await;
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["completed", "completed", "failed", "completed", "completed", "completed"], "{runs:#?}");
    // The run after the failed one starts where the last success ended.
    assert_eq!(runs[3]["window"]["start"], runs[1]["window"]["end"]);
    assert_eq!(runs[2]["window"]["start"], runs[1]["window"]["end"]);
    assert!(runs[2]["watermark"].is_null());
    let mut all = Vec::new();
    for r in runs.iter().filter(|r| r["status"] == "completed") {
        let e = host.store.get_export(TENANT, r["export_id"].as_str().unwrap()).await.unwrap().unwrap();
        all.extend(delivered_ids(&host, &e));
    }
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a row was delivered twice: {all:?}");
    assert_eq!(unique, (0..next_id).collect::<BTreeSet<u64>>(), "rows were skipped");
}

/// Pause a run's export at once, so that it stays in progress as long as the test wants.
async fn hold(client: &Client<'_>, id: &str) -> String {
    let (_, _, runs) = client.call(Method::GET, &format!("/v1/schedules/{id}/runs"), None).await;
    let export = runs["items"][0]["export_id"].as_str().unwrap().to_string();
    let (status, _, body) = client.call(Method::POST, &format!("/v1/exports/{export}/pause"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the run ended before it could be held: {body}");
    export
}

async fn release(client: &Client<'_>, export: &str) {
    let (status, _, body) = client.call(Method::POST, &format!("/v1/exports/{export}/resume"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

fn summary(runs: &[Value]) -> Vec<(String, String, String)> {
    runs.iter()
        .map(|r| {
            let key = r["fire_key"].as_str().unwrap();
            let time = key.split('/').nth(1).unwrap().chars().skip(11).take(5).collect();
            (time, r["trigger"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string())
        })
        .collect()
}

fn s3(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_timeout_and_pause_with_a_run_in_progress() {
    let t0 = utc("2026-01-01T00:00:00Z");
    // Enough rows that a run is still going when the test holds it.
    let s = setup(t0, 150_000);
    let clock = Arc::new(ManualClock::new(t0));
    let host = open(&s.data, &s.roots);
    let client = Client { services: &host.services, token: admin(&host).await };
    let hourly = |name: &str, extra: Value| {
        let mut b = json!({"name": name, "cron": "hourly", "timezone": "UTC",
                           "export": {"source": {"type": "dataset", "local_path": s.dataset.to_str().unwrap()}, "format": "csv"},
                           "window": {"type": "last_n_hours", "n": 1, "column": "ts"}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let a = create(&client, hourly("skip", json!({"timeout_secs": 5400}))).await["id"].as_str().unwrap().to_string();
    let b = create(&client, hourly("queue", json!({"overlap": "queue_one"}))).await["id"].as_str().unwrap().to_string();
    let c = create(&client, hourly("paused", json!({}))).await["id"].as_str().unwrap().to_string();
    let scheduler = Scheduler::new(host.services.clone(), clock.clone());
    scheduler.tick().await.unwrap();
    let at = |h: i64, m: i64, sec: i64| t0 + Span::hours(h) + Span::minutes(m) + Span::seconds(sec);

    clock.set(at(1, 0, 1));
    assert_eq!(scheduler.tick().await.unwrap().started, 3);
    let held_a = hold(&client, &a).await;
    let held_b = hold(&client, &b).await;
    let held_c = hold(&client, &c).await;
    // Pausing C lets its run finish.
    let (status, _, _) = client.call(Method::POST, &format!("/v1/schedules/{c}/pause"), None).await;
    assert_eq!(status, StatusCode::OK);

    clock.set(at(2, 0, 1));
    let r = scheduler.tick().await.unwrap();
    assert_eq!((r.started, r.skipped, r.queued), (0, 1, 1), "{r:?}");
    release(&client, &held_c).await;
    settled_runs(&client, &c).await;

    // A's run is past its timeout.
    clock.set(at(2, 40, 0));
    assert_eq!(scheduler.tick().await.unwrap().timed_out, 1);
    let (_, _, e) = client.call(Method::GET, &format!("/v1/exports/{held_a}"), None).await;
    assert_eq!(e["status"], "cancelled");

    // B's waiting fire is replaced by the later one.
    clock.set(at(3, 0, 1));
    let r = scheduler.tick().await.unwrap();
    assert_eq!((r.started, r.queued), (1, 1), "{r:?}");
    release(&client, &held_b).await;
    let (status, _, _) = client.call(Method::POST, &format!("/v1/schedules/{c}/resume"), None).await;
    assert_eq!(status, StatusCode::OK);
    settled_runs(&client, &b).await;
    clock.set(at(3, 10, 0));
    assert_eq!(scheduler.tick().await.unwrap().started, 1);
    settled_runs(&client, &b).await;
    settled_runs(&client, &a).await;

    clock.set(at(4, 0, 1));
    assert_eq!(scheduler.tick().await.unwrap().started, 3);

    let runs = settled_runs(&client, &a).await;
    assert_eq!(
        summary(&runs),
        [
            s3("01:00", "schedule", "timed_out"),
            s3("02:00", "schedule", "skipped"),
            s3("03:00", "schedule", "completed"),
            s3("04:00", "schedule", "completed")
        ]
    );
    assert!(runs[0]["error"].as_str().unwrap().contains("timeout_secs = 5400"), "{}", runs[0]);
    let runs = settled_runs(&client, &b).await;
    assert_eq!(
        summary(&runs),
        [s3("01:00", "schedule", "completed"), s3("03:00", "queued", "completed"), s3("04:00", "schedule", "completed")]
    );
    let runs = settled_runs(&client, &c).await;
    assert_eq!(summary(&runs), [s3("01:00", "schedule", "completed"), s3("04:00", "schedule", "completed")]);
}
