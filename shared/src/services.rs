//! The adapters a host wires together: every route function takes `&Services`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::blob::BlobStore;
use crate::config::Settings;
use crate::kms::KeyService;
use crate::orchestrate::Orchestrator;
use crate::pipeline::StageContext;
use crate::store::JobStore;

pub struct Services {
    pub store: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Keys: tenant secrets such as the salt of hashed fields.
    pub keys: Arc<dyn KeyService>,
    pub orchestrator: Arc<dyn Orchestrator>,
    /// What makes schedules fire: nothing to do in process, EventBridge Scheduler on AWS.
    pub triggers: Arc<dyn crate::scheduler::Triggers>,
    pub settings: Arc<Settings>,
    pub limiter: RateLimiter,
}

impl Services {
    pub fn stage_context(&self) -> StageContext {
        StageContext { store: self.store.clone(), blobs: self.blobs.clone(), keys: self.keys.clone(), settings: self.settings.clone() }
    }
}

/// A token bucket per API key, in this process (API Gateway usage plans do the same job in
/// front of Lambda).
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Take one token for `key`; `Err(seconds to wait)` when none is left.
    pub fn check(&self, key: &str, rate: f64, burst: f64) -> Result<(), u64> {
        let mut b = self.buckets.lock().expect("rate limiter");
        let now = Instant::now();
        let (tokens, last) = b.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}
