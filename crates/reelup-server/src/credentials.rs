//! The keys the server signs with, and keeping them fresh.
//!
//! Requests read the current keys through one cheap `Arc` clone; a background task swaps in
//! new ones from the AWS credential chain or STS AssumeRole well before the old ones expire,
//! because a presigned URL stops working when the credentials that signed it do.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use reelup_protocol::Secret;

use crate::config::ServerConfig;

/// Credentials as signing needs them, in both forms used: rusty-s3's for query signing and
/// ours for POST policies.
pub struct CurrentKeys {
    pub access_key: String,
    pub secret_key: Secret,
    pub session_token: Option<Secret>,
    pub expires: Option<SystemTime>,
    pub s3: rusty_s3::Credentials,
}

impl std::fmt::Debug for CurrentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentKeys")
            .field("access_key", &self.access_key)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl CurrentKeys {
    pub fn new(
        access_key: String,
        secret_key: Secret,
        session_token: Option<Secret>,
        expires: Option<SystemTime>,
    ) -> Self {
        let s3 = match &session_token {
            Some(t) => rusty_s3::Credentials::new_with_token(
                access_key.clone(),
                secret_key.expose().to_owned(),
                t.expose().to_owned(),
            ),
            None => rusty_s3::Credentials::new(access_key.clone(), secret_key.expose().to_owned()),
        };
        Self {
            access_key,
            secret_key,
            session_token,
            expires,
            s3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SigningKeys(Arc<RwLock<Arc<CurrentKeys>>>);

impl SigningKeys {
    pub fn fixed(access_key: &str, secret_key: &str) -> Self {
        Self::from(CurrentKeys::new(
            access_key.to_owned(),
            Secret::new(secret_key),
            None,
            None,
        ))
    }

    pub fn current(&self) -> Arc<CurrentKeys> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, keys: CurrentKeys) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }
}

impl From<CurrentKeys> for SigningKeys {
    fn from(keys: CurrentKeys) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(keys))))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "no AWS credentials found ({0}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         AWS_PROFILE (or credentials.profile), or run on an instance or task with a role"
    )]
    Missing(String),
    #[error(
        "STS AssumeRole for {role} failed ({reason}); check that the signing identity may \
         sts:AssumeRole on it and that the role's trust policy names that identity"
    )]
    AssumeRole { role: String, reason: String },
}

/// When to fetch new credentials: early enough that every URL signed with the current ones
/// can live out its lifetime, with five minutes to spare. Credentials without an expiry
/// (static keys) are re-read every 5 minutes so a rotated key is picked up.
pub fn refresh_delay(
    expires: Option<SystemTime>,
    now: SystemTime,
    url_lifetime: Duration,
) -> Duration {
    const MARGIN: Duration = Duration::from_secs(300);
    const MIN: Duration = Duration::from_secs(10);
    match expires {
        None => MARGIN,
        Some(at) => at
            .duration_since(now)
            .unwrap_or_default()
            .saturating_sub(url_lifetime + MARGIN)
            .max(MIN),
    }
}

/// The session policy for the signing role: nothing outside this bucket's objects, and
/// only what presigned uploads need.
pub fn bucket_session_policy(bucket: &str, prefix: Option<&str>) -> String {
    let resource = match prefix {
        Some(p) => format!("arn:aws:s3:::{bucket}/{p}/*"),
        None => format!("arn:aws:s3:::{bucket}/*"),
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": resource,
        }]
    })
    .to_string()
}

/// What the server needs from AWS: a refreshing signing key, and an STS client for
/// `/s3/sts` when a role is configured and `[sts] enabled` is set.
pub struct AwsSigning {
    pub keys: SigningKeys,
    pub sts: Option<StsIssuer>,
    provider: SharedCredentialsProvider,
}

pub struct StsIssuer {
    client: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    pub bucket: String,
    pub region: String,
}

pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: String,
}

impl StsIssuer {
    /// Temporary credentials limited to one user's prefix, for Companion's `/s3/sts`.
    pub async fn issue(
        &self,
        user: &str,
        prefix: &str,
    ) -> Result<IssuedCredentials, CredentialsError> {
        let failed = |reason: String| CredentialsError::AssumeRole {
            role: self.role_arn.clone(),
            reason,
        };
        let out = self
            .client
            .assume_role()
            .role_arn(&self.role_arn)
            .set_external_id(self.external_id.clone())
            .role_session_name(format!("reelup-{user}"))
            .policy(bucket_session_policy(&self.bucket, Some(prefix)))
            .duration_seconds(900)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_sts::error::DisplayErrorContext(e).to_string()))?;
        let c = out
            .credentials
            .ok_or_else(|| failed("STS returned no credentials".into()))?;
        Ok(IssuedCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: Secret::new(c.secret_access_key),
            session_token: Secret::new(c.session_token),
            expiration: c
                .expiration
                .fmt(aws_smithy_types_date_format())
                .unwrap_or_default(),
        })
    }
}

fn aws_smithy_types_date_format() -> aws_sdk_sts::primitives::DateTimeFormat {
    aws_sdk_sts::primitives::DateTimeFormat::DateTime
}

async fn fetch(provider: &SharedCredentialsProvider) -> Result<CurrentKeys, String> {
    let c = provider
        .provide_credentials()
        .await
        .map_err(|e| aws_sdk_sts::error::DisplayErrorContext(e).to_string())?;
    Ok(CurrentKeys::new(
        c.access_key_id().to_owned(),
        Secret::new(c.secret_access_key()),
        c.session_token().map(Secret::new),
        c.expiry(),
    ))
}

impl AwsSigning {
    /// Resolves credentials once (so a misconfiguration fails at start, not at the first
    /// upload) and sets up STS when a role is configured.
    pub async fn resolve(config: &ServerConfig) -> Result<Self, CredentialsError> {
        let creds = &config.credentials;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()));
        if let Some(profile) = &creds.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let base = sdk
            .credentials_provider()
            .ok_or_else(|| CredentialsError::Missing("no provider configured".into()))?;
        let sts_sdk = match &creds.sts_endpoint {
            Some(ep) => sdk.to_builder().endpoint_url(ep).build(),
            None => sdk.clone(),
        };
        let (provider, sts) = match &creds.role_arn {
            None => (base, None),
            Some(role) => {
                let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("reelup-server")
                    .policy(bucket_session_policy(&config.bucket, None))
                    .session_length(Duration::from_secs(creds.session_duration_secs));
                if let Some(id) = &creds.external_id {
                    builder = builder.external_id(id);
                }
                let provider = builder.configure(&sts_sdk).build().await;
                // Signing with the role does not turn on /s3/sts: that hands out credentials
                // the server's checks cannot follow, so only an explicit switch does.
                let issuer = config.sts.enabled.then(|| StsIssuer {
                    client: aws_sdk_sts::Client::new(&sts_sdk),
                    role_arn: role.clone(),
                    external_id: creds.external_id.clone(),
                    bucket: config.bucket.clone(),
                    region: config.region.clone(),
                });
                (SharedCredentialsProvider::new(provider), issuer)
            }
        };
        let keys = fetch(&provider)
            .await
            .map_err(|reason| match &creds.role_arn {
                Some(role) => CredentialsError::AssumeRole {
                    role: role.clone(),
                    reason,
                },
                None => CredentialsError::Missing(reason),
            })?;
        Ok(Self {
            keys: SigningKeys::from(keys),
            sts,
            provider,
        })
    }

    /// Keeps `keys` fresh until the runtime ends.
    pub fn spawn_refresh(&self, url_lifetime: Duration) -> tokio::task::JoinHandle<()> {
        let (keys, provider) = (self.keys.clone(), self.provider.clone());
        tokio::spawn(async move {
            loop {
                let delay = refresh_delay(keys.current().expires, SystemTime::now(), url_lifetime);
                tokio::time::sleep(delay).await;
                match fetch(&provider).await {
                    Ok(fresh) => {
                        tracing::info!(access_key = %fresh.access_key, expires = ?fresh.expires, "signing credentials refreshed");
                        keys.replace(fresh);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not refresh signing credentials; retrying in 30 s");
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_before_urls_could_outlive_credentials() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lifetime = Duration::from_secs(900);
        let in_an_hour = now + Duration::from_secs(3600);
        // 3600 - (900 + 300) = 2400 s from now.
        assert_eq!(
            refresh_delay(Some(in_an_hour), now, lifetime),
            Duration::from_secs(2400)
        );
        // Already too close: refresh almost at once.
        let soon = now + Duration::from_secs(600);
        assert_eq!(
            refresh_delay(Some(soon), now, lifetime),
            Duration::from_secs(10)
        );
        let past = now - Duration::from_secs(1);
        assert_eq!(
            refresh_delay(Some(past), now, lifetime),
            Duration::from_secs(10)
        );
        assert_eq!(refresh_delay(None, now, lifetime), Duration::from_secs(300));
    }

    #[test]
    fn session_policy_allows_only_uploads_in_the_bucket_or_prefix() {
        let p: serde_json::Value =
            serde_json::from_str(&bucket_session_policy("vids", Some("alice"))).expect("json");
        assert_eq!(p["Statement"][0]["Resource"], "arn:aws:s3:::vids/alice/*");
        let actions = p["Statement"][0]["Action"].as_array().expect("actions");
        assert!(!actions.iter().any(|a| a == "s3:GetObject" || a == "s3:*"));
        let all: serde_json::Value =
            serde_json::from_str(&bucket_session_policy("vids", None)).expect("json");
        assert_eq!(all["Statement"][0]["Resource"], "arn:aws:s3:::vids/*");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let keys = CurrentKeys::new(
            "AKIA1".into(),
            Secret::new("s3cr3t"),
            Some(Secret::new("t0k3n")),
            None,
        );
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0k3n"),
            "{shown}"
        );
    }
}
