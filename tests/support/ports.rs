//! Free loopback ports for the servers the tests start. A port is probed by binding it, and is
//! never handed out twice in one test process: a server still starting has not bound its port
//! yet, and a second server given the same one would fail to bind while the first one's
//! readiness check answered for both.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port that is free now and that no other caller in this process was given.
pub fn free_port() -> u16 {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if handed.insert(port) {
            return port;
        }
    }
}
