//! An in-process API client: requests go through the same routing and route functions as HTTP
//! requests, without a socket. The demo and the benchmark use it.

use bytes::Bytes;
use http::{Method, StatusCode};
use lambda_http::Body;
use serde_json::Value;

use super::host::dispatch;
use crate::services::Services;

pub struct Client<'a> {
    pub services: &'a Services,
    pub token: String,
}

impl Client<'_> {
    /// Send a request; returns the status, the `Location` header and the JSON body (or Null).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Option<String>, Value) {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = http::Request::builder().method(method).uri(path).header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let resp = dispatch(self.services, req.body(bytes).expect("valid request")).await;
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let status = resp.status();
        let json = match resp.into_body() {
            Body::Text(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
            Body::Binary(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (status, location, json)
    }
}
