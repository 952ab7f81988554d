//! Encrypt: compress, encrypt and checksum the files before delivery. Until recipients' keys
//! exist, the files pass through unchanged (their SHA-256 was taken by encode); the stage is in
//! the state machine already so that adding encryption changes no flow.

use serde::{Deserialize, Serialize};

use super::plan::mark;
use super::{StageContext, StageError, load_active};
use crate::model::{ResultFile, Step};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptInput {
    pub tenant: String,
    pub export_id: String,
    pub files: Vec<ResultFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncryptOutput {
    pub files: Vec<ResultFile>,
}

pub async fn encrypt(ctx: &StageContext, input: EncryptInput) -> Result<EncryptOutput, StageError> {
    let EncryptInput { tenant, export_id, files } = input;
    load_active(ctx, &tenant, &export_id).await?;
    mark(ctx, &tenant, &export_id, Step::Encrypt, "packaging the files".into(), None).await?;
    for f in &files {
        if ctx.blobs.head(&f.key).await?.is_none() {
            return Err(StageError::internal(format!("the file {} is missing", f.name)));
        }
    }
    Ok(EncryptOutput { files })
}
