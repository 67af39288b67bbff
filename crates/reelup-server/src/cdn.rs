//! A CDN stand-in: serves stored objects over plain HTTP with Range requests, fetching
//! them from the private bucket with signed requests, as CloudFront does with origin access
//! control. Viewers never see the bucket or a signature.
//!
//! Only the local stack mounts it: a production server must never read its private bucket
//! for anonymous viewers (CloudFront does that, with its own permission). It serves only keys
//! of the shape the server hands out, so no path trick (`..%2F`, `%2E`) can make the store
//! list buckets or keys or read another bucket.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;

use crate::api::ApiState;
use crate::store::without_secrets;
use crate::users::is_issued_key;

/// Request headers passed through to the origin; everything else stays at the edge.
const FORWARDED: &[header::HeaderName] = &[
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// Response headers passed back to the viewer.
const RETURNED: &[header::HeaderName] = &[
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ETAG,
    header::LAST_MODIFIED,
];

/// The CDN route, for [`crate::api::router_with`].
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new().route("/cdn/{*key}", get(serve).head(serve))
}

async fn serve(
    State(state): State<Arc<ApiState>>,
    method: Method,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut resp = if is_issued_key(&key) {
        fetch(&state, method, &key, &headers).await
    } else {
        not_found()
    };
    // Browsers must take the stored Content-Type as it is, never guess HTML from the bytes.
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such video\n").into_response()
}

async fn fetch(state: &ApiState, method: Method, key: &str, headers: &HeaderMap) -> Response {
    let url = if method == Method::HEAD {
        state.store.head_url(key)
    } else {
        state.store.get_url(key)
    };
    let mut req = state.store.http().request(method, url);
    for name in FORWARDED {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v);
        }
    }
    let origin = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %without_secrets(e), "CDN origin fetch failed");
            return (StatusCode::BAD_GATEWAY, "origin unreachable\n").into_response();
        }
    };
    let status = origin.status();
    // A private bucket answers 403 for a missing key; a CDN says 404.
    if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
        return not_found();
    }
    // Any other refusal is S3 XML that can name the signing key and the request it signed:
    // the viewer gets the status alone (a range or precondition miss) or a plain 502.
    let passes = status.is_success() || status == StatusCode::NOT_MODIFIED;
    if !passes {
        if status == StatusCode::RANGE_NOT_SATISFIABLE || status == StatusCode::PRECONDITION_FAILED
        {
            let mut resp = status.into_response();
            if let Some(v) = origin.headers().get(header::CONTENT_RANGE) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v.clone());
            }
            return resp;
        }
        tracing::warn!(status = status.as_u16(), "CDN origin refused a read");
        return (StatusCode::BAD_GATEWAY, "origin error\n").into_response();
    }
    let mut resp = Response::builder()
        .status(status.as_u16())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "public, max-age=86400");
    for name in RETURNED {
        if let Some(v) = origin.headers().get(name) {
            resp = resp.header(name, v);
        }
    }
    // A failure mid-stream carries the signed URL too; only its cause goes on.
    let stream = origin
        .bytes_stream()
        .map_err(|e| std::io::Error::other(without_secrets(e)));
    resp.body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
