//! The local HTTP host: serves every API route function (as API Gateway would in front of the
//! Lambdas) and the signed download URLs of the folder blob store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::{Body, RequestExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::LocalHost;
use crate::api::{self, Code, Matched, Problem};
use crate::blob::signed_url::{self, FILES_PREFIX, Refusal};

type HostBody = UnsyncBoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> HostBody {
    Full::new(b.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

fn to_host(resp: api::Response) -> hyper::Response<HostBody> {
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, full(bytes))
}

fn problem(p: Problem, path: &str) -> hyper::Response<HostBody> {
    to_host(p.into_response(path, &crate::model::ids::request_id()))
}

/// Serve until the process is stopped. Prints nothing; logs the address.
pub async fn serve(host: Arc<LocalHost>, listener: TcpListener) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "egress listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let host = host.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let host = host.clone();
                async move { Ok::<_, Infallible>(handle(host, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

fn query_map(query: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        m.entry(dec(k)).or_default().push(dec(v));
    }
    m
}

async fn handle(host: Arc<LocalHost>, req: hyper::Request<Incoming>) -> hyper::Response<HostBody> {
    let path = req.uri().path().to_string();
    if path.starts_with(FILES_PREFIX) {
        return if req.method() == http::Method::GET || req.method() == http::Method::HEAD {
            serve_file(&host, &path, req.uri().query().unwrap_or("")).await
        } else {
            problem(Problem::new(Code::MethodNotAllowed, "download links take GET"), &path)
        };
    }
    let limit = host.services.settings.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return problem(Problem::new(Code::PayloadTooLarge, format!("the body is larger than {limit} bytes")), &path),
    };
    to_host(dispatch(&host.services, http::Request::from_parts(parts, bytes)).await)
}

/// Route a request to its API function as API Gateway would: match the path, fill in path and
/// query parameters. The in-process client of the demo and benchmarks uses this too.
pub async fn dispatch(services: &crate::services::Services, req: http::Request<Bytes>) -> api::Response {
    let path = req.uri().path().to_string();
    let (route, params) = match api::route(req.method(), &path) {
        Matched::Route(r, p) => (r, p),
        Matched::MethodNotAllowed => {
            return Problem::new(Code::MethodNotAllowed, format!("{} is not allowed on {path}", req.method()))
                .into_response(&path, &crate::model::ids::request_id());
        }
        Matched::NotFound => {
            return Problem::new(Code::NotFound, format!("no route {path}")).into_response(&path, &crate::model::ids::request_id());
        }
    };
    let (parts, bytes) = req.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => Body::Text(s),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let query = query_map(parts.uri.query());
    let req = http::Request::from_parts(parts, body).with_path_parameters(params).with_query_string_parameters(query);
    route.call(services, req).await
}

async fn serve_file(host: &LocalHost, path: &str, query: &str) -> hyper::Response<HostBody> {
    let now = chrono::Utc::now().timestamp();
    let grant = match signed_url::verify(host.blobs.signing_key(), path, query, now) {
        Ok(g) => g,
        Err(Refusal::Expired) => return problem(Problem::new(Code::UrlExpired, "this download link has expired; ask for a new one"), path),
        Err(Refusal::BadSignature) => return problem(Problem::new(Code::SignatureInvalid, "this download link is not valid"), path),
    };
    let Ok(file_path) = host.blobs.path_of(&grant.key) else {
        return problem(Problem::new(Code::SignatureInvalid, "this download link is not valid"), path);
    };
    let file = match tokio::fs::File::open(&file_path).await {
        Ok(f) => f,
        Err(_) => return problem(Problem::new(Code::NotFound, "the file is gone (deleted or expired)"), path),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let stream = futures::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        grant.filename.replace(['"', '\\', '\r', '\n'], "_"),
        percent_encoding::utf8_percent_encode(&grant.filename, percent_encoding::NON_ALPHANUMERIC)
    );
    hyper::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, grant.content_type)
        .header(http::header::CONTENT_LENGTH, len)
        .header(http::header::CONTENT_DISPOSITION, disposition)
        .header(http::header::CACHE_CONTROL, "private, no-store")
        .body(StreamBody::new(stream).boxed_unsync())
        .unwrap_or_else(|_| problem(Problem::new(Code::InternalError, "response"), path))
}
