//! `reelup-server`'s configuration: a TOML file plus `REELUP_SERVER_<NAME>` environment
//! overrides, checked as a whole so that `reelup-server check` can list every problem with
//! the fix, not just the first.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub const ENV_PREFIX: &str = "REELUP_SERVER_";

/// Settings an environment variable may override: `REELUP_SERVER_<NAME>`, the setting's
/// path in the file, and its TOML type. Names are the setting's own, without its section.
const ENV_OVERRIDES: &[(&str, &str, EnvKind)] = &[
    ("LISTEN", "listen", EnvKind::Str),
    ("BUCKET", "bucket", EnvKind::Str),
    ("REGION", "region", EnvKind::Str),
    ("ENDPOINT", "endpoint", EnvKind::Str),
    ("PATH_STYLE", "path_style", EnvKind::Bool),
    ("CDN_BASE_URL", "cdn_base_url", EnvKind::Str),
    ("PUBLIC_URL", "public_url", EnvKind::Str),
    ("URL_LIFETIME_SECS", "url_lifetime_secs", EnvKind::Int),
    ("MAX_OBJECT_SIZE", "max_object_size", EnvKind::Str),
    ("LOG_FORMAT", "log_format", EnvKind::Str),
    ("SECRET_FILE", "secret_file", EnvKind::Str),
    ("STS_ENABLED", "sts.enabled", EnvKind::Bool),
    ("ROLE_ARN", "credentials.role_arn", EnvKind::Str),
    ("PROFILE", "credentials.profile", EnvKind::Str),
    ("EXTERNAL_ID", "credentials.external_id", EnvKind::Str),
    ("STS_ENDPOINT", "credentials.sts_endpoint", EnvKind::Str),
    (
        "SESSION_DURATION_SECS",
        "credentials.session_duration_secs",
        EnvKind::Int,
    ),
    (
        "REQUESTS_PER_MINUTE",
        "rate_limit.requests_per_minute",
        EnvKind::Int,
    ),
    ("BURST", "rate_limit.burst", EnvKind::Int),
    (
        "HEADER_READ_TIMEOUT_SECS",
        "limits.header_read_timeout_secs",
        EnvKind::Int,
    ),
    (
        "REQUEST_TIMEOUT_SECS",
        "limits.request_timeout_secs",
        EnvKind::Int,
    ),
    ("MAX_CONNECTIONS", "limits.max_connections", EnvKind::Int),
    (
        "ANONYMOUS_REQUESTS_PER_MINUTE",
        "limits.anonymous_requests_per_minute",
        EnvKind::Int,
    ),
    ("ANONYMOUS_BURST", "limits.anonymous_burst", EnvKind::Int),
    ("TRUSTED_PROXIES", "limits.trusted_proxies", EnvKind::List),
    ("KEY_PAIR_ID", "cloudfront.key_pair_id", EnvKind::Str),
    (
        "PRIVATE_KEY_FILE",
        "cloudfront.private_key_file",
        EnvKind::Str,
    ),
    (
        "REQUIRE_SIGNED_LINKS",
        "cloudfront.require_signed_links",
        EnvKind::Bool,
    ),
    (
        "DEFAULT_LINK_LIFETIME_SECS",
        "cloudfront.default_link_lifetime_secs",
        EnvKind::Int,
    ),
    (
        "MAX_LINK_LIFETIME_SECS",
        "cloudfront.max_link_lifetime_secs",
        EnvKind::Int,
    ),
];

#[derive(Clone, Copy)]
enum EnvKind {
    Str,
    Bool,
    Int,
    /// Comma-separated strings.
    List,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// An S3-compatible endpoint instead of AWS's regional one.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub path_style: bool,
    pub cdn_base_url: String,
    /// This server's address as creators reach it (behind TLS), for invite links:
    /// `reelup-server token add|invite` put it in the link they print.
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default = "default_url_lifetime")]
    pub url_lifetime_secs: u64,
    #[serde(default = "default_max_object_size")]
    pub max_object_size: ByteSize,
    #[serde(default = "default_content_types")]
    pub allowed_content_types: Vec<String>,
    #[serde(default)]
    pub log_format: LogFormat,
    /// The file holding the server's own secret, which keys the tags of multipart
    /// uploadIds. Relative paths are taken from the config file's directory; by default it
    /// is the config file's name with the extension `.secret`. Made (mode 0600) if missing.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub credentials: CredentialsConfig,
    #[serde(default)]
    pub sts: StsConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub cloudfront: CloudFrontConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// `[cloudfront]`: signed links with a key of the distribution's trusted key group. Without
/// `key_pair_id` and `private_key_file` the server hands out plain CDN URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// The CloudFront public key's ID (such as K2JCJMDEHXQW5F), sent in every link.
    #[serde(default)]
    pub key_pair_id: Option<String>,
    /// The matching private key, PEM (RSA-2048 or ECDSA P-256), readable by this server's
    /// user only. Relative paths are taken from the config file's directory.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// Every streaming URL handed out is signed, whatever the client asks.
    #[serde(default)]
    pub require_signed_links: bool,
    /// A link's lifetime when the client names none.
    #[serde(default = "default_link_lifetime")]
    pub default_link_lifetime_secs: u64,
    /// The longest lifetime a client may ask for.
    #[serde(default = "max_link_lifetime")]
    pub max_link_lifetime_secs: u64,
}

impl Default for CloudFrontConfig {
    fn default() -> Self {
        Self {
            key_pair_id: None,
            private_key_file: None,
            require_signed_links: false,
            default_link_lifetime_secs: default_link_lifetime(),
            max_link_lifetime_secs: max_link_lifetime(),
        }
    }
}

/// The shortest link lifetime anyone may ask for: shorter links expire before a viewer's
/// player has fetched its first ranges.
pub const MIN_LINK_LIFETIME_SECS: u64 = 60;
/// The longest `max_link_lifetime_secs` a config may set: a year.
pub const LINK_LIFETIME_CEILING_SECS: u64 = 366 * 24 * 3600;

impl CloudFrontConfig {
    /// The signing settings with the key loaded, or none when links are not signed. The
    /// key file must be readable by its owner only; a bad key is refused with the fix.
    pub fn signed_links(
        &self,
    ) -> Result<Option<crate::cloudfront::SignedLinks>, crate::cloudfront::KeyError> {
        let (Some(id), Some(path)) = (&self.key_pair_id, &self.private_key_file) else {
            return Ok(None);
        };
        let signer = crate::cloudfront::LinkSigner::load(id, path)?;
        Ok(Some(crate::cloudfront::SignedLinks {
            signer,
            required: self.require_signed_links,
            default_lifetime: Duration::from_secs(self.default_link_lifetime_secs),
            max_lifetime: Duration::from_secs(self.max_link_lifetime_secs),
        }))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    #[serde(default = "default_session_duration")]
    pub session_duration_secs: u64,
}

/// Companion's `GET /s3/sts`: temporary credentials for clients that sign their own
/// requests. Off unless turned on here, because those credentials bypass the server's
/// checks (content types, sizes, fresh keys) for as long as they last.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsConfig {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default = "default_rpm")]
    pub requests_per_minute: u32,
    #[serde(default = "default_burst")]
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: default_rpm(),
            burst: default_burst(),
        }
    }
}

/// What one client may hold of the server: `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_anonymous_rpm")]
    pub anonymous_requests_per_minute: u32,
    #[serde(default = "default_anonymous_burst")]
    pub anonymous_burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client; none by default.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: default_header_read_timeout(),
            request_timeout_secs: default_request_timeout(),
            max_connections: default_max_connections(),
            anonymous_requests_per_minute: default_anonymous_rpm(),
            anonymous_burst: default_anonymous_burst(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// The limits as the HTTP edge takes them; call on a checked config.
    pub fn http_limits(&self) -> crate::edge::HttpLimits {
        crate::edge::HttpLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_connections: self.max_connections as usize,
            anonymous_rate: Some((self.anonymous_requests_per_minute, self.anonymous_burst)),
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .filter_map(|p| p.trim().parse().ok())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    #[serde(default)]
    pub prefix: Option<String>,
    /// One hash per device: `token add` and `token invite` each append one.
    pub token_sha256: TokenHashes,
}

/// `token_sha256 = "hex"` (one token, as configs before invites wrote it) or
/// `token_sha256 = ["hex", "hex"]` (one per device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHashes(pub Vec<String>);

impl TokenHashes {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<String>> for TokenHashes {
    fn from(hashes: Vec<String>) -> Self {
        Self(hashes)
    }
}

impl From<String> for TokenHashes {
    fn from(hash: String) -> Self {
        Self(vec![hash])
    }
}

impl<'de> Deserialize<'de> for TokenHashes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        match Raw::deserialize(d) {
            Ok(Raw::One(h)) => Ok(Self(vec![h])),
            Ok(Raw::Many(hs)) => Ok(Self(hs)),
            Err(_) => Err(serde::de::Error::custom(
                "token_sha256 must be a string of 64 hex characters or an array of them",
            )),
        }
    }
}

impl UserConfig {
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7300))
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_url_lifetime() -> u64 {
    900
}
fn default_max_object_size() -> ByteSize {
    ByteSize(crate::api::MAX_OBJECT_SIZE)
}
fn default_content_types() -> Vec<String> {
    vec!["video/*".into()]
}
fn default_link_lifetime() -> u64 {
    24 * 3600
}
fn max_link_lifetime() -> u64 {
    30 * 24 * 3600
}
fn default_session_duration() -> u64 {
    3600
}
fn default_rpm() -> u32 {
    1200
}
fn default_burst() -> u32 {
    200
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    120
}
fn default_max_connections() -> u32 {
    512
}
fn default_anonymous_rpm() -> u32 {
    120
}
fn default_anonymous_burst() -> u32 {
    30
}

/// A size in bytes, written as a number or as "50 GiB", "500MB", "5 TiB".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (number, unit) = (s[..split].trim(), s[split..].trim());
        let value: f64 = number.parse().map_err(|_| {
            format!("{s:?} is not a size; write e.g. \"50 GiB\" or a number of bytes")
        })?;
        let scale: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "{other:?} is not a size unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ));
            }
        };
        Ok(Self((value * scale as f64) as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Str(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Something wrong with the configuration, in words that say how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `file:line`, an environment variable, or a setting name.
    pub at: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ServerConfig {
    /// Reads `path`, applies `REELUP_SERVER_*` overrides from `env`, and checks the result.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                at: shown.clone(),
                message: if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file; create it from docs/reelup-server.example.toml or pass --config"
                        .into()
                } else {
                    format!("cannot read it ({e}); check its permissions")
                },
            }],
        })?;
        let mut config = Self::parse(&text, &shown, env)?;
        config.secret_file = Some(config.secret_path(path));
        let dir = path.parent().unwrap_or(Path::new(""));
        config.cloudfront.private_key_file = config
            .cloudfront
            .private_key_file
            .take()
            .map(|key| dir.join(key));
        Ok(config)
    }

    /// Where the server secret of a config read from `config_path` lives: `secret_file`,
    /// relative to the config file's directory, or the config file's name with `.secret`.
    pub fn secret_path(&self, config_path: &Path) -> PathBuf {
        let dir = config_path.parent().unwrap_or(Path::new(""));
        match &self.secret_file {
            Some(p) => dir.join(p),
            None => {
                let beside = config_path.with_extension("secret");
                if beside == config_path {
                    PathBuf::from(format!("{}.secret", config_path.display()))
                } else {
                    beside
                }
            }
        }
    }

    pub fn parse(
        text: &str,
        file: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![toml_problem(file, text, &e)],
        })?;
        let mut problems = Vec::new();
        let mut overridden = Vec::new();
        for (name, value) in env {
            let Some(setting) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((_, path, kind)) = ENV_OVERRIDES.iter().find(|(n, _, _)| *n == setting) else {
                // CONFIG names the file; TOKEN is the local stack's.
                if setting != "CONFIG" && setting != "TOKEN" {
                    problems.push(Problem {
                        at: name.clone(),
                        message: "is not a setting reelup-server knows; check the spelling".into(),
                    });
                }
                continue;
            };
            match env_value(&value, *kind) {
                Ok(v) => {
                    set_path(&mut table, path, v);
                    overridden.push(name.clone());
                }
                Err(m) => problems.push(Problem {
                    at: name.clone(),
                    message: m,
                }),
            }
        }
        let config: Self = match toml::Value::Table(table).try_into() {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem {
                    at: wrong_type_at(file, text, &e, &overridden),
                    message: e.message().to_owned(),
                });
                return Err(ConfigError { problems });
            }
        };
        problems.extend(config.check(file, text));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    pub fn url_lifetime(&self) -> Duration {
        Duration::from_secs(self.url_lifetime_secs)
    }

    /// Checks that need the whole config; each problem names the setting and the fix.
    fn check(&self, file: &str, text: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                at: format!("{file}:{}", line_of(text, key)),
                message: format!("{key}: {message}"),
            })
        };
        if !valid_bucket(&self.bucket) {
            bad(
                "bucket",
                format!(
                    "{:?} is not a valid S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)",
                    self.bucket
                ),
            );
        }
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            bad(
                "region",
                format!("{:?} is not an AWS region such as eu-west-1", self.region),
            );
        }
        if let Some(Err(m)) = self.endpoint.as_deref().map(|e| check_url(e, false)) {
            bad("endpoint", m);
        }
        if let Err(m) = check_url(&self.cdn_base_url, true) {
            bad("cdn_base_url", m);
        }
        if let Some(Err(m)) = self.public_url.as_deref().map(|u| check_url(u, false)) {
            bad("public_url", m);
        }
        if !(1..=7 * 24 * 3600).contains(&self.url_lifetime_secs) {
            bad(
                "url_lifetime_secs",
                "must be between 1 second and 7 days (604800), S3's limit for presigned URLs"
                    .into(),
            );
        }
        if self.max_object_size.0 == 0 || self.max_object_size.0 > crate::api::MAX_OBJECT_SIZE {
            bad(
                "max_object_size",
                "must be more than 0 and at most 5 TiB, S3's limit".into(),
            );
        }
        if self.allowed_content_types.is_empty() {
            bad(
                "allowed_content_types",
                "is empty, so nothing could be uploaded; use [\"video/*\"]".into(),
            );
        }
        for t in &self.allowed_content_types {
            // The same parser that checks what clients send, so an entry that could never
            // match (or would match too much) is caught here.
            if let Err(e) = crate::content_type::Pattern::parse(t) {
                bad(
                    "allowed_content_types",
                    format!(
                        "{t:?} is not an exact type such as video/mp4 or a family such as video/*: {}",
                        e.reason
                    ),
                );
            }
        }
        if let Some(arn) = &self.credentials.role_arn {
            if !arn.starts_with("arn:aws") || !arn.contains(":role/") {
                bad(
                    "role_arn",
                    format!(
                        "{arn:?} is not a role ARN such as arn:aws:iam::123456789012:role/reelup-signer"
                    ),
                );
            }
            if !(900..=43_200).contains(&self.credentials.session_duration_secs) {
                bad(
                    "session_duration_secs",
                    "must be between 900 and 43200 seconds, STS's limits".into(),
                );
            } else if self.credentials.session_duration_secs < self.url_lifetime_secs + 300 {
                bad(
                    "session_duration_secs",
                    "must exceed url_lifetime_secs by at least 5 minutes: a URL stops working when the credentials that signed it expire".into(),
                );
            }
        }
        if self.sts.enabled && self.credentials.role_arn.is_none() {
            bad(
                "enabled",
                "[sts] enabled needs credentials.role_arn: /s3/sts hands out credentials of that role".into(),
            );
        }
        if let Some(Err(m)) = self
            .credentials
            .sts_endpoint
            .as_deref()
            .map(|e| check_url(e, false))
        {
            bad("sts_endpoint", m);
        }
        if self.rate_limit.requests_per_minute == 0 || self.rate_limit.burst == 0 {
            bad(
                "rate_limit",
                "requests_per_minute and burst must be at least 1".into(),
            );
        }
        let limits = &self.limits;
        if !(1..=300).contains(&limits.header_read_timeout_secs) {
            bad(
                "header_read_timeout_secs",
                "must be between 1 and 300 seconds: how long a client may take to send a request's headers"
                    .into(),
            );
        }
        if !(1..=3600).contains(&limits.request_timeout_secs) {
            bad(
                "request_timeout_secs",
                "must be between 1 and 3600 seconds: how long a request may take to be answered"
                    .into(),
            );
        }
        if !(1..=100_000).contains(&limits.max_connections) {
            bad(
                "max_connections",
                "must be between 1 and 100000 (and below the service's open-file limit)".into(),
            );
        }
        if limits.anonymous_requests_per_minute == 0 || limits.anonymous_burst == 0 {
            bad(
                "limits",
                "anonymous_requests_per_minute and anonymous_burst must be at least 1".into(),
            );
        }
        for proxy in &limits.trusted_proxies {
            if proxy.trim().parse::<std::net::IpAddr>().is_err() {
                bad(
                    "trusted_proxies",
                    format!(
                        "{proxy:?} is not an IP address; list the addresses of your reverse proxies, e.g. [\"127.0.0.1\", \"::1\"]"
                    ),
                );
            }
        }
        let cf = &self.cloudfront;
        match (&cf.key_pair_id, &cf.private_key_file) {
            (Some(id), _) if crate::cloudfront::sign::check_key_pair_id(id).is_err() => bad(
                "key_pair_id",
                format!(
                    "{id:?} is not a CloudFront public key ID (letters and digits, such as K2JCJMDEHXQW5F); copy it from the CloudFront console's Public keys page"
                ),
            ),
            (Some(_), None) | (None, Some(_)) => bad(
                "cloudfront",
                "set both key_pair_id and private_key_file (the public key's ID in CloudFront and its private key), or neither".into(),
            ),
            _ => {}
        }
        if cf.require_signed_links && cf.key_pair_id.is_none() {
            bad(
                "require_signed_links",
                "needs key_pair_id and private_key_file: links cannot be signed without the key"
                    .into(),
            );
        }
        if !(MIN_LINK_LIFETIME_SECS..=LINK_LIFETIME_CEILING_SECS)
            .contains(&cf.max_link_lifetime_secs)
        {
            bad(
                "max_link_lifetime_secs",
                format!(
                    "must be between {MIN_LINK_LIFETIME_SECS} seconds and 366 days ({LINK_LIFETIME_CEILING_SECS})"
                ),
            );
        }
        if !(MIN_LINK_LIFETIME_SECS..=cf.max_link_lifetime_secs)
            .contains(&cf.default_link_lifetime_secs)
        {
            bad(
                "default_link_lifetime_secs",
                format!(
                    "must be between {MIN_LINK_LIFETIME_SECS} seconds and max_link_lifetime_secs ({})",
                    cf.max_link_lifetime_secs
                ),
            );
        }
        let mut names = std::collections::HashSet::new();
        let mut prefixes = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for user in &self.users {
            if !valid_name(&user.name) {
                bad(
                    "users",
                    format!(
                        "user name {:?} must be 1-64 letters, digits, '-' or '_'",
                        user.name
                    ),
                );
            }
            if !valid_name(user.prefix()) {
                bad(
                    "users",
                    format!(
                        "prefix {:?} of {} must be 1-64 letters, digits, '-' or '_'",
                        user.prefix(),
                        user.name
                    ),
                );
            }
            if !names.insert(user.name.as_str()) {
                bad("users", format!("{} is listed twice", user.name));
            }
            if !prefixes.insert(user.prefix()) {
                bad(
                    "users",
                    format!(
                        "prefix {:?} is used twice: each user needs their own",
                        user.prefix()
                    ),
                );
            }
            if user.token_sha256.is_empty() {
                bad(
                    "token_sha256",
                    format!(
                        "{} has no token; give them one with `reelup-server token invite {}`",
                        user.name, user.name
                    ),
                );
            }
            for hash in user.token_sha256.iter() {
                let hash_ok = hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit());
                if !hash_ok {
                    bad(
                        "token_sha256",
                        format!(
                            "{}'s token_sha256 is not 64 hex characters; create tokens with `reelup-server token add {}`",
                            user.name, user.name
                        ),
                    );
                } else if !hashes.insert(hash.to_ascii_lowercase()) {
                    bad(
                        "token_sha256",
                        format!("{} shares a token with another user", user.name),
                    );
                }
            }
        }
        problems
    }
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_bucket(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Endpoints must be https so tokens and signatures never cross a network in the clear;
/// loopback is allowed for local stores and tests.
///
/// No user info (`https://a@b` connects to b, which a reader takes for a) and no
/// backslashes (read as `/` by some parsers and not others): what the file says is where
/// the server connects, and what invite links show.
pub(crate) fn check_url(s: &str, must_be_https: bool) -> Result<(), String> {
    if s.contains('\\') {
        return Err(format!(
            "{s:?} has a backslash; write the URL with '/' only"
        ));
    }
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{s:?} has a user name or password before its host (it connects to {}); remove the \
             part up to and including '@'",
            url.host_str().unwrap_or("")
        ));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" if !must_be_https => Err(format!(
            "{s} is plain http; use https (only loopback addresses may use http)"
        )),
        _ => Err(format!("{s} must be an https URL")),
    }
}

/// Line of the first `key =` (or `[key]`) in the file, for pointing at a problem; 1 if the
/// key is not in the file (a default or an environment override).
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("{key} "))
                || l.starts_with(&format!("{key}="))
                || l.starts_with(&format!("[{key}]"))
                || l.starts_with(&format!("[[{key}]]"))
        })
        .map_or(1, |i| i + 1)
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a value of the wrong type or shape is. The merged table has no spans, so the file
/// is read alone again: if it fails the same way, its span gives the line; if it does not,
/// an environment override is to blame.
fn wrong_type_at(file: &str, text: &str, e: &toml::de::Error, overridden: &[String]) -> String {
    match toml::from_str::<ServerConfig>(text) {
        Err(alone) if alone.message() == e.message() || overridden.is_empty() => {
            format!(
                "{file}:{}",
                alone.span().map_or(1, |s| line_at(text, s.start))
            )
        }
        _ if !overridden.is_empty() => overridden.join(", "),
        _ => format!("{file}:1"),
    }
}

fn toml_problem(file: &str, text: &str, e: &toml::de::Error) -> Problem {
    let line = e.span().map_or(1, |span| line_at(text, span.start));
    Problem {
        at: format!("{file}:{line}"),
        message: format!("{}; fix the TOML syntax there", e.message()),
    }
}

fn env_value(value: &str, kind: EnvKind) -> Result<toml::Value, String> {
    match kind {
        EnvKind::Str => Ok(toml::Value::String(value.to_owned())),
        EnvKind::Bool => match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(toml::Value::Boolean(true)),
            "0" | "false" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("{value:?} is not true or false")),
        },
        EnvKind::Int => value
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("{value:?} is not a whole number")),
        EnvKind::List => Ok(toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_owned()))
                .collect(),
        )),
    }
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

/// Where `reelup-server` looks for its config when `--config` is not given.
pub fn default_path() -> PathBuf {
    std::env::var_os("REELUP_SERVER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("reelup-server.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "bucket = \"videos\"\ncdn_base_url = \"https://d1.cloudfront.net\"\n";

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        ServerConfig::parse(
            text,
            "server.toml",
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../../docs/reelup-server.example.toml");
        let config = parse(text, &[]).expect("example parses");
        assert_eq!(config.max_object_size, ByteSize(50 << 30));
        assert_eq!(config.allowed_content_types, vec!["video/*"]);
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = parse(MINIMAL, &[]).expect("valid");
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.url_lifetime_secs, 900);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.users.is_empty());
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = parse(
            MINIMAL,
            &[
                ("REELUP_SERVER_BUCKET", "other-bucket"),
                ("REELUP_SERVER_PATH_STYLE", "true"),
                ("REELUP_SERVER_ROLE_ARN", "arn:aws:iam::1:role/r"),
                ("HOME", "/root"),
            ],
        )
        .expect("valid");
        assert_eq!(c.bucket, "other-bucket");
        assert!(c.path_style);
        assert_eq!(
            c.credentials.role_arn.as_deref(),
            Some("arn:aws:iam::1:role/r")
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("bucket = \"videos\"\ncdn_base_url = https://x\n", &[]).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].at, "server.toml:2");
    }

    #[test]
    fn every_problem_is_listed_with_its_line_and_fix() {
        let text = "bucket = \"Bad_Bucket\"\ncdn_base_url = \"http://cdn.example.com\"\nurl_lifetime_secs = 0\nmax_object_size = \"10 parsecs\"\n";
        let err = parse(text, &[("REELUP_SERVER_BUKET", "x")]).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("REELUP_SERVER_BUKET: is not a setting"),
            "{shown}"
        );
        assert!(shown.contains("is not a size unit"), "{shown}");

        let text = "bucket = \"Bad_Bucket\"\ncdn_base_url = \"http://cdn.example.com\"\nurl_lifetime_secs = 0\n";
        let err = parse(text, &[]).unwrap_err();
        let at: Vec<_> = err.problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(
            at,
            vec!["server.toml:1", "server.toml:2", "server.toml:3"],
            "{err}"
        );
        assert!(err.problems[1].message.contains("must be an https URL"));
    }

    #[test]
    fn urls_with_user_info_or_backslashes_are_refused() {
        for (key, bad, says) in [
            (
                "cdn_base_url",
                "https://cdn.studio.example@evil.example",
                "connects to evil.example",
            ),
            ("public_url", "https://u:p@uploads.example.com", "user name"),
            ("endpoint", "http://evil\\@localhost/", "backslash"),
            (
                "sts_endpoint",
                "https://sts.example.com\\@evil",
                "backslash",
            ),
        ] {
            let text = if key == "cdn_base_url" {
                format!("bucket = \"videos\"\ncdn_base_url = {bad:?}\n")
            } else if key == "sts_endpoint" {
                format!("{MINIMAL}[credentials]\nsts_endpoint = {bad:?}\n")
            } else {
                format!("{key} = {bad:?}\n{MINIMAL}")
            };
            let err = parse(&text, &[]).expect_err(bad);
            let shown = err.to_string();
            assert!(shown.contains(says), "{key} = {bad}: {shown}");
        }
    }

    #[test]
    fn users_need_distinct_names_prefixes_and_real_hashes() {
        let h = "a".repeat(64);
        let text = format!(
            "{MINIMAL}[[users]]\nname = \"alice\"\ntoken_sha256 = \"{h}\"\n[[users]]\nname = \"bob\"\nprefix = \"alice\"\ntoken_sha256 = \"not-a-hash\"\n"
        );
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("prefix \"alice\" is used twice"), "{err}");
        assert!(err.contains("bob's token_sha256 is not 64 hex"), "{err}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("50 GiB"), Ok(ByteSize(50 << 30)));
        assert_eq!(ByteSize::parse("500MB"), Ok(ByteSize(500_000_000)));
        assert_eq!(ByteSize::parse("1.5 KiB"), Ok(ByteSize(1536)));
        assert!(ByteSize::parse("lots").is_err());
    }

    #[test]
    fn allowed_content_types_are_checked_with_the_request_parser() {
        let text = format!(
            "{MINIMAL}allowed_content_types = [\"video/*\", \"Video/MP4\", \"video/mp4;codecs=avc1\", \"*/*\", \"video/\", \"text/html,video/mp4\"]\n"
        );
        let err = parse(&text, &[]).unwrap_err();
        let shown: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        for (problem, entry) in shown.iter().zip([
            "video/mp4;codecs=avc1",
            "*/*",
            "video/",
            "text/html,video/mp4",
        ]) {
            assert!(
                problem.starts_with("server.toml:3: allowed_content_types: ")
                    && problem.contains(&format!("{entry:?}")),
                "{problem}"
            );
        }
        assert!(shown[0].contains("parameters"), "{}", shown[0]);
    }

    #[test]
    fn sts_is_off_unless_turned_on_and_needs_a_role() {
        let role = "[credentials]\nrole_arn = \"arn:aws:iam::1:role/r\"\n";
        let c = parse(&format!("{MINIMAL}{role}"), &[]).expect("valid");
        assert!(!c.sts.enabled, "a role alone keeps /s3/sts off");
        let c = parse(&format!("{MINIMAL}{role}[sts]\nenabled = true\n"), &[]).expect("valid");
        assert!(c.sts.enabled);
        let c = parse(
            &format!("{MINIMAL}{role}"),
            &[("REELUP_SERVER_STS_ENABLED", "true")],
        )
        .expect("valid");
        assert!(c.sts.enabled);
        let err = parse(&format!("{MINIMAL}[sts]\nenabled = true\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.toml:4: enabled:") && err.contains("credentials.role_arn"),
            "{err}"
        );
    }

    #[test]
    fn limits_have_defaults_env_overrides_and_lined_problems() {
        let c = parse(MINIMAL, &[]).expect("valid");
        let l = c.limits.http_limits();
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        assert_eq!(l.max_connections, 512);
        assert_eq!(l.anonymous_rate, Some((120, 30)));
        assert!(
            l.trusted_proxies.is_empty(),
            "X-Forwarded-For is not trusted by default"
        );

        let c = parse(
            MINIMAL,
            &[
                ("REELUP_SERVER_HEADER_READ_TIMEOUT_SECS", "3"),
                ("REELUP_SERVER_MAX_CONNECTIONS", "64"),
                ("REELUP_SERVER_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ],
        )
        .expect("valid");
        let l = c.limits.http_limits();
        assert_eq!(l.header_read_timeout, Duration::from_secs(3));
        assert_eq!(l.max_connections, 64);
        assert_eq!(l.trusted_proxies.len(), 2);

        let text = format!(
            "{MINIMAL}[limits]\nheader_read_timeout_secs = 0\nmax_connections = 0\ntrusted_proxies = [\"proxy.internal\"]\n"
        );
        let err = parse(&text, &[]).unwrap_err();
        let shown: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
        assert!(
            shown.contains(&"server.toml:4: header_read_timeout_secs: must be between 1 and 300 seconds: how long a client may take to send a request's headers".to_owned()),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.starts_with("server.toml:5: max_connections:")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.starts_with("server.toml:6: trusted_proxies:")
                    && p.contains("not an IP address")),
            "{shown:?}"
        );
    }

    #[test]
    fn the_secret_lives_beside_the_config_unless_moved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reelup-server.toml");
        std::fs::write(&path, MINIMAL).expect("write");
        let c = ServerConfig::load(&path, std::iter::empty()).expect("valid");
        assert_eq!(c.secret_file, Some(dir.path().join("reelup-server.secret")));
        let c = ServerConfig::load(
            &path,
            [(
                "REELUP_SERVER_SECRET_FILE".to_owned(),
                "/run/credentials/x/secret".to_owned(),
            )],
        )
        .expect("valid");
        assert_eq!(
            c.secret_file,
            Some(PathBuf::from("/run/credentials/x/secret"))
        );
        std::fs::write(&path, format!("secret_file = \"s/k\"\n{MINIMAL}")).expect("write");
        let c = ServerConfig::load(&path, std::iter::empty()).expect("valid");
        assert_eq!(c.secret_file, Some(dir.path().join("s/k")));
    }

    #[test]
    fn role_sessions_must_outlive_urls() {
        let text = format!(
            "{MINIMAL}url_lifetime_secs = 3600\n[credentials]\nrole_arn = \"arn:aws:iam::1:role/r\"\nsession_duration_secs = 3600\n"
        );
        let err = parse(&text, &[]).unwrap_err().to_string();
        assert!(err.contains("must exceed url_lifetime_secs"), "{err}");
    }
}
