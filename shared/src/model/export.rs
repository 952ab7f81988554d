//! An export: one request and everything that happened to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::spec::ExportSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    Pending,
    Running,
    Paused,
    Completed,
    Partial,
    Failed,
    Cancelled,
}

pub const EXPORT_STATUSES: &str = "pending, running, paused, completed, partial, failed, cancelled";

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "completed" => Self::Completed,
            "partial" => Self::Partial,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Finished for good: no stage will touch the export again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Partial | Self::Failed | Self::Cancelled)
    }

    /// The states an export may still be worked on in.
    pub const ACTIVE: &'static [ExportStatus] = &[Self::Pending, Self::Running];
}

/// The pipeline stage an export is in; the names are the stage names everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Queued,
    Plan,
    ExtractChunk,
    Encode,
    Encrypt,
    Deliver,
    RecordReceipt,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: f64,
    /// Rows written so far.
    pub rows: u64,
    pub chunks_done: u32,
    pub chunks_total: u32,
    pub step: Step,
    /// The step in words, for people.
    pub step_description: String,
}

impl Default for Progress {
    fn default() -> Self {
        Self { percent: 0.0, rows: 0, chunks_done: 0, chunks_total: 0, step: Step::Queued, step_description: "waiting to start".into() }
    }
}

impl Progress {
    /// Percent done: planning is the first 2%, chunks up to 95%, the rest is encode and receipt.
    pub fn recompute_percent(&mut self) {
        self.percent = match self.step {
            Step::Queued => 0.0,
            Step::Plan => 1.0,
            Step::ExtractChunk => {
                let frac = if self.chunks_total == 0 { 0.0 } else { self.chunks_done as f64 / self.chunks_total as f64 };
                (2.0 + 93.0 * frac).min(95.0)
            }
            Step::Encode => 96.0,
            Step::Encrypt => 97.0,
            Step::Deliver => 98.0,
            Step::RecordReceipt => 99.0,
            Step::Done => 100.0,
        };
        self.percent = (self.percent * 10.0).round() / 10.0;
    }
}

/// One file an export produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    pub name: String,
    pub size: u64,
    pub rows: u64,
    pub sha256: String,
    pub content_type: String,
    /// Where the file is kept in the blob store. Internal: never shown by the API.
    #[serde(default)]
    pub key: String,
    /// SHA-256 (hex) of the file before it was encrypted; absent when it was not, and for an
    /// archive or the manifest (the manifest lists an archive's files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportResult {
    pub files: Vec<ResultFile>,
    /// One receipt per destination, in the order of the spec's destinations.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    pub rows: u64,
    pub bytes: u64,
    pub expires_at: DateTime<Utc>,
}

/// The receipt of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The destination's position in the spec.
    pub index: u32,
    /// The destination type, e.g. `download`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `delivered` or `failed`.
    pub status: String,
    /// Where the files went (a path, a URL without its signature, ...), when the destination says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub files: Vec<DeliveredFile>,
    /// When the last attempt ended.
    pub delivered_at: DateTime<Utc>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// Attempts made, the first included.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Why the destination failed (`status: failed`): its own message, never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The remote's own evidence: S3 ETag and version id, SFTP host key fingerprint, HTTP
    /// status and response digest, SMTP/SES message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveredFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// The name the recipient sees (after the destination's filename template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
}

/// Why an export failed: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportError {
    pub code: String,
    pub message: String,
}

/// The record of a finished chunk, written once (conditionally) so a retried chunk never counts
/// twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub index: u32,
    pub rows: u64,
    pub bytes: u64,
    pub part_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// An audit event about an export, still to be appended ([`Export::audit_due`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueAudit {
    pub action: String,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub status: ExportStatus,
    pub progress: Progress,
    pub spec: ExportSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExportResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExportError>,
    /// The API key id that created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The current run: 1 for the first, one more for each resume or retry. Names the
    /// execution ([`crate::orchestrate::execution_name`]).
    #[serde(default = "first_run")]
    pub run: u32,
    /// How many times a local host started the current run (a restart after a crash starts it
    /// again); reset by resume and retry.
    #[serde(default)]
    pub attempts: u32,
    /// The local host running the current run, and until when its claim holds (renewed while
    /// it runs): a second host does not start the same run. Internal: never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The destination (its index) this run delivers to again, keeping the files the export
    /// has (`POST /v1/exports/{id}/deliveries/{n}/retry`); `None` for a run that makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivery: Option<u32>,
    /// The notifications of finished runs being sent or done ([`crate::notify`]), so that two
    /// calls of the recording stages never send one twice. Internal: never shown by the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notified: Vec<super::notify::NotificationMark>,
    /// The audit event the write that ended the run left to append (`export.completed`,
    /// `export.failed`, ...), until it is in the tenant's chain: a recording stage stopped
    /// between the two writes leaves it to its retry, or to RecordFailure. Internal: never
    /// shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_due: Option<DueAudit>,
    /// The template the spec was rendered from (its id, name, version and the parameters
    /// used), when the export named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<super::template::TemplateRef>,
    /// The schedule run that created it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<super::schedule::ScheduleRef>,
    /// Optimistic-concurrency version, bumped by every write; a write names the version it
    /// read and fails if another write came first.
    #[serde(default)]
    pub version: u64,
}

fn first_run() -> u32 {
    1
}

impl Export {
    pub fn new(id: String, tenant: String, created_by: String, spec: ExportSpec, now: DateTime<Utc>) -> Self {
        Export {
            id,
            tenant,
            name: spec.display_name(),
            status: ExportStatus::Pending,
            progress: Progress::default(),
            spec,
            result: None,
            error: None,
            created_by,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            run: 1,
            attempts: 0,
            lease: None,
            redelivery: None,
            notified: Vec::new(),
            audit_due: None,
            template: None,
            schedule: None,
            version: 0,
        }
    }

    /// Count one more finished chunk of `rows` rows (what recording a chunk the first time
    /// does to the export), bumping the version.
    pub fn count_chunk(&mut self, rows: u64) {
        let p = &mut self.progress;
        p.chunks_done += 1;
        p.rows += rows;
        p.step = Step::ExtractChunk;
        p.step_description = format!("read {} of {} chunks", p.chunks_done, p.chunks_total);
        p.recompute_percent();
        self.version += 1;
        self.updated_at = Utc::now();
    }

    /// The representation the API returns: internal fields (blob keys, version) left out.
    pub fn to_api_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("version");
            obj.remove("lease");
            obj.remove("notified");
            obj.remove("audit_due");
            if let Some(files) = obj.get_mut("result").and_then(|r| r.get_mut("files")).and_then(|f| f.as_array_mut()) {
                for f in files {
                    if let Some(o) = f.as_object_mut() {
                        o.remove("key");
                    }
                }
            }
            obj.insert(
                "links".into(),
                serde_json::json!({
                    "self": format!("/v1/exports/{}", self.id),
                    "download": format!("/v1/exports/{}/download", self.id),
                }),
            );
        }
        v
    }
}
