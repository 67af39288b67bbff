//! A CDN stand-in: serves stored objects over plain HTTP with Range requests, fetching
//! them from the private bucket with signed requests, as CloudFront does with origin access
//! control. Viewers never see the bucket or a signature.
//!
//! With signed links configured it checks CloudFront-style signatures as a cache behaviour
//! with a trusted key group does ([`crate::cloudfront::verify`]): a signed request that is
//! expired, edited, signed by another key or from outside its address range is refused with
//! 403 and a short reason, and so is an unsigned one when signed links are required. The
//! signing parameters never reach the origin: it is asked for the key alone. Range requests
//! work with signed URLs as without (the signature covers the URL, not the headers).
//!
//! Only the local stack mounts it: a production server must never read its private bucket
//! for anonymous viewers (CloudFront does that, with its own permission). It serves only keys
//! of the shape the server hands out, so no path trick (`..%2F`, `%2E`) can make the store
//! list buckets or keys or read another bucket.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;

use crate::api::ApiState;
use crate::cloudfront::verify::SignedQuery;
use crate::cloudfront::{Refusal, Verifier};
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

/// What the CDN route checks of signed URLs: the key group's public keys (with the clock
/// it judges expiry by), and whether a request must be signed at all.
#[derive(Debug, Clone)]
pub struct SignatureCheck {
    pub verifier: Verifier,
    /// Refuse unsigned requests, as a cache behaviour with trusted key groups does. When
    /// false, unsigned requests pass and signed ones are still checked.
    pub required: bool,
}

/// The CDN route, for [`crate::api::router_with`]; `check` when links are signed.
pub fn routes(check: Option<SignatureCheck>) -> Router<Arc<ApiState>> {
    Router::new()
        .route("/cdn/{*key}", get(serve).head(serve))
        .layer(Extension(check.map(Arc::new)))
}

async fn serve(
    State(state): State<Arc<ApiState>>,
    Extension(check): Extension<Option<Arc<SignatureCheck>>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let refused = check.as_deref().and_then(|check| {
        let query = SignedQuery::parse(uri.query());
        // The resource a signature names is the URL as handed out: the CDN base and the
        // key, plus any query of the viewer's own (never the signing parameters).
        let mut resource = state.cdn.url_for(&key);
        if let Some(rest) = &query.rest {
            resource.push('?');
            resource.push_str(rest);
        }
        let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
        match check.verifier.check(&resource, &query, client) {
            Err(Refusal::Unsigned) if !check.required => None,
            Err(refusal) => Some(refusal),
            Ok(()) => None,
        }
    });
    let mut resp = if let Some(refusal) = refused {
        (StatusCode::FORBIDDEN, format!("{}\n", refusal.reason())).into_response()
    } else if is_issued_key(&key) {
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
