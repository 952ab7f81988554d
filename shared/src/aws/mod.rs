//! The AWS adapters: DynamoDB ([`dynamodb::DynamoStore`]) for the JobStore, S3
//! ([`s3::S3BlobStore`]) for blobs, Step Functions ([`sfn::StepFunctionsOrchestrator`]) for
//! runs and KMS ([`kms::KmsKeyService`]) for data keys. [`services_from_env`] wires them from
//! the environment a Lambda function is given.

pub mod dynamodb;
mod dynamodb_records;
pub mod kms;
pub mod s3;
pub mod scheduler;
pub mod sfn;

use std::sync::Arc;

use aws_config::BehaviorVersion;

use crate::config::Settings;
use crate::services::{RateLimiter, Services};

/// Where the AWS resources are, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `EGRESS_TABLE`: the DynamoDB table (see [`dynamodb`] for its keys).
    pub table: String,
    /// `EGRESS_BUCKET`: the data bucket.
    pub bucket: String,
    /// `EGRESS_KMS_KEY_ID`: when set, objects are written with SSE-KMS under this key.
    pub kms_key_id: Option<String>,
    /// `EGRESS_HASH_KEY_ID`: a KMS key of spec HMAC_256 from which each tenant's salt of
    /// hashed fields is derived (GenerateMac); exports with hashed fields fail without it.
    pub hash_key_id: Option<String>,
    /// `EGRESS_STATE_MACHINE_ARN`: the export state machine. Only the functions that start or
    /// stop runs (the API) are given it; without it, starting a run is an error.
    pub state_machine_arn: Option<String>,
    /// `EGRESS_S3_FORCE_PATH_STYLE=1`: path-style S3 addressing (emulators).
    pub s3_force_path_style: bool,
    /// `AWS_ENDPOINT_URL`: one endpoint for every service (emulators); the SDK reads it too.
    pub endpoint_url: Option<String>,
    /// `EGRESS_SCHEDULE_GROUP`, `EGRESS_SCHEDULE_TARGET_ARN`, `EGRESS_SCHEDULE_ROLE_ARN`: where
    /// schedules are kept in EventBridge Scheduler. Only the functions that change schedules
    /// (and the fire function) are given them.
    pub schedules: Option<scheduler::EventBridgeSettings>,
}

impl AwsSettings {
    /// Read the settings from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the settings through `lookup` (the environment, or a map in tests). A missing
    /// required variable is an error that names it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let required = |name: &str| get(name).ok_or_else(|| format!("the environment variable {name} is not set"));
        let state_machine_arn = get("EGRESS_STATE_MACHINE_ARN");
        if let Some(arn) = &state_machine_arn {
            sfn::execution_arn_prefix(arn).ok_or_else(|| format!("EGRESS_STATE_MACHINE_ARN `{arn}` is not a state machine ARN"))?;
        }
        let s3_force_path_style = match get("EGRESS_S3_FORCE_PATH_STYLE").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => return Err(format!("EGRESS_S3_FORCE_PATH_STYLE must be 1 or 0, not `{other}`")),
        };
        Ok(Self {
            table: required("EGRESS_TABLE")?,
            bucket: required("EGRESS_BUCKET")?,
            kms_key_id: get("EGRESS_KMS_KEY_ID"),
            hash_key_id: get("EGRESS_HASH_KEY_ID"),
            state_machine_arn,
            s3_force_path_style,
            endpoint_url: get("AWS_ENDPOINT_URL"),
            schedules: scheduler::EventBridgeSettings::from_lookup(&lookup)?,
        })
    }
}

/// The S3 client for `config`, with path-style addressing when asked for.
pub fn s3_client(config: &aws_config::SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(force_path_style).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Build the AWS adapters from the environment: credentials and region the SDK's usual way
/// (the Lambda environment), `AWS_ENDPOINT_URL` honoured, and the resources named by
/// [`AwsSettings`].
pub async fn services_from_env() -> Result<Arc<Services>, String> {
    let aws = AwsSettings::from_env()?;
    services(&aws, &sdk_config(&aws).await)
}

/// What a stage function needs, from the environment: the job store, the blobs and the keys, without
/// the Step Functions client (a stage never starts or stops a run, so its binary does not
/// carry that SDK).
pub async fn stage_context_from_env() -> Result<crate::pipeline::StageContext, String> {
    let aws = AwsSettings::from_env()?;
    stage_context(&aws, &sdk_config(&aws).await)
}

async fn sdk_config(aws: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = &aws.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The job store on DynamoDB, the blobs on S3, the keys on KMS, and default [`Settings`] with the work
/// directory `/tmp/egress-work` (created).
pub fn stage_context(aws: &AwsSettings, config: &aws_config::SdkConfig) -> Result<crate::pipeline::StageContext, String> {
    let store = dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(config), aws.table.clone());
    let work_dir = std::path::PathBuf::from("/tmp/egress-work");
    std::fs::create_dir_all(&work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    let blobs = s3::S3BlobStore::new(s3_client(config, aws.s3_force_path_style), aws.bucket.clone(), aws.kms_key_id.clone())
        .with_temp_dir(work_dir.clone());
    let keys = kms::KmsKeyService::new(aws_sdk_kms::Client::new(config), aws.kms_key_id.clone().unwrap_or_default())
        .with_mac_key(aws.hash_key_id.clone());
    Ok(crate::pipeline::StageContext {
        store: Arc::new(store),
        blobs: Arc::new(blobs),
        keys: Arc::new(keys),
        settings: Arc::new(Settings::new(work_dir)),
    })
}

/// The adapters for `aws` with the SDK configuration `config`: [`stage_context`]'s, and the
/// Step Functions orchestrator when a state machine is named.
pub fn services(aws: &AwsSettings, config: &aws_config::SdkConfig) -> Result<Arc<Services>, String> {
    let ctx = stage_context(aws, config)?;
    let orchestrator: Arc<dyn crate::orchestrate::Orchestrator> = match &aws.state_machine_arn {
        Some(arn) => Arc::new(sfn::StepFunctionsOrchestrator::new(aws_sdk_sfn::Client::new(config), arn.clone())?),
        None => Arc::new(NoStateMachine),
    };
    let triggers: Arc<dyn crate::scheduler::Triggers> = match &aws.schedules {
        Some(s) => Arc::new(scheduler::EventBridgeTriggers::new(aws_sdk_scheduler::Client::new(config), s.clone())),
        None => Arc::new(NoScheduleGroup),
    };
    Ok(Arc::new(Services {
        store: ctx.store,
        blobs: ctx.blobs,
        keys: ctx.keys,
        orchestrator,
        triggers,
        settings: ctx.settings,
        limiter: RateLimiter::default(),
    }))
}

/// The orchestrator of a function that was not given the state machine (a stage function):
/// starting or stopping a run is a configuration error, said as such.
struct NoStateMachine;

#[async_trait::async_trait]
impl crate::orchestrate::Orchestrator for NoStateMachine {
    async fn start(&self, _: &str, _: &str, _: u32) -> Result<(), crate::orchestrate::OrchestrateError> {
        Err(crate::orchestrate::OrchestrateError::Backend("EGRESS_STATE_MACHINE_ARN is not set: this function cannot start runs".into()))
    }
    async fn stop(&self, _: &str, _: &str, _: u32) -> Result<(), crate::orchestrate::OrchestrateError> {
        Err(crate::orchestrate::OrchestrateError::Backend("EGRESS_STATE_MACHINE_ARN is not set: this function cannot stop runs".into()))
    }
}

/// The triggers of a function that was not given the schedule group: changing a schedule is a
/// configuration error, said as such.
struct NoScheduleGroup;

#[async_trait::async_trait]
impl crate::scheduler::Triggers for NoScheduleGroup {
    async fn put(&self, _: &str, _: &str, _: &crate::model::schedule::ScheduleSpec) -> Result<(), crate::scheduler::TriggerError> {
        Err(crate::scheduler::TriggerError("EGRESS_SCHEDULE_GROUP is not set: this function cannot change schedules".into()))
    }
    async fn remove(&self, _: &str, _: &str) -> Result<(), crate::scheduler::TriggerError> {
        Err(crate::scheduler::TriggerError("EGRESS_SCHEDULE_GROUP is not set: this function cannot change schedules".into()))
    }
}

/// An SDK call's error as one line: the service's error code and message when the service
/// answered, else the error and its causes (timeouts, connection errors). Never contains
/// credentials: the SDK does not put them in errors.
pub(crate) fn sdk_error<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let aws_sdk_dynamodb::error::SdkError::ServiceError(se) = e
        && let Some(code) = se.err().code()
    {
        return match se.err().message() {
            Some(m) => format!("{code}: {m}"),
            None => code.to_string(),
        };
    }
    sdk_message(e)
}

/// An error as one line with its causes (the service's code and message), for logs and
/// `Backend` errors. Never contains credentials: the SDK does not put them in errors.
pub(crate) fn sdk_message<E: std::error::Error>(e: &E) -> String {
    crate::deliver::http_status::error_chain(e)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:egress-export";

    #[test]
    fn settings_name_a_missing_variable() {
        let err = AwsSettings::from_lookup(lookup(&[("EGRESS_STATE_MACHINE_ARN", ARN), ("EGRESS_BUCKET", "b")])).unwrap_err();
        assert!(err.contains("EGRESS_TABLE"), "{err}");
        // A stage function is not given the state machine: fine, it never starts runs.
        let s = AwsSettings::from_lookup(lookup(&[("EGRESS_TABLE", "t"), ("EGRESS_BUCKET", "b")])).unwrap();
        assert_eq!(s.state_machine_arn, None);
        let err = AwsSettings::from_lookup(lookup(&[("EGRESS_TABLE", "t"), ("EGRESS_BUCKET", "b"), ("EGRESS_STATE_MACHINE_ARN", "nope")]))
            .unwrap_err();
        assert!(err.contains("not a state machine ARN"), "{err}");
    }

    #[test]
    fn settings_read_every_variable() {
        let s = AwsSettings::from_lookup(lookup(&[
            ("EGRESS_TABLE", "t"),
            ("EGRESS_BUCKET", "b"),
            ("EGRESS_STATE_MACHINE_ARN", ARN),
            ("EGRESS_KMS_KEY_ID", "alias/egress"),
            ("EGRESS_HASH_KEY_ID", "alias/egress-hash"),
            ("EGRESS_S3_FORCE_PATH_STYLE", "1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(s.kms_key_id.as_deref(), Some("alias/egress"));
        assert_eq!(s.hash_key_id.as_deref(), Some("alias/egress-hash"));
        assert_eq!(s.state_machine_arn.as_deref(), Some(ARN));
        assert!(s.s3_force_path_style);
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        let s =
            AwsSettings::from_lookup(lookup(&[("EGRESS_TABLE", "t"), ("EGRESS_BUCKET", "b"), ("EGRESS_STATE_MACHINE_ARN", ARN)])).unwrap();
        assert_eq!((s.kms_key_id, s.s3_force_path_style, s.endpoint_url), (None, false, None));
    }
}
