//! `reelup-server --local`: the whole stack on loopback with no AWS account. An embedded
//! S3-compatible store (s3s-fs, wrapped to check digests and checksums as S3 does:
//! [`checked_store`]) that checks SigV4 signatures and POST policies, the presign routes
//! signing for it, and the CDN route serving what it stores.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use reelup_protocol::{Secret, StreamingUrlBase};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod checked_store;
mod commit;
mod part_ledger;
mod verified_body;

use crate::api::{ApiState, MAX_OBJECT_SIZE, UploadLimits, rate_limiter, router_with};
use crate::credentials::SigningKeys;
use crate::edge::{self, HttpLimits, LoopbackHost};
use crate::secret::ServerSecret;
use crate::store::{Clock, ObjectStore};
use crate::users::Users;

pub const BUCKET: &str = "reelup";
pub const REGION: &str = "us-east-1";
/// The local stack's one user: every key it hands out starts with `dev/`.
pub const DEV_USER: &str = "dev";
const TOKEN_FILE: &str = "dev-token";
/// SHA-256 (hex, one a line) of the tokens the ready line's invite links redeem for, so a
/// device connected by an invite keeps working after the stack restarts.
const INVITED_FILE: &str = "invited-tokens";
/// Keys the uploadId tags; kept so that uploads in progress survive a restart.
pub const SECRET_FILE: &str = "server-secret";
/// Beside the store's root (`s3`): what the store remembers of unfinished multipart
/// uploads (each part's ETag and CRC), which s3s-fs does not.
pub const PART_LEDGER_DIR: &str = "s3-parts";
/// The local stack's CloudFront-style signing key (P-256, PKCS#8 PEM, mode 0600), kept so
/// that links handed out survive a restart.
pub const LINK_KEY_FILE: &str = "cloudfront-key.pem";
/// The key-pair ID the local stack's links carry and its CDN route trusts.
pub const LOCAL_KEY_PAIR_ID: &str = "KREELUPLOCAL";
/// The embedded store's access key and secret key (one a line, mode 0600), kept so that
/// multipart uploads in progress survive a restart: s3s-fs binds an upload to the access key
/// that created it, and refused (AccessDenied) every part and Complete of an upload made
/// before a restart while new keys were drawn at each start.
pub const STORE_KEYS_FILE: &str = "store-keys";

#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Where the presign routes and the CDN route listen.
    pub listen: SocketAddr,
    /// Where the embedded S3 store listens; port 0 picks a free one.
    pub s3_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The bearer token clients must send; by default one kept in the data dir.
    pub token: Option<Secret>,
    pub url_lifetime: Duration,
    /// Keys of the embedded store. By default random ones made at the first start and kept
    /// in the data dir ([`STORE_KEYS_FILE`]), known only to this process and its owner; set
    /// them to put another signer (e.g. Uppy Companion) on the same store.
    pub store_keys: Option<(String, Secret)>,
    /// The store's address as clients and signatures see it, when something sits in front
    /// of it (a fault-injecting proxy in tests); it must forward the Host header unchanged.
    pub store_public_endpoint: Option<String>,
    /// Who may sign; by default one `dev` user holding the token.
    pub users: Option<Users>,
    /// The clock signatures are made with; tests set it back to make expired ones.
    pub clock: Option<Arc<dyn Clock>>,
    pub limits: UploadLimits,
    /// Requests per minute and burst, per token; none by default, as the local stack is
    /// one person's and a limit would only skew benchmarks.
    pub rate_limit: Option<(u32, u32)>,
    /// The secret keying uploadId tags; by default one kept in the data dir.
    pub secret: Option<ServerSecret>,
    /// Timeouts and the connection cap of every listener, and the limit per address for
    /// requests without a valid token (none by default: a video player's many Range
    /// requests to the CDN route carry no token).
    pub http: HttpLimits,
    /// The key links are signed with; by default a P-256 key kept in the data dir. Its
    /// public half is the only key the CDN route trusts.
    pub link_signer: Option<crate::cloudfront::LinkSigner>,
    /// Every streaming URL is signed and the CDN route refuses unsigned requests, as a
    /// CloudFront cache behaviour with a trusted key group does. Off by default: links are
    /// signed when a client asks, and the CDN route checks any signed request it gets.
    pub require_signed_links: bool,
    pub default_link_lifetime: Duration,
    pub max_link_lifetime: Duration,
    /// The clock the CDN route judges expiry by; tests move it instead of sleeping.
    pub cdn_clock: Option<Arc<dyn Clock>>,
}

impl LocalOptions {
    /// Defaults for a local stack keeping its data in `data_dir`: free ports, the dev user,
    /// a 15-minute URL lifetime, videos of any size S3 allows.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            s3_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            token: None,
            url_lifetime: Duration::from_secs(900),
            store_keys: None,
            store_public_endpoint: None,
            users: None,
            clock: None,
            limits: UploadLimits {
                max_object_size: MAX_OBJECT_SIZE,
                allowed_content_types: vec!["video/*".into(), "application/mxf".into()],
            },
            rate_limit: None,
            secret: None,
            http: HttpLimits {
                anonymous_rate: None,
                ..HttpLimits::default()
            },
            link_signer: None,
            require_signed_links: false,
            default_link_lifetime: Duration::from_secs(24 * 3600),
            max_link_lifetime: Duration::from_secs(30 * 24 * 3600),
            cdn_clock: None,
        }
    }
}

/// A running local stack. Dropping it leaves the servers running until the runtime ends;
/// call [`LocalStack::shutdown`] to stop them gracefully.
#[derive(Debug)]
pub struct LocalStack {
    pub endpoint: String,
    pub cdn: String,
    pub s3_endpoint: String,
    pub token: Secret,
    /// A one-time invite link for the dev user, new at every start; none when the caller
    /// chose the users.
    pub invite: Option<String>,
    /// The public key (SubjectPublicKeyInfo PEM) the CDN route checks links with, and its ID.
    pub link_public_key: String,
    pub key_pair_id: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// The development token survives restarts so a running app keeps working; it lives in
/// the server's data dir, readable by its owner only.
fn dev_token(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(Secret::new(t.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = format!("dev_{}", random_hex(24));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())?;
    Ok(Secret::new(token))
}

/// The local signing key: the one in the data dir, or a new one written there (0600).
fn link_key(data_dir: &Path) -> anyhow::Result<crate::cloudfront::LinkSigner> {
    use crate::cloudfront::LinkSigner;
    let path = data_dir.join(LINK_KEY_FILE);
    if path.exists() {
        return Ok(LinkSigner::load(LOCAL_KEY_PAIR_ID, &path)?);
    }
    let signer = LinkSigner::generate_p256(LOCAL_KEY_PAIR_ID)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, signer.private_pem().expose().as_bytes())?;
    Ok(signer)
}

/// The store's keys kept in the data dir, or new random ones written there (0600).
fn store_keys(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let path = data_dir.join(STORE_KEYS_FILE);
    let parse = |text: &str| {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        match (lines.next(), lines.next(), lines.next()) {
            (Some(key), Some(secret), None) => Ok((key.to_owned(), secret.to_owned())),
            _ => Err(anyhow::anyhow!(
                "{} is not the local store's keys (an access key and a secret key, one a line); \
                 delete it and start again to have new ones made (uploads in progress then \
                 start over)",
                path.display()
            )),
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let keys = (
        format!("REELUPLOCAL{}", random_hex(4).to_uppercase()),
        random_hex(20),
    );
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let created = opts.open(&path).and_then(|mut file| {
        std::io::Write::write_all(&mut file, format!("{}\n{}\n", keys.0, keys.1).as_bytes())?;
        file.sync_all()
    });
    match created {
        Ok(()) => Ok(keys),
        // Another process made them first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            parse(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "creating {}; let the server write to its data dir, or choose another with --data-dir",
                path.display()
            )
        }),
    }
}

/// The dev user's invited devices so far, plus `token` (a new invite's), written back.
fn invited_tokens(data_dir: &Path, token: &str) -> anyhow::Result<Vec<[u8; 32]>> {
    let path = data_dir.join(INVITED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut hashes: Vec<[u8; 32]> = text
        .lines()
        .filter_map(|l| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(l.trim(), &mut h).ok().map(|()| h)
        })
        .collect();
    hashes.push(crate::users::hash_token(token));
    let mut out = String::new();
    for h in &hashes {
        out.push_str(&hex::encode(h));
        out.push('\n');
    }
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    Ok(hashes)
}

impl LocalStack {
    pub async fn start(opts: LocalOptions) -> anyhow::Result<Self> {
        let s3_root = opts.data_dir.join("s3");
        std::fs::create_dir_all(&s3_root).with_context(|| {
            format!(
                "cannot create the data dir {}; choose another with --data-dir",
                s3_root.display()
            )
        })?;
        let token = match opts.token {
            Some(t) => t,
            None => dev_token(&opts.data_dir)?,
        };
        let secret = match opts.secret {
            Some(s) => s,
            None => ServerSecret::load_or_create(&opts.data_dir.join(SECRET_FILE))?,
        };
        let signer = match opts.link_signer {
            Some(s) => s,
            None => link_key(&opts.data_dir)?,
        };
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();

        let (access_key, secret_key) = match opts.store_keys {
            Some((key, secret)) => (key, secret.expose().to_owned()),
            None => store_keys(&opts.data_dir)?,
        };
        let fs = s3s_fs::FileSystem::new(&s3_root)
            .map_err(|e| anyhow::anyhow!("cannot open the local store: {e:?}"))?;
        // s3s-fs checks no part and no complete; the wrapper checks them as S3 does.
        let ledger = part_ledger::PartLedger::open(&opts.data_dir.join(PART_LEDGER_DIR))
            .with_context(|| {
                format!(
                    "cannot create {}; choose another data dir with --data-dir",
                    opts.data_dir.join(PART_LEDGER_DIR).display()
                )
            })?;
        let mut builder =
            S3ServiceBuilder::new(checked_store::CheckedStore::new(fs, &s3_root, ledger));
        builder.set_auth(SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let s3_service = builder.build();
        let s3_listener = TcpListener::bind(opts.s3_listen)
            .await
            .with_context(|| format!("cannot listen on {} for the local store", opts.s3_listen))?;
        let s3_addr = s3_listener.local_addr()?;
        tasks.push(tokio::spawn(serve_s3(
            s3_listener,
            s3_service,
            opts.http.clone(),
            cancel.clone(),
        )));

        let s3_endpoint = opts
            .store_public_endpoint
            .clone()
            .unwrap_or_else(|| format!("http://{s3_addr}"));
        let mut store = ObjectStore::new(
            s3_endpoint.parse()?,
            BUCKET,
            REGION,
            SigningKeys::fixed(&access_key, &secret_key),
            true,
            opts.url_lifetime,
        )?;
        if let Some(clock) = opts.clock {
            store = store.with_clock(clock);
        }
        let link_public_key = signer.public_pem();
        let key_pair_id = signer.key_pair_id().to_owned();
        let check = crate::cdn::SignatureCheck {
            verifier: crate::cloudfront::Verifier::new(
                crate::cloudfront::KeyGroup::default().with(&key_pair_id, signer.public_key())?,
                opts.cdn_clock
                    .unwrap_or_else(|| Arc::new(crate::store::SystemClock)),
            ),
            required: opts.require_signed_links,
        };
        store
            .ensure_bucket()
            .await
            .context("creating the bucket in the local store")?;

        let listener = TcpListener::bind(opts.listen).await.with_context(|| {
            format!(
                "cannot listen on {}; is another reelup-server running? Choose another with --listen",
                opts.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let endpoint = format!("http://{addr}");
        let cdn = format!("{endpoint}/cdn");
        let (users, invite) = match opts.users {
            Some(users) => (users, None),
            None => {
                let issued = crate::invite::issue(
                    &secret,
                    DEV_USER,
                    std::time::SystemTime::now(),
                    crate::invite::DEFAULT_VALID_FOR,
                );
                let link = crate::invite::link(&endpoint, &cdn, &issued.code, Some("local"));
                let users = invited_tokens(&opts.data_dir, &issued.token)?
                    .into_iter()
                    .fold(
                        Users::single(DEV_USER, DEV_USER, token.expose()),
                        |users, hash| users.with_hash(DEV_USER, DEV_USER, hash),
                    );
                (users, Some(link))
            }
        };
        let state = Arc::new(ApiState {
            store,
            users: users.clone(),
            cdn: StreamingUrlBase::new(&cdn),
            limits: opts.limits,
            rate_limit: opts
                .rate_limit
                .and_then(|(per_minute, burst)| rate_limiter(per_minute, burst)),
            sts: None,
            secret,
            links: Some(crate::cloudfront::SignedLinks {
                signer,
                required: opts.require_signed_links,
                default_lifetime: opts.default_link_lifetime,
                max_lifetime: opts.max_link_lifetime,
            }),
        });
        let app = edge::harden(
            router_with(state, crate::cdn::routes(Some(check))),
            users,
            &opts.http,
        );
        let app = edge::loopback_only(
            app,
            LoopbackHost {
                port: Some(addr.port()),
            },
        );
        let stop = cancel.clone();
        let limits = opts.http;
        tasks.push(tokio::spawn(async move {
            edge::serve_app(
                listener,
                &limits,
                app,
                stop.cancelled_owned(),
                Duration::from_secs(10),
            )
            .await;
        }));

        Ok(Self {
            endpoint,
            cdn,
            s3_endpoint,
            token,
            invite,
            link_public_key,
            key_pair_id,
            cancel,
            tasks,
        })
    }

    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Largest body chunk handed to the store. s3s 0.14's form parser fails a POST upload
/// (`BoundaryBufferTooLarge`) when a chunk that follows one ending in `\r` is over 64 KiB,
/// which happens at random with real file bytes and large socket reads; chunks of at most
/// this size can never trip it.
const STORE_CHUNK: usize = 32 * 1024;

fn rechunk(body: hyper::body::Incoming) -> s3s::Body {
    use futures::StreamExt;
    use http_body_util::BodyExt;
    let frames = body.into_data_stream().flat_map(|chunk| {
        let pieces: Vec<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>> = match chunk {
            Ok(mut bytes) => {
                let mut out = Vec::with_capacity(bytes.len() / STORE_CHUNK + 1);
                while bytes.len() > STORE_CHUNK {
                    out.push(Ok(hyper::body::Frame::data(bytes.split_to(STORE_CHUNK))));
                }
                out.push(Ok(hyper::body::Frame::data(bytes)));
                out
            }
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(pieces)
    });
    s3s::Body::http_body_unsync(http_body_util::StreamBody::new(frames))
}

/// The store's listener. Its requests are signed with keys only this process and the
/// signer hold, so a rebinding page could not use them anyway; the `Host` check is kept as a
/// second wall (any port, since tests reach the store through a proxy on another one).
async fn serve_s3(
    listener: TcpListener,
    service: s3s::service::S3Service,
    limits: HttpLimits,
    cancel: CancellationToken,
) {
    let rule = LoopbackHost { port: None };
    // Conditional writes are made atomic by the store itself, which locks only around the
    // check and the commit (`local/commit.rs`), never for a request's body.
    let handle = move |req: http::Request<hyper::body::Incoming>, _peer: SocketAddr| {
        let service = service.clone();
        async move {
            if let Some(message) = rule.check(&req) {
                tracing::warn!(%message, "local store: refused a request for another host name");
                let mut resp = http::Response::new(s3s::Body::from(message));
                *resp.status_mut() = http::StatusCode::MISDIRECTED_REQUEST;
                return Ok(resp);
            }
            // Only browser-style POST uploads go through s3s's form parser; every other
            // body keeps its exact length, which s3s needs for Content-Length checks.
            let form = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("multipart/form-data"));
            let req = if form {
                req.map(rechunk)
            } else {
                req.map(s3s::Body::from)
            };
            service.call(req).await
        }
    };
    edge::serve(
        listener,
        &limits,
        handle,
        cancel.cancelled_owned(),
        Duration::from_secs(10),
    )
    .await;
}
