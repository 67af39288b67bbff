//! A CDN stand-in: serves stored objects over plain HTTP with Range requests, fetching
//! them from the private bucket with signed requests, as CloudFront does with origin access
//! control. Viewers never see the bucket or a signature.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::ApiState;

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

pub async fn serve(
    State(state): State<Arc<ApiState>>,
    method: Method,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let url = if method == Method::HEAD {
        state.store.head_url(&key)
    } else {
        state.store.get_url(&key)
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
            tracing::warn!(error = %e, "CDN origin fetch failed");
            return (StatusCode::BAD_GATEWAY, "origin unreachable\n").into_response();
        }
    };
    let status = origin.status();
    // A private bucket answers 403 for a missing key; a CDN says 404.
    if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
        return (StatusCode::NOT_FOUND, "no such video\n").into_response();
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
    resp.body(Body::from_stream(origin.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
