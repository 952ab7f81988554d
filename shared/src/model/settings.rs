//! A tenant's settings: which otherwise forbidden hosts its webhooks may reach, and where
//! export notifications go by default.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ValidationErrors;
use super::notify::NotificationSpec;
use crate::deliver::net_guard::{AllowList, is_allow_entry};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Host names (or `host:port`) that webhook and HTTP destinations may reach even when they
    /// resolve to loopback, private or link-local addresses. Empty: none.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Notifications for every export that does not set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<NotificationSpec>,
}

impl TenantSettings {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::new();
        if self.allowed_hosts.len() > 50 {
            errs.push("/allowed_hosts", self.allowed_hosts.len(), "at most 50 hosts");
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            if !is_allow_entry(h) {
                errs.push(format!("/allowed_hosts/{i}"), Value::from(h.as_str()), "a host name or IP address, optionally with `:port`");
            }
        }
        if let Some(n) = &self.notifications {
            n.validate("/notifications", &mut errs);
            // The default's webhook is checked against the hosts these same settings allow.
            if let Ok(allow) = AllowList::new(&self.allowed_hosts) {
                n.check_outbound("/notifications", &allow, &mut errs);
            }
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        for ok in ["partner.example.com", "127.0.0.1", "127.0.0.1:8080", "[::1]:443", "[fe80::1]", "localhost"] {
            assert!(is_allow_entry(ok), "{ok}");
        }
        for bad in ["", "http://x", "a b", "x:0", "x:99999", "a..b", "[::1", "host/path"] {
            assert!(!is_allow_entry(bad), "{bad}");
        }
    }
}
