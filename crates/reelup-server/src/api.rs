//! Uppy Companion's S3 routes (`/s3/params`, `/s3/multipart/...`), field for field, behind
//! a bearer token. Reelup's extensions (`streamingUrl`, `/health`) are additive, so any
//! Companion client works unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reelup_core::{Secret, StreamingUrlBase};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::post_policy::{PolicyCredentials, PostPolicySpec, presign_post};
use crate::store::{ObjectStore, StoreError};

/// S3's limit for one object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
const MAX_PART_NUMBER: u32 = 10_000;

pub struct ApiState {
    pub store: ObjectStore,
    pub policy_credentials: PolicyCredentials,
    pub token: Secret,
    pub cdn: StreamingUrlBase,
    pub max_object_size: u64,
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
            _ => Self {
                status: StatusCode::BAD_GATEWAY,
                code: "storage_error",
                message: e.to_string(),
            },
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub fn router(state: Arc<ApiState>) -> Router {
    let s3 = Router::new()
        .route("/s3/params", get(params))
        .route("/s3/multipart", post(create_multipart))
        .route(
            "/s3/multipart/{upload_id}",
            get(list_parts).delete(abort_multipart),
        )
        .route("/s3/multipart/{upload_id}/{part}", get(sign_part))
        .route("/s3/multipart/{upload_id}/complete", post(complete))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(s3)
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route(
            "/cdn/{*key}",
            get(crate::cdn::serve).head(crate::cdn::serve),
        )
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok =
        presented.is_some_and(|t| bool::from(t.as_bytes().ct_eq(state.token.expose().as_bytes())));
    if !ok {
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
    }
    next.run(req).await
}

/// A new key for an upload: `<uuid>.<ext>`, the extension taken from the file name only
/// when it is short and alphanumeric, so no client text reaches the key's shape.
fn new_key(filename: &str) -> String {
    let id = uuid::Uuid::new_v4();
    match std::path::Path::new(filename)
        .extension()
        .and_then(|e| e.to_str())
    {
        Some(ext)
            if !ext.is_empty()
                && ext.len() <= 8
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("{id}.{}", ext.to_ascii_lowercase())
        }
        _ => id.to_string(),
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

fn content_type_or_default(t: Option<&str>) -> ApiResult<String> {
    let t = t.unwrap_or("application/octet-stream").trim();
    if t.is_empty() || t.len() > 200 || !t.contains('/') || t.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "type {t:?} is not a MIME type such as video/mp4"
        )));
    }
    Ok(t.to_owned())
}

async fn params(
    State(state): State<Arc<ApiState>>,
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
    let content_type = content_type_or_default(get("type"))?;
    let exact_size =
        match get("size") {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("size {s:?} is not a number of bytes"))
            })?),
        };
    if let Some(size) = exact_size.filter(|s| *s > state.max_object_size) {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "too_large",
            message: format!(
                "the file is {size} bytes; this server accepts at most {}",
                state.max_object_size
            ),
        });
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
    let key = new_key(filename);
    let spec = PostPolicySpec {
        bucket: state.store.bucket_name(),
        region: state.store.region(),
        key: &key,
        content_type: &content_type,
        max_size: state.max_object_size,
        exact_size,
        metadata: &metadata,
        lifetime: state.store.url_lifetime,
    };
    let fields = presign_post(
        &spec,
        &state.policy_credentials,
        time::OffsetDateTime::now_utc(),
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
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "body must be JSON {{\"filename\",\"type\",\"metadata\"}}: {e}"
        ))
    })?;
    let filename = body
        .filename
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("filename is required"))?;
    let content_type = content_type_or_default(body.content_type.as_deref())?;
    let given: BTreeMap<String, String> = body
        .metadata
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    let metadata = clean_metadata(&filename, &given);
    let key = new_key(&filename);
    let upload_id = state
        .store
        .create_multipart(&key, &content_type, &metadata)
        .await?;
    Ok(Json(json!({
        "key": key,
        "uploadId": upload_id,
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
    fn key(&self) -> ApiResult<&str> {
        self.key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "key is required: pass the key returned by POST /s3/multipart",
                )
            })
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
    Path((upload_id, part)): Path<(String, String)>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    let key = q.key()?;
    let expires = state.store.url_lifetime.as_secs();
    if part == "batch" {
        let numbers = q.part_numbers.as_deref().unwrap_or_default();
        let mut urls = serde_json::Map::new();
        for n in numbers.split(',').filter(|s| !s.is_empty()) {
            let number = part_number(n)?;
            let url = state.store.part_url(key, &upload_id, number);
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
    let url = state.store.part_url(key, &upload_id, number);
    Ok(Json(json!({ "url": url.as_str(), "expires": expires })))
}

async fn list_parts(
    State(state): State<Arc<ApiState>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    let parts = state.store.list_parts(q.key()?, &upload_id).await?;
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
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
    body: Result<Json<CompleteBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Value>> {
    let key = q.key()?;
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "body must be JSON {{\"parts\":[{{\"PartNumber\":1,\"ETag\":\"...\"}}]}}: {e}"
        ))
    })?;
    if body.parts.is_empty() {
        return Err(ApiError::bad_request("parts must list at least one part"));
    }
    let mut parts: Vec<(u32, String)> = Vec::with_capacity(body.parts.len());
    for p in body.parts {
        part_number(&p.part_number.to_string())?;
        parts.push((p.part_number, p.etag));
    }
    parts.sort_by_key(|(n, _)| *n);
    state.store.complete(key, &upload_id, &parts).await?;
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
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Value>> {
    state.store.abort(q.key()?, &upload_id).await?;
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuid_and_a_clean_extension() {
        let k = new_key("My Clip.MP4");
        assert!(k.ends_with(".mp4"), "{k}");
        assert_eq!(k.len(), 36 + 4);
        assert_eq!(new_key("x.../../etc").len(), 36);
        assert_eq!(new_key("noext").len(), 36);
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
