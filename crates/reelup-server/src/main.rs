use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use reelup_protocol::Secret;
use reelup_server::config::{self, LogFormat, ServerConfig};
use reelup_server::invite;
use reelup_server::secret::ServerSecret;
use reelup_server::{LocalOptions, LocalStack};

/// Presign server for Reelup: signs S3 POST policies and multipart part URLs behind Uppy
/// Companion's S3 routes, scoping every user to their own key prefix.
///
/// `reelup-server --local` runs the whole stack on loopback with no AWS account. It prints
/// one JSON line to stdout when ready: {"endpoint", "cdn", "token", "invite", ...}. Logs go
/// to stderr.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run the local stack (embedded S3 store + CDN route) instead of signing for AWS.
    #[arg(long)]
    local: bool,

    /// Address for the presign and CDN routes (local mode).
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,

    /// Address for the embedded S3 store (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    s3_listen: SocketAddr,

    /// Where the local store keeps objects (default: the user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// How long presigned policies and URLs stay valid, in seconds (local mode).
    #[arg(long, default_value_t = 900)]
    url_lifetime: u64,

    /// Sign every streaming URL and make the CDN route refuse unsigned requests, as a
    /// CloudFront cache behaviour with a trusted key group does (local mode). Signed links
    /// are checked either way.
    #[arg(long)]
    require_signed_links: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign for the bucket in the config file.
    Serve(ConfigArg),
    /// Check a config file and the AWS credentials it resolves to; explain every problem.
    Check(ConfigArg),
    /// Manage users' tokens in the config file.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Args)]
struct ConfigArg {
    /// Config file (default: $REELUP_SERVER_CONFIG, else ./reelup-server.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(config::default_path)
    }
}

#[derive(Debug, clap::Args)]
struct InviteArgs {
    /// The server's public URL for the link (default: the config's public_url).
    #[arg(long)]
    endpoint: Option<String>,
    /// How long the link works: e.g. 24h, 30m, 7d (1 minute to 30 days).
    #[arg(long, default_value = "24h", value_parser = reelup_server::invite::parse_valid_for)]
    expires: Duration,
    /// Draw the QR code even when stdout is not a terminal (it follows the link's line).
    #[arg(long)]
    qr: bool,
    /// The profile name the link suggests to the app and the CLI (e.g. "studio").
    #[arg(long, value_name = "NAME")]
    profile_name: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a user and print a one-time invite link for them (with a QR code on a
    /// terminal); the file keeps only the hash of the token the link redeems for. Without
    /// a public URL (public_url or --endpoint) it prints the token itself, as before invites.
    Add {
        name: String,
        /// Key prefix for the user's uploads (default: the name).
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        invite: InviteArgs,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a one-time invite link for another device of an existing user.
    Invite {
        name: String,
        #[command(flatten)]
        invite: InviteArgs,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List users, their prefixes and how many devices (tokens) each has.
    List(ConfigArg),
    /// Remove a user; their tokens stop working when the server restarts.
    Remove {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("REELUP_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "reelup", "reelup-server")
        .map(|d| d.data_dir().join("local"))
        .unwrap_or_else(|| PathBuf::from("reelup-data"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        _ if args.local => run_local(args).await,
        Some(Command::Serve(c)) => serve(&c).await,
        Some(Command::Check(c)) => check(&c).await,
        Some(Command::Token(t)) => token(t),
        None => {
            eprintln!(
                "reelup-server: say what to run: `reelup-server --local` for the local stack, \
                 or `reelup-server serve --config FILE` to sign for a real bucket"
            );
            ExitCode::from(2)
        }
    }
}

fn load(c: &ConfigArg) -> Result<ServerConfig, ExitCode> {
    ServerConfig::load(&c.path(), std::env::vars()).map_err(|e| {
        eprintln!("reelup-server: the configuration has problems:");
        for p in &e.problems {
            eprintln!("  {p}");
        }
        ExitCode::from(2)
    })
}

async fn serve(c: &ConfigArg) -> ExitCode {
    let config = match load(c) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_logging(config.log_format);
    let prepared = match reelup_server::serve::prepare(&config).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot start");
            eprintln!("reelup-server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        endpoint = %prepared.endpoint,
        bucket = %config.bucket,
        region = %config.region,
        users = config.users.len(),
        "signing"
    );
    // Handlers first: a launcher may stop the server as soon as it reads the ready line.
    let shutdown = shutdown_signal();
    println!(
        "{}",
        serde_json::json!({ "endpoint": prepared.endpoint, "cdn": config.cdn_base_url })
    );
    prepared.run(shutdown).await;
    ExitCode::SUCCESS
}

async fn check(c: &ConfigArg) -> ExitCode {
    let config = match load(c) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // Made here when missing, so an operator can create it once as the config's owner
    // for a service that cannot write beside its config.
    let secret_path = reelup_server::serve::secret_path(&config);
    let existed = secret_path.exists();
    if let Err(e) = reelup_server::secret::ServerSecret::load_or_create(&secret_path) {
        eprintln!("reelup-server: {}: {e}", c.path().display());
        return ExitCode::FAILURE;
    }
    match reelup_server::credentials::AwsSigning::resolve(&config).await {
        Ok(signing) => {
            let keys = signing.keys.current();
            println!(
                "{}: OK. Bucket {} in {}, {} user(s), signing as {}{}.",
                c.path().display(),
                config.bucket,
                config.region,
                config.users.len(),
                keys.access_key,
                if keys.session_token.is_some() {
                    " (temporary credentials)"
                } else {
                    ""
                }
            );
            println!(
                "Server secret: {} ({}).",
                secret_path.display(),
                if existed {
                    "present"
                } else {
                    "created, mode 0600"
                }
            );
            match config.cloudfront.signed_links() {
                Ok(Some(links)) => println!(
                    "CloudFront links: signed as {} ({}), {}, {} s by default. Public key for CloudFront:\n{}",
                    links.signer.key_pair_id(),
                    links.signer.algorithm(),
                    if links.required {
                        "always"
                    } else {
                        "when a client asks"
                    },
                    links.default_lifetime.as_secs(),
                    links.signer.public_pem().trim_end()
                ),
                Ok(None) => println!("CloudFront links: not signed (no [cloudfront] key)."),
                Err(e) => {
                    eprintln!("reelup-server: {}: {e}", c.path().display());
                    return ExitCode::FAILURE;
                }
            }
            if config.sts.enabled {
                println!(
                    "GET /s3/sts is on: token holders can get temporary credentials of the role."
                );
            }
            if config.users.is_empty() {
                println!("No users yet: add one with `reelup-server token add NAME`.");
            }
            match &config.public_url {
                Some(url) => println!("Invite links name {url}."),
                None => println!(
                    "No public_url: `token add` prints tokens instead of invite links, and \
                     `token invite` needs --endpoint."
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reelup-server: {}: {e}", c.path().display());
            ExitCode::FAILURE
        }
    }
}

/// What `token add|invite` need for a link: the config (for its URLs), the endpoint the
/// link names, and the secret that MACs the code. `None` when `token add` has no endpoint
/// (no public_url, no --endpoint): then it prints a token, as before invites.
fn for_invites(
    c: &ConfigArg,
    flag: Option<&str>,
    required: bool,
) -> anyhow::Result<Option<(String, ServerConfig, ServerSecret)>> {
    let config = ServerConfig::load(&c.path(), std::env::vars()).map_err(|e| {
        anyhow::anyhow!(
            "the configuration has problems:\n  {}",
            e.problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    })?;
    if !required && flag.is_none() && config.public_url.is_none() {
        return Ok(None);
    }
    let endpoint = invite::public_endpoint(&config, &c.path(), flag)?;
    let secret = ServerSecret::load_or_create(&reelup_server::serve::secret_path(&config))?;
    Ok(Some((endpoint, config, secret)))
}

/// The link on stdout, its own line first so scripts can read it; then the QR code.
fn print_invite(link: &str, name: &str, args: &InviteArgs) {
    use std::io::IsTerminal;
    println!("{link}");
    if (args.qr || std::io::stdout().is_terminal())
        && let Some(qr) = invite::qr(link)
    {
        println!("{qr}");
    }
    let hours = args.expires.as_secs() / 3600;
    let left = if hours >= 1 {
        format!("{hours} h")
    } else {
        format!("{} min", args.expires.as_secs() / 60)
    };
    eprintln!(
        "Give {name} this link (or the QR code); it works once, for {left}. It holds no \
         token: opening it in Reelup, or `reelup login --invite LINK`, fetches one. Restart \
         the server first so it knows the new device."
    );
}

fn token(command: TokenCommand) -> ExitCode {
    let result = match command {
        TokenCommand::Add {
            name,
            prefix,
            invite: args,
            config,
        } => for_invites(&config, args.endpoint.as_deref(), false).and_then(|found| {
            let path = config.path();
            let Some((endpoint, server, secret)) = found else {
                let token = reelup_server::users::new_token();
                reelup_server::tokens::add(&path, &name, prefix.as_deref(), &token)?;
                eprintln!(
                    "Added {name}. This is the only time the token is shown; give it to {name} \
                     and restart the server. (Set public_url in the config, or pass \
                     --endpoint, to print a one-time invite link instead.)"
                );
                println!("{token}");
                return Ok(());
            };
            let issued = invite::issue(&secret, &name, std::time::SystemTime::now(), args.expires);
            reelup_server::tokens::add(&path, &name, prefix.as_deref(), &issued.token)?;
            let link = invite::link(
                &endpoint,
                &server.cdn_base_url,
                &issued.code,
                args.profile_name.as_deref(),
            );
            eprintln!("Added {name}.");
            print_invite(&link, &name, &args);
            Ok(())
        }),
        TokenCommand::Invite {
            name,
            invite: args,
            config,
        } => for_invites(&config, args.endpoint.as_deref(), true).and_then(|found| {
            let (endpoint, server, secret) = found.expect("required, so found or an error");
            let issued = invite::issue(&secret, &name, std::time::SystemTime::now(), args.expires);
            reelup_server::tokens::add_device(&config.path(), &name, &issued.token)?;
            let link = invite::link(
                &endpoint,
                &server.cdn_base_url,
                &issued.code,
                args.profile_name.as_deref(),
            );
            print_invite(&link, &name, &args);
            Ok(())
        }),
        TokenCommand::List(config) => reelup_server::tokens::list(&config.path()).map(|users| {
            for (name, prefix, devices) in users {
                let s = if devices == 1 { "" } else { "s" };
                println!("{name}\t{prefix}/\t{devices} device{s}");
            }
        }),
        TokenCommand::Remove { name, config } => {
            reelup_server::tokens::remove(&config.path(), &name)
                .map(|()| eprintln!("Removed {name}; restart the server to end their access."))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reelup-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_local(args: Args) -> ExitCode {
    init_logging(LogFormat::Text);
    let mut opts = LocalOptions::new(args.data_dir.unwrap_or_else(default_data_dir));
    opts.listen = args.listen;
    opts.s3_listen = args.s3_listen;
    opts.url_lifetime = Duration::from_secs(args.url_lifetime);
    opts.require_signed_links = args.require_signed_links;
    opts.token = std::env::var("REELUP_SERVER_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    opts.store_keys = match (
        std::env::var("REELUP_LOCAL_S3_ACCESS_KEY"),
        std::env::var("REELUP_LOCAL_S3_SECRET_KEY"),
    ) {
        (Ok(k), Ok(s)) if !k.is_empty() && !s.is_empty() => Some((k, Secret::new(s))),
        _ => None,
    };
    let data_dir = opts.data_dir.clone();
    let stack = match LocalStack::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reelup-server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        endpoint = %stack.endpoint,
        cdn = %stack.cdn,
        s3 = %stack.s3_endpoint,
        data_dir = %data_dir.display(),
        "local stack ready"
    );
    let shutdown = shutdown_signal();
    // The one line a launcher reads; printing the token is the point of a dev server.
    println!(
        "{}",
        serde_json::json!({
            "endpoint": stack.endpoint,
            "cdn": stack.cdn,
            "token": stack.token.expose(),
            "invite": stack.invite,
            "s3": stack.s3_endpoint,
            "bucket": reelup_server::local::BUCKET,
            "keyPairId": stack.key_pair_id,
            "linkPublicKey": stack.link_public_key,
        })
    );
    shutdown.await;
    tracing::info!("shutting down");
    stack.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives in between must not kill the process
/// with the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    // ctrl_c() registers its handler on first poll; pinning and polling it once here would
    // need a context, so SIGINT keeps tokio's lazy registration (a Ctrl-C is a person, not a
    // launcher racing the ready line).
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}
