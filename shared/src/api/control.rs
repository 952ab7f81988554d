//! POST /v1/exports/{id}/pause|resume|cancel|retry: steer a run. Each is one conditional write
//! on the export's status, then a start or stop of its run.
//!
//! - pause: `pending`/`running` → `paused`; the run stops at the next check of each stage,
//!   keeping every finished chunk.
//! - resume: `paused` → `pending`, and a new run that continues from the first unfinished chunk.
//! - cancel: `pending`/`running`/`paused` → `cancelled`; the run stops and its working files go.
//! - retry: `failed` with a transient cause (`TRANSIENT_FAILURE`, `INTERRUPTED`, `TIMEOUT`) →
//!   `pending`, and a new run that keeps the chunks the failed one finished.
//! - redeliver (`/deliveries/{n}/retry`): `completed`/`partial`/`failed` with files not yet
//!   expired → `pending`, and a new run that delivers the same files to destination `n` again
//!   (the other receipts stay as they are).

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;

use super::exports::{audit_event, load};
use super::{Code, Problem, Response, authorize, json_response, path_id};
use crate::blob::keys;
use crate::model::{Export, ExportStatus, Permission};
use crate::pipeline::record_failure::is_retryable_code;
use crate::services::Services;
use crate::store::{UpdateError, update_export};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Cancel,
    Retry,
    /// Deliver again to the destination at this index.
    Redeliver(u32),
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::Retry => "retry",
            Action::Redeliver(_) => "redeliver",
        }
    }

    /// The statuses the action applies to.
    fn from(self) -> &'static [ExportStatus] {
        match self {
            Action::Pause => &[ExportStatus::Pending, ExportStatus::Running],
            Action::Resume => &[ExportStatus::Paused],
            Action::Cancel => &[ExportStatus::Pending, ExportStatus::Running, ExportStatus::Paused],
            Action::Retry => &[ExportStatus::Failed],
            Action::Redeliver(_) => &[ExportStatus::Completed, ExportStatus::Partial, ExportStatus::Failed],
        }
    }

    /// Change the export, or say why not.
    fn apply(self, e: &mut Export) -> Result<(), Problem> {
        if !self.from().contains(&e.status) {
            let allowed: Vec<&str> = self.from().iter().map(|s| s.as_str()).collect();
            return Err(Problem::new(
                Code::InvalidState,
                format!("the export is {}; {} applies to an export that is {}", e.status.as_str(), self.name(), allowed.join(" or ")),
            ));
        }
        match self {
            Action::Pause => e.status = ExportStatus::Paused,
            Action::Cancel => {
                e.status = ExportStatus::Cancelled;
                e.finished_at = Some(Utc::now());
            }
            Action::Redeliver(index) => {
                let destinations = e.spec.destinations.len();
                if index as usize >= destinations {
                    return Err(Problem::new(
                        Code::NotFound,
                        format!("the export has {destinations} destination(s), numbered from 0; there is no destination {index}"),
                    ));
                }
                match &e.result {
                    Some(r) if r.expires_at > Utc::now() => {}
                    Some(r) => {
                        return Err(Problem::new(
                            Code::InvalidState,
                            format!("the export's files expired at {}; nothing to deliver", r.expires_at),
                        ));
                    }
                    None => {
                        return Err(Problem::new(
                            Code::InvalidState,
                            "the export failed before it had files; retry the export (POST /v1/exports/{id}/retry) instead",
                        ));
                    }
                }
                e.status = ExportStatus::Pending;
                e.finished_at = None;
                e.run += 1;
                e.attempts = 0;
                e.lease = None;
                e.redelivery = Some(index);
            }
            Action::Resume | Action::Retry => {
                if self == Action::Retry {
                    let code = e.error.as_ref().map(|x| x.code.as_str()).unwrap_or("");
                    if !is_retryable_code(code) {
                        return Err(Problem::new(
                            Code::NotRetryable,
                            format!("the export failed with {code}; only TRANSIENT_FAILURE, INTERRUPTED and TIMEOUT are retried"),
                        ));
                    }
                }
                e.status = ExportStatus::Pending;
                e.error = None;
                e.finished_at = None;
                e.run += 1;
                e.attempts = 0;
                e.lease = None;
            }
        }
        Ok(())
    }
}

pub async fn control(svc: &Services, req: &Request, request_id: &str, action: Action) -> Result<Response, Problem> {
    let principal = authorize(svc, req, Permission::Generate).await?;
    let id = path_id(req);
    let before = load(svc, &principal, &id).await?;
    let audit_action = format!("export.{}", action.name());
    if matches!(action, Action::Resume | Action::Retry | Action::Redeliver(_)) {
        // The stopped run must be over before the next one starts.
        svc.orchestrator.stop(&principal.tenant, &id, before.run).await.map_err(Problem::internal)?;
    }
    let res = update_export(svc.store.as_ref(), &principal.tenant, &id, |e| action.apply(e)).await;
    let export = match res {
        Ok(e) => e,
        Err(UpdateError::Refused(p)) => {
            audit_event(svc, &principal, &audit_action, &id, request_id, "rejected").await;
            return Err(p);
        }
        Err(UpdateError::NotFound) => return Err(Problem::new(Code::ExportNotFound, format!("no export `{id}`"))),
        Err(UpdateError::Store(e)) => return Err(Problem::internal(e)),
    };
    match action {
        Action::Pause => {}
        Action::Cancel => {
            svc.orchestrator.stop(&principal.tenant, &id, export.run).await.map_err(Problem::internal)?;
            svc.blobs.delete_prefix(&keys::staging(&principal.tenant, &id)).await.map_err(Problem::internal)?;
        }
        Action::Resume | Action::Retry | Action::Redeliver(_) => {
            svc.orchestrator.start(&principal.tenant, &id, export.run).await.map_err(Problem::internal)?
        }
    }
    audit_event(svc, &principal, &audit_action, &id, request_id, "success").await;
    tracing::info!(export_id = %id, tenant = %principal.tenant, action = action.name(), run = export.run, "export steered");
    Ok(json_response(StatusCode::ACCEPTED, &export.to_api_json()))
}

/// `POST /v1/exports/{id}/deliveries/{n}/retry`: deliver the export's files to destination `n`
/// again, with its retry policy, in a new run; the receipt replaces that destination's.
pub async fn redeliver(svc: &Services, req: &Request, request_id: &str) -> Result<Response, Problem> {
    let raw = super::path_param(req, "n");
    let Ok(index) = raw.parse::<u32>() else {
        let mut errs = crate::model::ValidationErrors::new();
        errs.push("/path/n", raw.as_str(), "a destination's index: 0 for the first");
        return Err(Problem::validation(errs));
    };
    control(svc, req, request_id, Action::Redeliver(index)).await
}
