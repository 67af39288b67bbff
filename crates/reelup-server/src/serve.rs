//! `reelup-server serve`: signing for a real bucket, from a config file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reelup_protocol::StreamingUrlBase;
use tokio::net::TcpListener;

use crate::api::{ApiState, UploadLimits, rate_limiter, router};
use crate::config::ServerConfig;
use crate::credentials::AwsSigning;
use crate::edge::{self, HttpLimits};
use crate::secret::ServerSecret;
use crate::store::ObjectStore;
use crate::users::Users;

/// A server bound and ready to run; `addr` is known before any request is served.
pub struct Prepared {
    pub listener: TcpListener,
    pub app: axum::Router,
    pub endpoint: String,
    pub limits: HttpLimits,
    refresh: tokio::task::JoinHandle<()>,
}

/// The S3 endpoint for `config`: its own, or AWS's regional one.
fn store_endpoint(config: &ServerConfig) -> String {
    config
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", config.region))
}

/// The server secret's file for `config`: as `ServerConfig::load` resolved it, or beside
/// the default config file when the config did not come from a file.
pub fn secret_path(config: &ServerConfig) -> PathBuf {
    config
        .secret_file
        .clone()
        .unwrap_or_else(|| config.secret_path(&crate::config::default_path()))
}

pub async fn prepare(config: &ServerConfig) -> anyhow::Result<Prepared> {
    let secret = ServerSecret::load_or_create(&secret_path(config))?;
    let signing = AwsSigning::resolve(config).await?;
    let store = ObjectStore::new(
        store_endpoint(config)
            .parse()
            .context("the S3 endpoint is not a URL")?,
        &config.bucket,
        &config.region,
        signing.keys.clone(),
        config.path_style,
        config.url_lifetime(),
    )?;
    if config.users.is_empty() {
        tracing::warn!(
            "no users are configured, so every request will be refused; add one with `reelup-server token add NAME`"
        );
    }
    let links = config.cloudfront.signed_links()?;
    if let Some(links) = &links {
        tracing::info!(
            key_pair_id = links.signer.key_pair_id(),
            algorithm = links.signer.algorithm(),
            required = links.required,
            "signing CloudFront links"
        );
    }
    let refresh = signing.spawn_refresh(config.url_lifetime());
    let users = Users::from_config(&config.users);
    let limits = config.limits.http_limits();
    let state = Arc::new(ApiState {
        store,
        users: users.clone(),
        cdn: StreamingUrlBase::new(&config.cdn_base_url),
        limits: UploadLimits {
            max_object_size: config.max_object_size.0,
            allowed_content_types: config.allowed_content_types.clone(),
        },
        rate_limit: rate_limiter(
            config.rate_limit.requests_per_minute,
            config.rate_limit.burst,
        ),
        sts: signing.sts,
        secret,
        links,
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is the address in use?", config.listen))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    // No CDN route here: viewers read through the real CDN, which has its own permission
    // to read the bucket; this server must never read it for someone without a token.
    let app = edge::harden(router(state), users, &limits);
    Ok(Prepared {
        listener,
        app,
        endpoint,
        limits,
        refresh,
    })
}

impl Prepared {
    /// Serves until `shutdown` resolves, then lets requests in flight finish (up to 30 s).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let announced = async {
            shutdown.await;
            tracing::info!("shutting down; finishing requests in flight");
        };
        edge::serve_app(
            self.listener,
            &self.limits,
            self.app,
            announced,
            Duration::from_secs(30),
        )
        .await;
        self.refresh.abort();
    }
}
