//! HTTP answers and transport failures as [`DeliverError`]s, for every destination that speaks
//! HTTP with reqwest: 408, 429 and 5xx, timeouts, refused or reset connections are transient
//! (with the remote's `Retry-After` when it gave one); any other 4xx is permanent, with the
//! status and the start of the remote's own message. URLs never appear in the messages: they
//! may carry a signature or an upload session.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::DeliverError;

/// How much of an error body a message quotes, in characters.
pub const BODY_QUOTE_CHARS: usize = 200;
/// How much of an error body is read at most, in bytes (the rest is never downloaded).
const BODY_READ_LIMIT: usize = 4096;

/// True for the statuses another attempt may cure: 408, 429 and every 5xx.
pub fn is_transient_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The delay a `Retry-After` header asks for: delta-seconds, or an HTTP date (a date in the
/// past is no delay). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The error for a non-success answer: `what` (the operation, e.g. `Azure Put Block`), the
/// status, and the first [`BODY_QUOTE_CHARS`] characters of the body.
pub fn error_from_status(what: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> DeliverError {
    let quoted = quote_body(body);
    let message = if quoted.is_empty() { format!("{what}: HTTP {status}") } else { format!("{what}: HTTP {status}: {quoted}") };
    if is_transient_status(status) {
        DeliverError::Transient { message, retry_after: retry_after(headers) }
    } else {
        DeliverError::Permanent { message }
    }
}

/// [`error_from_status`] for a response whose body has not been read: reads at most 4 KiB of
/// it (a failure to read the body leaves it out).
pub async fn error_from_response(what: &str, mut response: reqwest::Response) -> DeliverError {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while body.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(BODY_READ_LIMIT - body.len())]),
            _ => break,
        }
    }
    error_from_status(what, status, &headers, &body)
}

/// The error for a request that got no usable answer. Timeouts, connection failures and
/// broken transfers are transient; a request that could not be built, or a redirect the client
/// refused to follow, is permanent. The message is `what` and the error's causes, without URL.
pub fn error_from_reqwest(what: &str, e: reqwest::Error) -> DeliverError {
    let permanent = e.is_builder() || e.is_redirect() || e.status().is_some_and(|s| !is_transient_status(s));
    let message = format!("{what}: {}", error_chain(&e.without_url()));
    if permanent { DeliverError::Permanent { message } } else { DeliverError::Transient { message, retry_after: None } }
}

/// An error and its causes on one line (`a: b: c`), each cause once.
pub fn error_chain<E: std::error::Error + ?Sized>(e: &E) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_msg = s.to_string();
        if !msg.contains(&s_msg) {
            msg.push_str(": ");
            msg.push_str(&s_msg);
        }
        source = s.source();
    }
    msg
}

/// The start of a body as one printable line: lossy UTF-8, control characters as spaces,
/// whitespace runs collapsed, at most [`BODY_QUOTE_CHARS`] characters (then `...`).
pub fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_READ_LIMIT)]);
    let mut out = String::new();
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        if count == BODY_QUOTE_CHARS {
            out.push_str("...");
            return out;
        }
        last_space = c == ' ';
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn server_errors_throttling_and_timeouts_are_transient() {
        for code in [408, 429, 500, 502, 503, 504] {
            let e = error_from_status("PUT", StatusCode::from_u16(code).unwrap(), &HeaderMap::new(), b"");
            assert!(e.is_transient(), "{code}: {e:?}");
        }
    }

    #[test]
    fn client_errors_are_permanent_and_quote_the_body() {
        let e = error_from_status(
            "Azure Put Block",
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            b"<Error>\n  <Code>AuthenticationFailed</Code>\n</Error>",
        );
        assert_eq!(
            e,
            DeliverError::Permanent {
                message: "Azure Put Block: HTTP 403 Forbidden: <Error> <Code>AuthenticationFailed</Code> </Error>".into()
            }
        );
    }

    #[test]
    fn retry_after_in_seconds_is_kept() {
        let e = error_from_status("PUT", StatusCode::TOO_MANY_REQUESTS, &headers(&[("retry-after", "7")]), b"slow down");
        assert_eq!(
            e,
            DeliverError::Transient {
                message: "PUT: HTTP 429 Too Many Requests: slow down".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn retry_after_as_a_date() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822().replace("+0000", "GMT");
        let wait = retry_after(&headers(&[("retry-after", &later)])).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        assert_eq!(retry_after(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn long_bodies_are_cut_at_200_characters() {
        let body = "é".repeat(500);
        let q = quote_body(body.as_bytes());
        assert_eq!(q.chars().count(), BODY_QUOTE_CHARS + 3);
        assert!(q.ends_with("..."));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient_and_names_no_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = reqwest::Client::new();
        let e = client.get(format!("http://127.0.0.1:{port}/x?sig=secret")).send().await.unwrap_err();
        let d = error_from_reqwest("GET", e);
        assert!(d.is_transient(), "{d:?}");
        assert!(!d.to_string().contains("secret") && !d.to_string().contains("127.0.0.1"), "{d}");
    }
}
