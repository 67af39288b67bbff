//! Uppy Companion's S3 routes (`/s3/params`, `/s3/multipart/...`), field for field, behind
//! a bearer token. Reelup's extensions (`streamingUrl`, `/health`) are additive, so any
//! Companion client works unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota};
use reelup_core::StreamingUrlBase;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::credentials::StsIssuer;
use crate::post_policy::{PostPolicySpec, presign_post};
use crate::store::{ObjectStore, StoreError};
use crate::users::{User, Users};

/// S3's limit for one object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
const MAX_PART_NUMBER: u32 = 10_000;
/// Request bodies are small JSON; a complete with 10,000 parts is well under this.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// What users may upload.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    pub max_object_size: u64,
    /// `video/*` or exact types; matched case-insensitively.
    pub allowed_content_types: Vec<String>,
}

impl UploadLimits {
    pub fn allows(&self, content_type: &str) -> bool {
        let t = content_type.to_ascii_lowercase();
        self.allowed_content_types.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_suffix("/*") {
                Some(family) => t.split_once('/').is_some_and(|(f, _)| f == family),
                None => t == allowed,
            }
        })
    }
}

pub struct ApiState {
    pub store: ObjectStore,
    pub users: Users,
    pub cdn: StreamingUrlBase,
    pub limits: UploadLimits,
    pub rate_limit: Option<DefaultKeyedRateLimiter<String>>,
    pub sts: Option<StsIssuer>,
}

/// A per-user limiter allowing `per_minute` requests with bursts of `burst`.
pub fn rate_limiter(per_minute: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    let quota = Quota::per_minute(std::num::NonZeroU32::new(per_minute)?)
        .allow_burst(std::num::NonZeroU32::new(burst)?);
    Some(governor::RateLimiter::keyed(quota))
}

/// An error as every route reports it: `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    fn forbidden_key(user: &User, key: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: format!(
                "key {key:?} is not one of yours: your keys start with \"{}/\"; use the key this server returned",
                user.prefix
            ),
        }
    }

    fn json_body(e: axum::extract::rejection::JsonRejection, shape: &str) -> Self {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Self {
                status,
                code: "too_large",
                message: format!("the request body is over {MAX_BODY} bytes"),
            };
        }
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: format!("body must be JSON {shape}: {}", e.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        let mut resp = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::S3 { code, .. } if code == "NoSuchUpload" => Self {
                status: StatusCode::NOT_FOUND,
                code: "no_such_upload",
                message: "no such multipart upload: it was completed, aborted or never existed"
                    .into(),
            },
            _ => {
                tracing::warn!(error = %e, "an object store call failed");
                Self {
                    status: StatusCode::BAD_GATEWAY,
                    code: "storage_error",
                    message: e.to_string(),
                }
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The presign routes and `/health`: all that `reelup-server serve` answers.
pub fn router(state: Arc<ApiState>) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes under the same layers: the local stack adds its CDN
/// stand-in ([`crate::cdn::routes`]), which a production server must not have.
pub fn router_with(state: Arc<ApiState>, extra: Router<Arc<ApiState>>) -> Router {
    let signed = Router::new()
        .route("/s3/params", get(params))
        .route("/s3/multipart", post(create_multipart))
        .route(
            "/s3/multipart/{upload_id}",
            get(list_parts).delete(abort_multipart),
        )
        .route("/s3/multipart/{upload_id}/{part}", get(sign_part))
        .route("/s3/multipart/{upload_id}/complete", post(complete))
        .route("/s3/sts", get(sts))
        .route("/whoami", get(whoami))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(signed)
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .merge(extra)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One line per failed request; successful signing is logged at debug only, since at
/// thousands a second the log would cost more than the signing. Headers are never logged.
async fn log_request(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    if status >= 400 {
        tracing::info!(%method, %path, status, micros, "request refused");
    } else {
        tracing::debug!(%method, %path, status, micros, "request");
    }
    resp
}

async fn require_token(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(user) = presented.and_then(|t| state.users.authenticate(t)) else {
        let message = if presented.is_none() {
            "missing token: send Authorization: Bearer <token>"
        } else {
            "wrong token: check the token this server printed or issued"
        };
        return ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
        .into_response();
    };
    if let Some(Err(not_until)) = state.rate_limit.as_ref().map(|l| l.check_key(&user.name)) {
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let mut resp = ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                message: format!("too many requests for this token; retry in {secs} s"),
            }
            .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("digits"),
            );
            return resp;
        }
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

async fn whoami(Extension(user): Extension<Arc<User>>) -> Json<Value> {
    Json(json!({ "user": user.name, "prefix": user.prefix }))
}

async fn sts(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
) -> ApiResult<Json<Value>> {
    let Some(issuer) = &state.sts else {
        return Err(ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "sts_unavailable",
            message: "this server has no credentials.role_arn, so it hands out no temporary \
                      credentials; upload through /s3/params or /s3/multipart"
                .into(),
        });
    };
    let issued = issuer.issue(&user.name, &user.prefix).await.map_err(|e| {
        tracing::warn!(error = %e, "STS AssumeRole failed");
        ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "sts_error",
            message: "could not get temporary credentials from STS; the server log says why".into(),
        }
    })?;
    Ok(Json(json!({
        "credentials": {
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key.expose(),
            "SessionToken": issued.session_token.expose(),
            "Expiration": issued.expiration,
        },
        "bucket": issuer.bucket,
        "region": issuer.region,
    })))
}

/// A new key for an upload: `<prefix>/<uuid>.<ext>`, the extension taken from the file name only
/// when it is short and alphanumeric, so no client text reaches the key's shape.
fn new_key(prefix: &str, filename: &str) -> String {
    let id = uuid::Uuid::new_v4();
    let ext = std::path::Path::new(filename)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()));
    match ext {
        Some(ext) => format!("{prefix}/{id}.{}", ext.to_ascii_lowercase()),
        None => format!("{prefix}/{id}"),
    }
}

/// User metadata safe to put in a header: printable ASCII names and values. The original
/// file name is always kept (as `name`), percent-encoded when it is not plain ASCII.
fn clean_metadata(filename: &str, given: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let name = name.to_ascii_lowercase();
        if !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            out.insert(name, header_safe(value));
        }
    }
    out.insert("name".to_owned(), header_safe(filename));
    out.into_iter().collect()
}

fn header_safe(value: &str) -> String {
    if value.chars().all(|c| (' '..='~').contains(&c)) {
        value.to_owned()
    } else {
        percent_encode(value)
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~ ".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn checked_content_type(limits: &UploadLimits, t: Option<&str>) -> ApiResult<String> {
    let t = t.unwrap_or("application/octet-stream").trim();
    if t.is_empty() || t.len() > 200 || !t.contains('/') || t.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "type {t:?} is not a MIME type such as video/mp4"
        )));
    }
    if !limits.allows(t) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "type_not_allowed",
            message: format!(
                "{t} is not accepted by this server; it accepts {}",
                limits.allowed_content_types.join(", ")
            ),
        });
    }
    Ok(t.to_owned())
}

async fn params(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let filename = get("filename")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("filename is required, e.g. ?filename=clip.mp4"))?;
    let content_type = checked_content_type(&state.limits, get("type"))?;
    let exact_size =
        match get("size") {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("size {s:?} is not a number of bytes"))
            })?),
        };
    if let Some(size) = exact_size.filter(|s| *s > state.limits.max_object_size) {
        return Err(too_large(size, state.limits.max_object_size));
    }
    let metadata: BTreeMap<String, String> = query
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|name| (name.to_owned(), v.clone()))
        })
        .collect();
    let metadata = clean_metadata(filename, &metadata);
    let key = new_key(&user.prefix, filename);
    let spec = PostPolicySpec {
        bucket: state.store.bucket_name(),
        region: state.store.region(),
        key: &key,
        content_type: &content_type,
        max_size: state.limits.max_object_size,
        exact_size,
        metadata: &metadata,
        lifetime: state.store.url_lifetime,
    };
    let fields = presign_post(
        &spec,
        &state.store.keys().current(),
        time::OffsetDateTime::from(state.store.clock().now()),
    );
    Ok(Json(json!({
        "method": "POST",
        "url": state.store.bucket_url().as_str(),
        "fields": fields,
        "expires": state.store.url_lifetime.as_secs(),
        "streamingUrl": state.cdn.url_for(&key),
    })))
}

#[derive(Deserialize)]
struct CreateBody {
    filename: Option<String>,
    #[serde(rename = "type")]
    content_type: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, Value>,
}

async fn create_multipart(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) =
        body.map_err(|e| ApiError::json_body(e, r#"{"filename","type","metadata"}"#))?;
    let filename = body
        .filename
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("filename is required"))?;
    let content_type = checked_content_type(&state.limits, body.content_type.as_deref())?;
    let given: BTreeMap<String, String> = body
        .metadata
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    let metadata = clean_metadata(&filename, &given);
    let key = new_key(&user.prefix, &filename);
    let upload_id = state
        .store
        .create_multipart(&key, &content_type, &metadata)
        .await?;
    Ok(Json(json!({
        "key": key,
        "uploadId": user.seal_upload_id(&key, &upload_id),
        "bucket": state.store.bucket_name(),
    })))
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
    #[serde(rename = "partNumbers")]
    part_numbers: Option<String>,
}

impl KeyQuery {
    /// The key, checked to be one of `user`'s. S3 binds an uploadId to its key, so a key
    /// check is also an uploadId check: another user's uploadId under your key is
    /// `NoSuchUpload` at S3, and under their key is refused here.
    fn key_of(&self, user: &User) -> ApiResult<&str> {
        let key = self
            .key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "key is required: pass the key returned by POST /s3/multipart",
                )
            })?;
        if !user.owns(key) {
            return Err(ApiError::forbidden_key(user, key));
        }
        Ok(key)
    }

    /// The key and S3's uploadId, both checked to be `user`'s and to belong together.
    fn upload_of<'a>(&'a self, user: &User, sealed: &'a str) -> ApiResult<(&'a str, &'a str)> {
        let key = self.key_of(user)?;
        let id = user.open_upload_id(key, sealed).ok_or_else(|| ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "this uploadId was not issued to you for this key; use the uploadId and \
                      key that POST /s3/multipart returned"
                .into(),
        })?;
        Ok((key, id))
    }
}

fn too_large(size: u64, max: u64) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: format!("the file is {size} bytes; this server accepts at most {max}"),
    }
}

fn part_number(s: &str) -> ApiResult<u16> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "part number {s:?} must be a whole number from 1 to {MAX_PART_NUMBER}"
            ))
        })
}

async fn sign_part(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path((upload_id, part)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    let (key, upload_id) = q.upload_of(&user, &upload_id)?;
    let expires = state.store.url_lifetime.as_secs();
    if part == "batch" {
        let numbers = q.part_numbers.as_deref().unwrap_or_default();
        let mut urls = serde_json::Map::new();
        for n in numbers.split(',').filter(|s| !s.is_empty()) {
            let number = part_number(n)?;
            let url = state.store.part_url(key, upload_id, number);
            urls.insert(number.to_string(), Value::String(url.into()));
        }
        if urls.is_empty() {
            return Err(ApiError::bad_request(
                "partNumbers is required, e.g. ?partNumbers=1,2,3",
            ));
        }
        return Ok(Json(json!({ "presignedUrls": urls })));
    }
    let number = part_number(&part)?;
    let url = state.store.part_url(key, upload_id, number);
    Ok(Json(json!({ "url": url.as_str(), "expires": expires })))
}

async fn list_parts(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    let (key, upload_id) = q.upload_of(&user, &upload_id)?;
    let parts = state.store.list_parts(key, upload_id).await?;
    Ok(Json(Value::Array(
        parts
            .into_iter()
            .map(|p| {
                json!({
                    "PartNumber": p.number,
                    "ETag": p.etag,
                    "Size": p.size,
                    "LastModified": p.last_modified,
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
struct CompleteBody {
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

async fn complete(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
    body: Result<Json<CompleteBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let (key, upload_id) = q.upload_of(&user, &upload_id)?;
    let Json(body) =
        body.map_err(|e| ApiError::json_body(e, r#"{"parts":[{"PartNumber":1,"ETag":"..."}]}"#))?;
    if body.parts.is_empty() {
        return Err(ApiError::bad_request("parts must list at least one part"));
    }
    let mut parts: Vec<(u32, String)> = Vec::with_capacity(body.parts.len());
    for p in body.parts {
        part_number(&p.part_number.to_string())?;
        parts.push((p.part_number, p.etag));
    }
    parts.sort_by_key(|(n, _)| *n);
    // S3 cannot cap a multipart object's size, so the cap is enforced here, from what S3
    // holds, before the object comes into being.
    let stored: u64 = state
        .store
        .list_parts(key, upload_id)
        .await?
        .iter()
        .filter(|p| parts.iter().any(|(n, _)| *n == p.number))
        .map(|p| p.size)
        .sum();
    if stored > state.limits.max_object_size {
        if let Err(e) = state.store.abort(key, upload_id).await {
            tracing::warn!(error = %e, "could not abort an oversized upload");
        }
        return Err(too_large(stored, state.limits.max_object_size));
    }
    state.store.complete(key, upload_id, &parts).await?;
    let mut location = state.store.bucket_url();
    location
        .path_segments_mut()
        .expect("bucket URL is a base")
        .pop_if_empty()
        .extend(key.split('/'));
    Ok(Json(json!({
        "location": location.as_str(),
        "key": key,
        "bucket": state.store.bucket_name(),
        "streamingUrl": state.cdn.url_for(key),
    })))
}

async fn abort_multipart(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    let (key, upload_id) = q.upload_of(&user, &upload_id)?;
    state.store.abort(key, upload_id).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefix_uuid_and_a_clean_extension() {
        let k = new_key("alice", "My Clip.MP4");
        assert!(k.starts_with("alice/") && k.ends_with(".mp4"), "{k}");
        assert_eq!(k.len(), 6 + 36 + 4);
        assert_eq!(new_key("a", "x.../../etc").len(), 2 + 36);
        assert_eq!(new_key("a", "noext").len(), 2 + 36);
        let user = User::new("alice", "alice", [0; 32]);
        assert!(user.owns(&k));
    }

    #[test]
    fn content_type_allowlist_matches_families_and_exact_types() {
        let limits = UploadLimits {
            max_object_size: 1,
            allowed_content_types: vec!["video/*".into(), "application/mxf".into()],
        };
        assert!(limits.allows("video/mp4"));
        assert!(limits.allows("Video/QuickTime"));
        assert!(limits.allows("application/mxf"));
        assert!(!limits.allows("application/pdf"));
        assert!(!limits.allows("videos/mp4"));
    }

    #[test]
    fn metadata_keeps_the_original_name_header_safe() {
        let m = clean_metadata(
            "été.mp4",
            &BTreeMap::from([("Bad Name".into(), "x".into())]),
        );
        assert_eq!(m, vec![("name".to_owned(), "%C3%A9t%C3%A9.mp4".to_owned())]);
    }
}
