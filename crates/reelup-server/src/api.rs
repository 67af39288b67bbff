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
use reelup_protocol::companion::{CRC64NVME, CRC64NVME_HEADER};
use reelup_protocol::{
    Aborted, AwsCredentials, CompleteMultipart, CreateMultipart, ErrorBody, Health, LinkPolicy,
    LinkRequest, LinkResponse, ListedPart, MultipartCompleted, MultipartStart, PostPolicy,
    RedeemRequest, RedeemResponse, Secret, SignedPart, SignedPartBatch, StreamingUrlBase,
    StsCredentials, WhoAmI,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::checksum::Crc64Nvme;
use crate::cloudfront::{Policy, SignedLinks};
use crate::content_type::{ContentType, Pattern};
use crate::credentials::StsIssuer;
use crate::invite::{CodeError, Invite};
use crate::post_policy::{PostPolicySpec, presign_post};
use crate::secret::{Declared, ServerSecret};
use crate::store::{CompletePart, ObjectStore, StoreError};
use crate::users::{User, Users};

/// S3's limit for one object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
const MAX_PART_NUMBER: u32 = 10_000;
/// S3's smallest part (all but the last), and its largest.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most distinct part numbers signed in one batch request. Uppy asks for a handful at a
/// time; a cap keeps one request from costing the server thousands of signatures.
pub const MAX_BATCH_PARTS: usize = 100;
/// Request bodies are small JSON; a complete with 10,000 parts is well under this.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// `{"code": "..."}` with a code of at most [`crate::invite::MAX_CODE_LEN`] characters.
const MAX_REDEEM_BODY: usize = 4 * 1024;

/// Poster frames Reelup uploads beside each video (`<video stem>.poster.jpg`): accepted
/// whatever `allowed_content_types` says, but only by POST policy and only up to
/// [`MAX_POSTER_SIZE`], which the signed policy's `content-length-range` holds the store to.
pub const POSTER_CONTENT_TYPE: &str = "image/jpeg";
pub const MAX_POSTER_SIZE: u64 = 2 * 1024 * 1024;

/// What users may upload.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    pub max_object_size: u64,
    /// `video/*` or exact types; matched case-insensitively. Entries that are not valid
    /// patterns (the config check refuses them) match nothing.
    pub allowed_content_types: Vec<String>,
}

impl UploadLimits {
    pub fn allows(&self, content_type: &ContentType) -> bool {
        self.allowed_content_types
            .iter()
            .filter_map(|allowed| Pattern::parse(allowed).ok())
            .any(|pattern| pattern.matches(content_type))
    }
}

pub struct ApiState {
    pub store: ObjectStore,
    pub users: Users,
    pub cdn: StreamingUrlBase,
    pub limits: UploadLimits,
    pub rate_limit: Option<DefaultKeyedRateLimiter<String>>,
    /// `/s3/sts`, only when the config turns it on.
    pub sts: Option<StsIssuer>,
    /// Keys the tags of the uploadIds handed out.
    pub secret: ServerSecret,
    /// CloudFront signed links, when the config holds a key of the trusted key group.
    pub links: Option<SignedLinks>,
}

impl ApiState {
    /// Where viewers stream `key`: a signed link when signing is required or the client
    /// asked for one (`asked`, seconds: kept within the server's bounds, since a complete
    /// must not fail over it), else the plain CDN URL. The expiry comes with a signed one.
    fn streaming_link(&self, key: &str, asked: Option<u64>) -> (String, Option<u64>) {
        let url = self.cdn.url_for(key);
        let Some(links) = self
            .links
            .as_ref()
            .filter(|l| l.required || asked.is_some())
        else {
            return (url, None);
        };
        let min = crate::config::MIN_LINK_LIFETIME_SECS;
        let lifetime = asked
            .unwrap_or(links.default_lifetime.as_secs())
            .clamp(min, links.max_lifetime.as_secs().max(min));
        let link = links
            .signer
            .sign_canned(&url, self.unix_now().saturating_add(lifetime));
        (link.url, Some(link.expires_at))
    }

    fn unix_now(&self) -> u64 {
        self.store
            .clock()
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A limiter allowing `per_minute` requests with bursts of `burst` per key (a user's name
/// for tokens, a client address for requests without one); none when either is 0.
pub fn rate_limiter<K: std::hash::Hash + Eq + Clone>(
    per_minute: u32,
    burst: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let quota = Quota::per_minute(std::num::NonZeroU32::new(per_minute)?)
        .allow_burst(std::num::NonZeroU32::new(burst)?);
    Some(governor::RateLimiter::keyed(quota))
}

/// 429 `rate_limited` with Retry-After in whole seconds (at least 1): "too many requests
/// {whose}; retry in N s".
pub(crate) fn rate_limited(
    not_until: &governor::NotUntil<governor::clock::QuantaInstant>,
    whose: &str,
) -> Response {
    let wait = not_until.wait_time_from(governor::clock::Clock::now(
        &governor::clock::DefaultClock::default(),
    ));
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut resp = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests {whose}; retry in {secs} s"),
    }
    .into_response();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.to_string()).expect("digits"),
    );
    resp
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
        let body = Json(ErrorBody::new(self.code, self.message));
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
            // The parts the client named do not fit together: its mistake, not the store's.
            StoreError::S3 { code, message, .. }
                if matches!(
                    code.as_str(),
                    "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall"
                ) =>
            {
                // The store's own words say which part and what did not match.
                let said = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", message.chars().take(300).collect::<String>())
                };
                Self {
                    status: StatusCode::BAD_REQUEST,
                    code: "invalid_part",
                    message: format!(
                        "the store refused the parts ({code}{said}); complete with each part's number and the ETag (and checksum) its upload returned"
                    ),
                }
            }
            // A checksum the store computed differs from the one signed or declared: bytes
            // were damaged on the way, or the client's CRC is wrong. Nothing was kept.
            StoreError::S3 { code, message, .. } if code == "BadDigest" => Self {
                status: StatusCode::BAD_REQUEST,
                code: "bad_digest",
                message: format!(
                    "the store refused the object: its checksum does not match the one declared ({message}); the upload is still open: check the file and complete again, or upload it again"
                ),
            },
            // Complete is sent with If-None-Match: *; keys are new UUIDs, so an object at
            // the key means this one was made already (or another write raced it).
            StoreError::S3 { code, .. }
                if code == "PreconditionFailed" || code == "ConditionalRequestConflict" =>
            {
                Self {
                    status: StatusCode::CONFLICT,
                    code: "object_exists",
                    message: "an object is already stored at this key, and an upload never replaces one; check the object, or upload the file again under a new key"
                        .into(),
                }
            }
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
        .route("/reelup/link", post(sign_link))
        .route_layer(middleware::from_fn(json_errors))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(signed)
        .route(
            "/invites/redeem",
            post(redeem_invite).layer(DefaultBodyLimit::max(MAX_REDEEM_BODY)),
        )
        .route("/health", get(|| async { Json(Health::ok()) }))
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

/// Requests refused before a handler runs (by axum's extractors: a query string with `key`
/// twice, a path that is not UTF-8) get plain text from axum; clients get every refusal in
/// the API's JSON, as they do every other error.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || json {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    ApiError {
        status,
        code: if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        },
        message: format!("the request does not parse ({text}); send each parameter once, as UTF-8"),
    }
    .into_response()
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
        return rate_limited(&not_until, "for this token");
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

fn invite_error(status: StatusCode, code: &'static str, message: String) -> ApiError {
    ApiError {
        status,
        code,
        message,
    }
}

/// `POST /invites/redeem {"code"}`: the token of a one-time invite, once. Anonymous, so it
/// is under the edge's limit for requests without a token. Nothing is written unless the
/// code is this server's, unexpired, and for a user whose token it still is.
async fn redeem_invite(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<RedeemRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<RedeemResponse>> {
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            invite_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is over {MAX_REDEEM_BODY} bytes"),
            )
        } else {
            ApiError::bad_request(format!(
                "body must be JSON {{\"code\": \"<invite code>\"}}: {}",
                e.body_text()
            ))
        }
    })?;
    let now = state.store.clock().now();
    let invite = Invite::open(&state.secret, body.code.expose(), now).map_err(|e| match e {
        CodeError::Invalid => invite_error(
            StatusCode::BAD_REQUEST,
            "invite_invalid",
            "this invite code is not valid here: it was cut short or changed, or another \
             server made it; copy the whole link again, or ask for a new invite link"
                .into(),
        ),
        CodeError::Expired => invite_error(
            StatusCode::GONE,
            "invite_expired",
            "this invite link has expired; ask for a new invite link".into(),
        ),
    })?;
    let token = invite.token(&state.secret);
    match state.users.authenticate(&token) {
        Some(user) if user.name == invite.user => {}
        _ if state.users.has_user(&invite.user) => {
            return Err(invite_error(
                StatusCode::FORBIDDEN,
                "invite_revoked",
                format!(
                    "this invite's device is not among {}'s on this server: it was removed, \
                     or the server was not restarted after the invite was made; ask for a \
                     new invite link",
                    invite.user
                ),
            ));
        }
        _ => {
            return Err(invite_error(
                StatusCode::FORBIDDEN,
                "invite_user_removed",
                format!(
                    "{} is no longer a user of this server; ask its admin for a new invite link",
                    invite.user
                ),
            ));
        }
    }
    let marker = json!({ "user": invite.user, "expires": invite.expires }).to_string();
    if !state
        .store
        .put_if_absent(&invite.marker_key(), marker.into_bytes())
        .await?
    {
        return Err(invite_error(
            StatusCode::GONE,
            "invite_used",
            "this invite link has already been used; each link works once, so ask for a new \
             invite link"
                .into(),
        ));
    }
    tracing::info!(user = %invite.user, "invite redeemed");
    Ok(Json(RedeemResponse {
        token: Secret::new(token),
        user: invite.user,
    }))
}

async fn whoami(Extension(user): Extension<Arc<User>>) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: user.name.clone(),
        prefix: user.prefix.clone(),
    })
}

async fn sts(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
) -> ApiResult<Json<StsCredentials>> {
    let Some(issuer) = &state.sts else {
        return Err(ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "sts_unavailable",
            message: "this server hands out no temporary credentials: /s3/sts is off unless \
                      its config sets [sts] enabled = true (with credentials.role_arn); \
                      upload through /s3/params or /s3/multipart"
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
    Ok(Json(StsCredentials {
        credentials: AwsCredentials {
            access_key_id: issued.access_key_id,
            secret_access_key: issued.secret_access_key,
            session_token: issued.session_token,
            expiration: issued.expiration,
        },
        bucket: issuer.bucket.clone(),
        region: issuer.region.clone(),
    }))
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

/// Printable ASCII is kept as it is, unless it holds `=?`, which stores and SDKs read as
/// the start of an RFC 2047 encoded word (s3s 0.14 decodes such values, refuses ones it
/// cannot decode, and panics on `=?=`): percent-encoded then, like non-ASCII.
fn header_safe(value: &str) -> String {
    if value.chars().all(|c| (' '..='~').contains(&c)) && !value.contains("=?") {
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

/// The client's content type, parsed strictly; what is signed and stored is the parsed,
/// lowercased form, never the text as sent.
fn checked_content_type(limits: &UploadLimits, t: Option<&str>) -> ApiResult<ContentType> {
    let t = crate::content_type::parse(t.unwrap_or("application/octet-stream"))
        .map_err(|e| ApiError::bad_request(format!("type {e}")))?;
    if !limits.allows(&t) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "type_not_allowed",
            message: format!(
                "{t} is not accepted by this server; it accepts {}",
                limits.allowed_content_types.join(", ")
            ),
        });
    }
    Ok(t)
}

/// A POST upload's content type and the most bytes it may have: an allowed type up to
/// `max_object_size`, or a poster frame (`image/jpeg`) up to [`MAX_POSTER_SIZE`].
fn checked_post_type(limits: &UploadLimits, t: Option<&str>) -> ApiResult<(ContentType, u64)> {
    if let Ok(parsed) = crate::content_type::parse(t.unwrap_or_default())
        && parsed.as_str() == POSTER_CONTENT_TYPE
        && !limits.allows(&parsed)
    {
        return Ok((parsed, MAX_POSTER_SIZE.min(limits.max_object_size)));
    }
    checked_content_type(limits, t).map(|t| (t, limits.max_object_size))
}

async fn params(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<PostPolicy>> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let filename = get("filename")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("filename is required, e.g. ?filename=clip.mp4"))?;
    let (content_type, max_size) = checked_post_type(&state.limits, get("type"))?;
    let exact_size =
        match get("size") {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("size {s:?} is not a number of bytes"))
            })?),
        };
    if let Some(size) = exact_size.filter(|s| *s > max_size) {
        return Err(too_large(size, max_size));
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
    let asked_lifetime = match get("linkLifetimeSecs") {
        None => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("linkLifetimeSecs {s:?} is not a number of seconds"))
        })?),
    };
    let crc64nvme = get("checksumCRC64NVME")
        .map(|text| crc64nvme_param("checksumCRC64NVME", text))
        .transpose()?;
    let key = new_key(&user.prefix, filename);
    let spec = PostPolicySpec {
        bucket: state.store.bucket_name(),
        region: state.store.region(),
        key: &key,
        content_type: content_type.as_str(),
        max_size,
        exact_size,
        metadata: &metadata,
        crc64nvme,
        lifetime: state.store.url_lifetime,
    };
    let fields = presign_post(
        &spec,
        &state.store.keys().current(),
        time::OffsetDateTime::from(state.store.clock().now()),
    );
    let (streaming_url, streaming_url_expires_at) = state.streaming_link(&key, asked_lifetime);
    Ok(Json(PostPolicy {
        method: "POST".to_owned(),
        url: state.store.bucket_url().into(),
        fields,
        expires: Some(state.store.url_lifetime.as_secs()),
        streaming_url: Some(streaming_url),
        streaming_url_expires_at,
    }))
}

/// The part size of an upload that declared its size but no part size, so that every
/// part's length can be signed: S3's smallest part (5 MiB), or for a file too large to fit
/// in 10,000 of those (S3's limit), its size over 10,000 rounded up to a whole MiB. Small
/// parts keep a retried or resumed part cheap; the client is told the size in the create
/// answer.
fn derived_part_size(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    size.div_ceil(u64::from(MAX_PART_NUMBER))
        .div_ceil(MIB)
        .saturating_mul(MIB)
        .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// Checks what a client declared at create (`size` and `partSize`, Reelup's extensions)
/// against the limits and S3's rules, and derives a part size when only the size was
/// declared. Companion clients declare neither and are held to `max_object_size` at
/// complete.
fn checked_declared(limits: &UploadLimits, body: &CreateMultipart) -> ApiResult<Declared> {
    let mut declared = Declared {
        size: body.size,
        part_size: body.part_size,
        crc64nvme: false,
    };
    let Some(size) = declared.size else {
        if declared.part_size.is_some() {
            return Err(ApiError::bad_request(
                "partSize needs size: declare the file's size in bytes too",
            ));
        }
        return Ok(declared);
    };
    if size > limits.max_object_size {
        return Err(too_large(size, limits.max_object_size));
    }
    if let Some(part_size) = declared.part_size {
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(ApiError::bad_request(format!(
                "partSize {part_size} must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB) bytes, S3's part sizes"
            )));
        }
        if size.div_ceil(part_size) > u64::from(MAX_PART_NUMBER) {
            return Err(ApiError::bad_request(format!(
                "{size} bytes in parts of {part_size} would take more than {MAX_PART_NUMBER} parts, S3's limit; use larger parts"
            )));
        }
    } else {
        // Once a size is declared every part is bounded: its exact length is signed into
        // its URL, so no part can be larger than the file needs, nor change its size
        // between the server's ListParts and its Complete.
        declared.part_size = Some(derived_part_size(size));
    }
    Ok(declared)
}

/// The highest part number an upload may use: what its declared size needs at its part
/// size; with a size alone (uploadIds sealed before part sizes were derived), what it
/// could need at S3's smallest part size; else S3's limit.
fn last_part(declared: Declared) -> u32 {
    let parts = match (declared.size, declared.part_size) {
        (Some(size), Some(part_size)) => size.div_ceil(part_size),
        (Some(size), None) => size.div_ceil(MIN_PART_SIZE),
        (None, _) => u64::from(MAX_PART_NUMBER),
    };
    parts.clamp(1, u64::from(MAX_PART_NUMBER)) as u32
}

/// The exact length of part `number` when the upload declared both sizes: signed into the
/// part's URL, so the store refuses a part of any other length.
fn part_length(declared: Declared, number: u32) -> Option<u64> {
    let (size, part_size) = (declared.size?, declared.part_size?);
    let start = u64::from(number - 1) * part_size;
    Some(part_size.min(size.saturating_sub(start)))
}

async fn create_multipart(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    body: Result<Json<CreateMultipart>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<MultipartStart>> {
    let Json(body) = body.map_err(|e| {
        ApiError::json_body(
            e,
            r#"{"filename","type","metadata","size","partSize","checksumAlgorithm"}"#,
        )
    })?;
    let content_type = checked_content_type(&state.limits, body.content_type.as_deref())?;
    let mut declared = checked_declared(&state.limits, &body)?;
    declared.crc64nvme = checked_checksum_algorithm(body.checksum_algorithm.as_deref())?;
    if body.filename.is_empty() {
        return Err(ApiError::bad_request("filename is required"));
    }
    let filename = body.filename;
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
        .create_multipart(&key, content_type.as_str(), &metadata, declared.crc64nvme)
        .await?;
    Ok(Json(MultipartStart {
        upload_id: state
            .secret
            .seal_upload_id(&user.name, &key, &upload_id, declared),
        key,
        bucket: Some(state.store.bucket_name().to_owned()),
        checksum_algorithm: declared.crc64nvme.then(|| CRC64NVME.to_owned()),
        part_size: declared.part_size,
    }))
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
    #[serde(rename = "partNumbers")]
    part_numbers: Option<String>,
    /// A part's CRC-64/NVME to sign into its URL (Reelup's extension).
    checksum: Option<String>,
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

    /// The key, S3's uploadId and what the client declared at create, checked to be
    /// `user`'s and to belong together.
    fn upload_of<'a>(
        &'a self,
        secret: &ServerSecret,
        user: &User,
        sealed: &'a str,
    ) -> ApiResult<Upload<'a>> {
        let key = self.key_of(user)?;
        let (id, declared) = secret
            .open_upload_id(&user.name, key, sealed)
            .ok_or_else(|| ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: "this uploadId was not issued to you for this key; use the uploadId and \
                      key that POST /s3/multipart returned"
                    .into(),
            })?;
        Ok(Upload { key, id, declared })
    }
}

/// A multipart upload as a request names it, once checked.
struct Upload<'a> {
    key: &'a str,
    id: &'a str,
    declared: Declared,
}

impl Upload<'_> {
    /// `n` as a part number this upload may use.
    fn part_number(&self, n: &str) -> ApiResult<u16> {
        let number = part_number(n)?;
        let last = last_part(self.declared);
        if u32::from(number) > last {
            let why = match (self.declared.size, self.declared.part_size) {
                (Some(size), Some(part_size)) => format!(
                    "its declared size of {size} bytes in parts of {part_size} bytes needs parts 1 to {last}"
                ),
                (Some(size), None) => format!(
                    "its declared size of {size} bytes needs at most {last} parts of S3's smallest part size"
                ),
                (None, _) => format!("S3 allows parts 1 to {last}"),
            };
            return Err(ApiError::bad_request(format!(
                "part {number} is beyond this upload: {why}"
            )));
        }
        Ok(number)
    }

    fn part_url(&self, store: &ObjectStore, number: u16, crc: Option<Crc64Nvme>) -> url::Url {
        store.part_url(
            self.key,
            self.id,
            number,
            part_length(self.declared, u32::from(number)),
            crc,
        )
    }

    /// The checksum to sign into part `number`'s URL: required for a checksummed upload,
    /// refused for any other (S3 refuses a part checksum the upload was not created with).
    fn part_checksum(&self, number: u16, given: Option<&str>) -> ApiResult<Option<Crc64Nvme>> {
        match (self.declared.crc64nvme, given) {
            (true, Some(text)) => crc64nvme_param("checksum", text).map(Some),
            (true, None) => Err(ApiError::bad_request(format!(
                "this upload was created with checksumAlgorithm {CRC64NVME}: sign part {number} with its checksum, pass ?checksum=<base64 of the part's CRC-64/NVME>"
            ))),
            (false, Some(_)) => Err(ApiError::bad_request(format!(
                "this upload was created without checksumAlgorithm, so the store takes no part checksums for it: sign part {number} without ?checksum, or create the upload with \"checksumAlgorithm\": \"{CRC64NVME}\""
            ))),
            (false, None) => Ok(None),
        }
    }
}

/// A client's CRC-64/NVME from the parameter `name`, checked to be S3's exact form.
fn crc64nvme_param(name: &str, text: &str) -> ApiResult<Crc64Nvme> {
    Crc64Nvme::parse(text).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}

/// What a create body asks for in `checksumAlgorithm`: nothing, or the one algorithm of
/// the extension. Anything else is refused rather than ignored, so a client never
/// believes a check is made that is not.
fn checked_checksum_algorithm(asked: Option<&str>) -> ApiResult<bool> {
    match asked {
        None => Ok(false),
        Some(CRC64NVME) => Ok(true),
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            Err(ApiError::bad_request(format!(
                "checksumAlgorithm {shown:?} is not supported: this server checks \"{CRC64NVME}\" (S3's full-object CRC-64/NVME), or leave checksumAlgorithm out"
            )))
        }
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
) -> ApiResult<Response> {
    let upload = q.upload_of(&state.secret, &user, &upload_id)?;
    let expires = state.store.url_lifetime.as_secs();
    if part == "batch" {
        // One checksum per part cannot be passed in one query; checksummed uploads sign
        // each part on its own.
        if upload.declared.crc64nvme || q.checksum.is_some() {
            return Err(ApiError::bad_request(format!(
                "the batch route signs no checksums; this upload was created with checksumAlgorithm {CRC64NVME}: sign each part with GET /s3/multipart/{{uploadId}}/{{partNumber}}?key=...&checksum=<base64 CRC-64/NVME>"
            )));
        }
        let numbers = q.part_numbers.as_deref().unwrap_or_default();
        let mut wanted = std::collections::BTreeSet::new();
        for n in numbers.split(',').filter(|s| !s.is_empty()) {
            wanted.insert(upload.part_number(n)?);
            if wanted.len() > MAX_BATCH_PARTS {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_BATCH_PARTS} part numbers per request; ask for the rest in further requests"
                )));
            }
        }
        if wanted.is_empty() {
            return Err(ApiError::bad_request(
                "partNumbers is required, e.g. ?partNumbers=1,2,3",
            ));
        }
        let presigned_urls = wanted
            .into_iter()
            .map(|n| (u32::from(n), upload.part_url(&state.store, n, None).into()))
            .collect();
        return Ok(Json(SignedPartBatch { presigned_urls }).into_response());
    }
    let number = upload.part_number(&part)?;
    let crc = upload.part_checksum(number, q.checksum.as_deref())?;
    Ok(Json(SignedPart {
        url: upload.part_url(&state.store, number, crc).into(),
        expires: Some(expires),
        // The signed header the PUT must carry, exactly as signed.
        headers: crc.map(|crc| BTreeMap::from([(CRC64NVME_HEADER.to_owned(), crc.to_base64())])),
    })
    .into_response())
}

async fn list_parts(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Vec<ListedPart>>> {
    let upload = q.upload_of(&state.secret, &user, &upload_id)?;
    let parts = state.store.list_parts(upload.key, upload.id).await?;
    Ok(Json(
        parts
            .into_iter()
            .map(|p| ListedPart {
                part_number: p.number,
                etag: p.etag,
                size: p.size,
                // Always sent, as Companion does (empty if the store gave none).
                last_modified: Some(p.last_modified),
            })
            .collect(),
    ))
}

async fn complete(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
    body: Result<Json<CompleteMultipart>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<MultipartCompleted>> {
    let upload = q.upload_of(&state.secret, &user, &upload_id)?;
    let (key, upload_id) = (upload.key, upload.id);
    let Json(body) =
        body.map_err(|e| ApiError::json_body(e, r#"{"parts":[{"PartNumber":1,"ETag":"..."}]}"#))?;
    if body.parts.is_empty() {
        return Err(ApiError::bad_request("parts must list at least one part"));
    }
    let whole = match (
        upload.declared.crc64nvme,
        body.checksum_crc64nvme.as_deref(),
    ) {
        (true, Some(text)) => Some(crc64nvme_param("checksumCRC64NVME", text)?),
        (true, None) => {
            return Err(ApiError::bad_request(format!(
                "this upload was created with checksumAlgorithm {CRC64NVME}: complete it with \"checksumCRC64NVME\", the base64 CRC-64/NVME of the whole file, so the store can check it"
            )));
        }
        (false, Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "this upload was created without checksumAlgorithm, so the store cannot check checksumCRC64NVME: leave it out, or create the upload with \"checksumAlgorithm\": \"{CRC64NVME}\""
            )));
        }
        (false, None) => None,
    };
    let mut parts: Vec<(u32, String)> = Vec::with_capacity(body.parts.len());
    let mut part_crcs = std::collections::HashMap::new();
    for p in body.parts {
        let number = upload.part_number(&p.part_number.to_string())?;
        if let Some(text) = p.checksum_crc64nvme.as_deref() {
            if !upload.declared.crc64nvme {
                return Err(ApiError::bad_request(format!(
                    "part {number} lists ChecksumCRC64NVME, but this upload was created without checksumAlgorithm: leave part checksums out"
                )));
            }
            part_crcs.insert(
                p.part_number,
                crc64nvme_param(&format!("part {number}'s ChecksumCRC64NVME"), text)?,
            );
        }
        parts.push((p.part_number, p.etag));
    }
    parts.sort_by_key(|(n, _)| *n);
    // A part listed twice would be counted once here but could be joined twice by a store
    // that does not refuse it (S3 does), making the object larger than checked.
    if let Some(w) = parts.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ApiError::bad_request(format!(
            "part {} is listed more than once; list each part once",
            w[0].0
        )));
    }
    // S3 cannot cap a multipart object's size, so the cap is enforced here, from what S3
    // holds, before the object comes into being. Parts signed with their length cannot
    // have grown since; for clients that declared no part size this is the only check.
    let listed = match state.store.list_parts(key, upload_id).await {
        Ok(listed) => listed,
        Err(StoreError::S3 { ref code, .. }) if code == "NoSuchUpload" => {
            let confirmed = completed_earlier(&state, &upload, &parts, whole).await?;
            return Ok(completed_answer(
                &state,
                key,
                confirmed,
                whole,
                body.link_lifetime_secs,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    // Up to 10,000 parts on each side: look numbers up in a set, not by scanning the list
    // once per part (10^8 comparisons a request is a lever for a token holder).
    let uploaded: std::collections::HashSet<u32> = listed.iter().map(|p| p.number).collect();
    // A part never uploaded is the client's mistake: say so (400), rather than pass it on
    // for the store to refuse (InvalidPart, or a 500 from s3s-fs) as a storage_error.
    if let Some((n, _)) = parts.iter().find(|(n, _)| !uploaded.contains(n)) {
        return Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_part",
            message: format!(
                "part {n} was never uploaded; complete with the parts that GET /s3/multipart/{{uploadId}}?key=... lists"
            ),
        });
    }
    let stored: u64 = listed
        .iter()
        .filter(|p| parts.binary_search_by_key(&p.number, |(n, _)| *n).is_ok())
        .map(|p| p.size)
        .sum();
    let refusal = if stored > state.limits.max_object_size {
        Some(too_large(stored, state.limits.max_object_size))
    } else {
        upload
            .declared
            .size
            .filter(|declared| stored > *declared)
            .map(|declared| ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: format!(
                    "the parts hold {stored} bytes, more than the {declared} declared when the upload was created; the upload is aborted, start it again"
                ),
            })
    };
    if let Some(refusal) = refusal {
        if let Err(e) = state.store.abort(key, upload_id).await {
            tracing::warn!(error = %e, "could not abort an oversized upload");
        }
        return Err(refusal);
    }
    let listed_parts = parts.clone();
    let parts: Vec<CompletePart> = parts
        .into_iter()
        .map(|(number, etag)| CompletePart {
            number,
            etag,
            crc64nvme: part_crcs.get(&number).copied(),
        })
        .collect();
    // In a task of its own: when the client goes away, axum drops this handler, and the
    // store's Complete must not be dropped with it half-way (the client could not tell
    // whether it happened). The task runs to its end whatever the client does.
    let store = state.store.clone();
    let (owned_key, owned_id) = (key.to_owned(), upload_id.to_owned());
    let completing = tokio::spawn(async move {
        store
            .complete(&owned_key, &owned_id, &parts, whole)
            .await
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: "storage_error",
        message: format!(
            "the server's call to complete the upload failed ({e}); list its parts and complete it again"
        ),
    })?;
    let confirmed = match completing {
        Ok(confirmed) => confirmed,
        // Completed by a request that raced this one between the listing and now.
        Err(StoreError::S3 { ref code, .. }) if code == "NoSuchUpload" => {
            completed_earlier(&state, &upload, &listed_parts, whole).await?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(completed_answer(
        &state,
        key,
        confirmed,
        whole,
        body.link_lifetime_secs,
    ))
}

/// A Complete asked again after one that succeeded (its answer lost to a crash or a cut
/// connection): S3 then answers `NoSuchUpload`, as it does for an upload aborted, expired
/// or never made. The object tells them apart: it is this upload's if its size is the one
/// declared (or these parts add up to) and its whole-object CRC-64/NVME is the one the
/// client gives (a checksummed upload), or else its ETag is the one exactly these parts
/// make. Then it is answered as the first Complete was: the store's confirmed CRC. Else
/// `no_such_upload`, and the client starts a new upload. A store that will not say (no
/// `s3:GetObject`) gets the same answer: the client then looks through the CDN.
async fn completed_earlier(
    state: &ApiState,
    upload: &Upload<'_>,
    parts: &[(u32, String)],
    whole: Option<Crc64Nvme>,
) -> ApiResult<Option<String>> {
    let gone = || {
        ApiError::from(StoreError::S3 {
            status: 404,
            code: "NoSuchUpload".into(),
            message: String::new(),
        })
    };
    let Some(object) = state.store.head(upload.key).await? else {
        return Err(gone());
    };
    let size_fits = upload.declared.size.is_none_or(|size| object.size == size);
    let same = match whole {
        Some(crc) => object.crc64nvme.as_deref() == Some(crc.to_base64().as_str()),
        None => multipart_etag(parts)
            .is_some_and(|etag| object.etag.trim_matches('"').eq_ignore_ascii_case(&etag)),
    };
    if !(size_fits && same) {
        return Err(gone());
    }
    tracing::info!(
        key = upload.key,
        "a repeated Complete found its object: answered as completed"
    );
    Ok(object.crc64nvme.filter(|_| whole.is_some()))
}

/// S3's ETag for an object made of `parts` (`md5(part MD5s)-count`), when every part's
/// ETag is a plain MD5.
fn multipart_etag(parts: &[(u32, String)]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut all = Md5::new();
    for (_, etag) in parts {
        let mut md5 = [0u8; 16];
        hex::decode_to_slice(etag.trim_matches('"'), &mut md5).ok()?;
        all.update(md5);
    }
    Some(format!("{}-{}", hex::encode(all.finalize()), parts.len()))
}

/// The answer to a Complete that succeeded: where the object is, its streaming link, and
/// the whole-object CRC the store confirmed.
fn completed_answer(
    state: &ApiState,
    key: &str,
    confirmed: Option<String>,
    whole: Option<Crc64Nvme>,
    link_lifetime_secs: Option<u64>,
) -> Json<MultipartCompleted> {
    let (streaming_url, streaming_url_expires_at) = state.streaming_link(key, link_lifetime_secs);
    // With signed links the bucket URL is of no use to anyone (the bucket is private), and
    // Companion clients such as Uppy show `location`: they get the signed link there too.
    let location = if streaming_url_expires_at.is_some() {
        streaming_url.clone()
    } else {
        let mut location = state.store.bucket_url();
        location
            .path_segments_mut()
            .expect("bucket URL is a base")
            .pop_if_empty()
            .extend(key.split('/'));
        location.into()
    };
    Json(MultipartCompleted {
        location: Some(location),
        key: Some(key.to_owned()),
        bucket: Some(state.store.bucket_name().to_owned()),
        streaming_url: Some(streaming_url),
        streaming_url_expires_at,
        // What the store confirmed, never the client's own value echoed: a store that
        // checks nothing answers none, and the client knows the object went unchecked.
        checksum_crc64nvme: confirmed.filter(|_| whole.is_some()),
    })
}

/// `POST /reelup/link`: a new signed link to an object of the caller's, for the lifetime
/// and policy asked. Nothing is signed for a key outside the caller's prefix or for an
/// object that does not exist.
async fn sign_link(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    body: Result<Json<LinkRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<LinkResponse>> {
    let Json(body) = body.map_err(|e| {
        ApiError::json_body(
            e,
            r#"{"key","lifetimeSecs","policy":"canned"|"custom","ipRange"}"#,
        )
    })?;
    let Some(links) = &state.links else {
        return Err(ApiError {
            status: StatusCode::NOT_IMPLEMENTED,
            code: "links_unavailable",
            message: "this server signs no CloudFront links: its config needs [cloudfront] \
                      key_pair_id and private_key_file; share the plain streaming URL"
                .into(),
        });
    };
    if !user.owns(&body.key) {
        return Err(ApiError::forbidden_key(&user, &body.key));
    }
    let lifetime = links
        .lifetime(body.lifetime_secs)
        .map_err(|message| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_lifetime",
            message,
        })?;
    let source_ip = match (&body.ip_range, body.policy) {
        (None, _) => None,
        (Some(_), LinkPolicy::Canned) => {
            return Err(ApiError::bad_request(
                "ipRange needs a custom policy: send \"policy\": \"custom\" with it",
            ));
        }
        (Some(range), LinkPolicy::Custom) => Some(
            crate::cloudfront::policy::parse_range(range)
                .map_err(|e| ApiError::bad_request(format!("ipRange {e}")))?,
        ),
    };
    // Without `s3:GetObject` the store will not say (None); the key is the caller's
    // anyway, and the CDN answers 404 for a missing object.
    if state.store.exists(&body.key).await? == Some(false) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "no_such_object",
            message: format!(
                "there is no object {:?}: its upload never finished, or it was deleted",
                body.key
            ),
        });
    }
    let url = state.cdn.url_for(&body.key);
    let expires = state.unix_now().saturating_add(lifetime);
    let link = match body.policy {
        LinkPolicy::Canned => links.signer.sign_canned(&url, expires),
        LinkPolicy::Custom => links.signer.sign_custom(
            &url,
            &Policy {
                resource: url.clone(),
                date_less_than: expires,
                date_greater_than: None,
                source_ip,
            },
        ),
    };
    Ok(Json(LinkResponse {
        url: link.url,
        expires_at: link.expires_at,
    }))
}

async fn abort_multipart(
    State(state): State<Arc<ApiState>>,
    Extension(user): Extension<Arc<User>>,
    Path(upload_id): Path<String>,
    Query(q): Query<KeyQuery>,
) -> ApiResult<Json<Aborted>> {
    let upload = q.upload_of(&state.secret, &user, &upload_id)?;
    state.store.abort(upload.key, upload.id).await?;
    Ok(Json(Aborted {}))
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
        let user = User::new("alice", "alice");
        assert!(user.owns(&k));
    }

    #[test]
    fn content_type_allowlist_matches_families_and_exact_types() {
        let limits = UploadLimits {
            max_object_size: 1,
            allowed_content_types: vec!["video/*".into(), "application/mxf".into()],
        };
        let allows = |t: &str| limits.allows(&crate::content_type::parse(t).expect(t));
        assert!(allows("video/mp4"));
        assert!(allows("Video/QuickTime"));
        assert!(allows("application/mxf"));
        assert!(!allows("application/pdf"));
        assert!(!allows("videos/mp4"));
    }

    #[test]
    fn posters_are_jpegs_by_post_and_small() {
        let limits = UploadLimits {
            max_object_size: 1 << 40,
            allowed_content_types: vec!["video/*".into()],
        };
        let (t, max) = checked_post_type(&limits, Some("Image/JPEG")).expect("a poster");
        assert_eq!((t.as_str(), max), ("image/jpeg", MAX_POSTER_SIZE));
        let (_, max) = checked_post_type(&limits, Some("video/mp4")).expect("a video");
        assert_eq!(max, 1 << 40);
        for other in ["image/png", "image/svg+xml", "text/html", "image/jpeg;x=1"] {
            assert!(checked_post_type(&limits, Some(other)).is_err(), "{other}");
        }
        // Multipart (videos only) keeps the allowlist as it is.
        assert!(checked_content_type(&limits, Some("image/jpeg")).is_err());
        // A server whose own cap is lower keeps it.
        let tight = UploadLimits {
            max_object_size: 1000,
            ..limits
        };
        assert_eq!(
            checked_post_type(&tight, Some("image/jpeg"))
                .expect("poster")
                .1,
            1000
        );
    }

    #[test]
    fn part_bounds_follow_the_declared_size() {
        const MIB: u64 = 1024 * 1024;
        let both = Declared {
            size: Some(12 * MIB + 1),
            part_size: Some(5 * MIB),
            crc64nvme: false,
        };
        assert_eq!(last_part(both), 3);
        assert_eq!(part_length(both, 1), Some(5 * MIB));
        assert_eq!(part_length(both, 3), Some(2 * MIB + 1));
        let exact = Declared {
            size: Some(10 * MIB),
            part_size: Some(5 * MIB),
            crc64nvme: false,
        };
        assert_eq!(
            (last_part(exact), part_length(exact, 2)),
            (2, Some(5 * MIB))
        );
        let empty = Declared {
            size: Some(0),
            part_size: Some(5 * MIB),
            crc64nvme: false,
        };
        assert_eq!((last_part(empty), part_length(empty, 1)), (1, Some(0)));
        let size_only = Declared {
            size: Some(11 * MIB),
            part_size: None,
            crc64nvme: false,
        };
        assert_eq!((last_part(size_only), part_length(size_only, 1)), (3, None));
        assert_eq!(last_part(Declared::default()), 10_000);
    }

    #[test]
    fn derived_part_sizes_are_s3s_smallest_or_fit_in_10000_parts() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(derived_part_size(0), 5 * MIB);
        assert_eq!(derived_part_size(1), 5 * MIB);
        assert_eq!(derived_part_size(50_000 * MIB), 5 * MIB);
        assert_eq!(derived_part_size(50_000 * MIB + 1), 6 * MIB);
        for size in [1, 5 * MIB, 123_456_789_012, MAX_OBJECT_SIZE] {
            let part = derived_part_size(size);
            assert!(size.div_ceil(part) <= u64::from(MAX_PART_NUMBER), "{size}");
            assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part), "{size}");
            assert_eq!(part % MIB, 0, "{size}");
        }
    }

    #[test]
    fn metadata_keeps_the_original_name_header_safe() {
        let m = clean_metadata(
            "été.mp4",
            &BTreeMap::from([("Bad Name".into(), "x".into())]),
        );
        assert_eq!(m, vec![("name".to_owned(), "%C3%A9t%C3%A9.mp4".to_owned())]);
        // What reads as an RFC 2047 encoded word is encoded too, so no store decodes it.
        for (name, stored) in [
            ("=?=", "%3D%3F%3D"),
            ("=?utf-8?B?w6k=?=.mp4", "%3D%3Futf-8%3FB%3Fw6k%3D%3F%3D.mp4"),
            ("a=b?.mp4", "a=b?.mp4"),
        ] {
            let m = clean_metadata(name, &BTreeMap::new());
            assert_eq!(m, vec![("name".to_owned(), stored.to_owned())], "{name}");
        }
    }
}
