use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reelup_core::{
    CompanionClient, Progress, ProgressFn, Secret, StreamingUrlBase, UploadOptions, Uploader,
};

/// Upload videos to S3 through a presign endpoint and print their streaming URLs.
#[derive(Debug, Parser)]
#[command(name = "reelup", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload files and print each one's streaming URL.
    ///
    /// The token for the endpoint is read from REELUP_TOKEN, never from an argument.
    Upload(UploadArgs),
}

#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// Video files to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Presign endpoint: reelup-server or a Uppy Companion (without the /s3 suffix).
    #[arg(long, env = "REELUP_ENDPOINT")]
    endpoint: String,

    /// CDN base URL the streaming URLs start with (CloudFront, or the local stack's /cdn).
    #[arg(long, env = "REELUP_CDN")]
    cdn: String,

    /// Print one JSON line per finished file instead of plain text.
    #[arg(long)]
    json: bool,

    /// Files of at least this many MiB go up as multipart uploads.
    #[arg(long, default_value_t = 16)]
    multipart_threshold_mib: u64,

    /// Preferred multipart part size in MiB (at least 5).
    #[arg(long, default_value_t = 16)]
    part_size_mib: u64,

    /// Parts of one file sent at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    parts_in_flight: u16,
}

const MIB: u64 = 1024 * 1024;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REELUP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Upload(args) => upload(args).await,
    }
}

fn progress_bar(name: &str, size: u64) -> ProgressBar {
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_owned());
    bar
}

async fn upload(args: UploadArgs) -> ExitCode {
    let token = std::env::var("REELUP_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reelup: cannot set up HTTP: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = CompanionClient::new(http.clone(), &args.endpoint, token);
    let options = UploadOptions {
        multipart_threshold: args.multipart_threshold_mib * MIB,
        part_size: args.part_size_mib * MIB,
        parts_in_flight: usize::from(args.parts_in_flight),
    };
    let uploader = Uploader::new(endpoint, http, StreamingUrlBase::new(&args.cdn), options);
    let interactive = std::io::stderr().is_terminal() && !args.json;

    let mut failed = 0;
    for path in &args.files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let bar = interactive.then(|| progress_bar(&name, 0));
        let on_progress: ProgressFn = match &bar {
            Some(bar) => {
                let bar = bar.clone();
                Arc::new(move |p: Progress| {
                    bar.set_length(p.total);
                    bar.set_position(p.sent);
                })
            }
            None => Arc::new(|_| {}),
        };
        if !interactive && !args.json {
            eprintln!("uploading {}", path.display());
        }
        match uploader.upload(path, &on_progress).await {
            Ok(done) => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "file": done.file,
                            "key": done.key,
                            "url": done.url,
                            "size": done.size,
                        })
                    );
                } else {
                    println!("{}\t{}", path.display(), done.url);
                }
            }
            Err(e) => {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                failed += 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "file": path,
                            "error": e.code(),
                            "message": e.to_string(),
                        })
                    );
                }
                eprintln!("reelup: {e}");
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        if args.files.len() > 1 {
            eprintln!("reelup: {failed} of {} files failed", args.files.len());
        }
        ExitCode::FAILURE
    }
}
