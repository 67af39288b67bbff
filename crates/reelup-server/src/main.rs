use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use reelup_core::Secret;
use reelup_server::{LocalOptions, LocalStack};

/// Presign server for Reelup.
///
/// With --local it runs the whole stack on loopback, with no AWS account: an embedded
/// S3-compatible store, the presign routes, and a CDN route. When ready it prints one JSON
/// line to stdout: {"endpoint": ..., "cdn": ..., "token": ...}. Logs go to stderr.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Run the local stack (embedded store + CDN route) instead of signing for AWS.
    #[arg(long)]
    local: bool,

    /// Address for the presign and CDN routes.
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,

    /// Address for the embedded S3 store (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    s3_listen: SocketAddr,

    /// Where the local store keeps objects (default: the user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// How long presigned policies and URLs stay valid, in seconds.
    #[arg(long, default_value_t = 900)]
    url_lifetime: u64,
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("dev", "reelup", "reelup-server")
        .map(|d| d.data_dir().join("local"))
        .unwrap_or_else(|| PathBuf::from("reelup-data"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REELUP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if !args.local {
        eprintln!(
            "reelup-server: only --local mode exists in this version; run `reelup-server --local`"
        );
        return ExitCode::from(2);
    }
    let opts = LocalOptions {
        listen: args.listen,
        s3_listen: args.s3_listen,
        data_dir: args.data_dir.unwrap_or_else(default_data_dir),
        token: std::env::var("REELUP_SERVER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        url_lifetime: Duration::from_secs(args.url_lifetime),
        store_keys: match (
            std::env::var("REELUP_LOCAL_S3_ACCESS_KEY"),
            std::env::var("REELUP_LOCAL_S3_SECRET_KEY"),
        ) {
            (Ok(k), Ok(s)) if !k.is_empty() && !s.is_empty() => Some((k, Secret::new(s))),
            _ => None,
        },
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
    // The one line a launcher reads; printing the token is the point of a dev server.
    println!(
        "{}",
        serde_json::json!({
            "endpoint": stack.endpoint,
            "cdn": stack.cdn,
            "token": stack.token.expose(),
            "s3": stack.s3_endpoint,
            "bucket": reelup_server::local::BUCKET,
        })
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    stack.shutdown().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
