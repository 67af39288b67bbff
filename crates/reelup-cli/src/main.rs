mod link_cmd;
mod poster;
mod profile_cmd;
mod watch_cmd;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reelup_core::config::{
    ConfigError, Profile, ProfileConfig, ProfileError, ProfileField, check_url, default_config_path,
};
use reelup_core::credentials::{CredentialError, OsKeyring, TokenCache, token_for};
use reelup_core::media::faststart::{FaststartSetting, Layout};
use reelup_core::queue::store::{
    ItemState, Operation, QueueItem, QueueStore, Target, default_queue_path,
};
use reelup_core::{
    CompanionClient, ErrorCode, QueueEvent, QueueOptions, UploadOptions, UploadQueue,
};
use tokio_util::sync::CancellationToken;

/// Upload videos to S3 through a presign endpoint and print their streaming URLs.
///
/// Where uploads go is a profile (`reelup profile add`), kept in the config dir
/// ($REELUP_CONFIG_DIR to move it); its token is in the OS keyring (`reelup login`), or in
/// REELUP_TOKEN on a machine without one, never in an argument or a file. Uploads go
/// through a queue kept in the data dir ($REELUP_DATA_DIR to move it): quit, crash or lose
/// the network, and `reelup resume` carries on from the last finished part.
#[derive(Debug, Parser)]
#[command(name = "reelup", version)]
struct Cli {
    /// The profile to use (default: the default profile, or the only one).
    #[arg(long, global = true, env = "REELUP_PROFILE")]
    profile: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Queue files, upload them, and print each one's streaming URL.
    Upload(UploadArgs),
    /// List the queue: every item's state, progress and URL.
    Queue {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Pause an upload (or all); its finished parts are kept.
    Pause(Selection),
    /// Carry on: with an ID or --all, paused and failed items are queued again; then
    /// everything unfinished uploads.
    Resume {
        id: Option<i64>,
        #[arg(long)]
        all: bool,
        /// For the items named: `always` re-lays a video whose index is at the end to
        /// start instantly; `off` uploads it as it is (also a damaged MP4 that was held).
        /// The answer to an item held for a choice.
        #[arg(long, value_parser = parse_choice)]
        faststart: Option<Layout>,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Cancel an upload (or all) and abort it on S3.
    Cancel(Selection),
    /// Add, list, show or remove profiles (where uploads go).
    #[command(subcommand)]
    Profile(profile_cmd::ProfileCommand),
    /// Store the profile's token in the OS keyring, after checking it with the endpoint.
    /// The token is read from stdin, or from a hidden prompt on a terminal. With --invite,
    /// the profile and its token come from a one-time invite link instead.
    Login(profile_cmd::LoginArgs),
    /// Remove the profile's token from the OS keyring.
    Logout,
    /// Watch folders and upload new videos once they are completely written; runs until
    /// Ctrl-C or SIGTERM, with the queue intact.
    Watch(watch_cmd::WatchArgs),
    /// Print a new CloudFront signed link to an upload (a queue ID or an object key) and
    /// when it expires; needs a reelup-server with a CloudFront key.
    Link(link_cmd::LinkArgs),
}

#[derive(Debug, clap::Args)]
struct Selection {
    id: Option<i64>,
    #[arg(long, conflicts_with = "id")]
    all: bool,
}

#[derive(Debug, clap::Args)]
struct UploadArgs {
    /// Video files to upload.
    #[arg(required = true)]
    files: Vec<PathBuf>,

    /// Presign endpoint, instead of a profile: reelup-server or a Uppy Companion (without
    /// the /s3 suffix). Its token comes from REELUP_TOKEN. https://, or http:// only on this
    /// machine (localhost, 127.0.0.1, ::1), as for profiles.
    #[arg(long, env = "REELUP_ENDPOINT", requires = "cdn")]
    endpoint: Option<String>,

    /// CDN base URL the streaming URLs start with, with --endpoint.
    #[arg(long, env = "REELUP_CDN", requires = "endpoint")]
    cdn: Option<String>,

    /// Print one JSON line per finished file instead of plain text.
    #[arg(long)]
    json: bool,

    /// `always`: re-lay videos whose index (moov) is at the end so they start instantly
    /// (no re-encoding; the file on disk is not changed). `off`: upload them as they are,
    /// damaged MP4s too. Default: the profile's setting (`always` unless set otherwise);
    /// a profile set to `ask` holds such a video until `reelup resume ID --faststart=...`.
    #[arg(long, value_parser = parse_choice)]
    faststart: Option<Layout>,

    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Debug, Clone, Copy, Default, clap::Args)]
struct Tuning {
    /// Files of at least this many MiB go up as multipart uploads.
    #[arg(long, default_value_t = 16)]
    multipart_threshold_mib: u64,

    /// Preferred multipart part size in MiB (at least 5; default: the profile's, or 16).
    #[arg(long)]
    part_size_mib: Option<u64>,

    /// Parts in flight across all files (default: the profile's, or 4).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
    parts_in_flight: Option<u16>,

    /// Bandwidth limit for all uploads together, in bytes per second: 5000000, 5MB (10^6)
    /// or 4MiB (2^20); kB, GB, KiB and GiB work too.
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_rate)]
    limit_rate: Option<u64>,
}

/// A rate such as `5000000`, `5MB`, `1.5MiB`; parsed by the engine, so the CLI and the fuzz
/// targets share one parser.
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    reelup_core::BandwidthLimit::parse_rate(text)
}

/// A profile's faststart setting: always, ask or off.
pub(crate) fn parse_faststart(text: &str) -> Result<FaststartSetting, String> {
    FaststartSetting::parse(text)
        .ok_or_else(|| format!("{text:?} is not a faststart setting; use always, ask or off"))
}

/// A choice for some files: always (re-lay) or off (as they are).
fn parse_choice(text: &str) -> Result<Layout, String> {
    match text {
        "always" => Ok(Layout::Faststart),
        "off" => Ok(Layout::Original),
        _ => Err(format!(
            "{text:?} is not a choice for these files; use always (re-lay) or off (as they are)"
        )),
    }
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
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("reelup: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The profiles file; a mistake in it is an error here, with file, line and fix.
pub(crate) fn load_config() -> Result<ProfileConfig, String> {
    ProfileConfig::load(&default_config_path()).map_err(|e| e.to_string())
}

/// Core says which profile is missing; this adds the command that fixes it.
pub(crate) fn profile_error(e: ProfileError) -> String {
    match &e {
        ProfileError::NoneYet => format!(
            "{e}; add one with `reelup profile add NAME --endpoint URL` (it goes in {})",
            default_config_path().display()
        ),
        ProfileError::Unknown { name, known } if known.is_empty() => {
            format!("{e}; add it with `reelup profile add {name} --endpoint URL`")
        }
        ProfileError::Unknown { known, .. } => {
            format!("{e}; the profiles are: {}", known.join(", "))
        }
        ProfileError::DefaultGone(_) => {
            format!("{e}; pass --profile, or set another with `reelup profile default NAME`")
        }
        ProfileError::NoDefault { known } => format!(
            "{e}; pass --profile ({}) or set one with `reelup profile default NAME`",
            known.join(", ")
        ),
        ProfileError::NoCdn { profile } => format!(
            "{e}; add it with `reelup profile set {profile} --cdn https://<id>.cloudfront.net`"
        ),
    }
}

/// A refused change to the profiles file, with the CLI's words for the fix: core's message
/// names the `config.toml` key; this adds the option it was given with.
pub(crate) fn config_error(e: ConfigError) -> String {
    match &e {
        ConfigError::NoSuchProfile(_) => format!("{e}; `reelup profile list` shows them"),
        ConfigError::Profile(problem) => {
            let option = match problem.field() {
                ProfileField::Name => return e.to_string(),
                ProfileField::Endpoint => "--endpoint",
                ProfileField::Flavour => "--flavour",
                ProfileField::Cdn => "--cdn",
                ProfileField::PartsInFlight => "--parts-in-flight",
                ProfileField::PartSizeMib => "--part-size-mib",
                ProfileField::BandwidthLimit => "--limit-rate",
                ProfileField::Watch => "--watch",
                ProfileField::LinkLifetime => "--link-lifetime",
            };
            format!("{e} (given with {option})")
        }
        _ => e.to_string(),
    }
}

pub(crate) fn keyring() -> Arc<OsKeyring> {
    Arc::new(OsKeyring::default())
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let profile_name = cli.profile.clone();
    let command = match cli.command {
        Command::Profile(cmd) => return profile_cmd::run(cmd, profile_name.as_deref()),
        Command::Login(args) => return profile_cmd::login(args, profile_name.as_deref()).await,
        Command::Logout => return profile_cmd::logout(profile_name.as_deref()),
        Command::Link(args) => return link_cmd::run(args, profile_name.as_deref()).await,
        other => other,
    };
    // A profile is needed to upload; queue, pause and cancel work without one.
    let needs_profile = match &command {
        Command::Upload(a) => a.endpoint.is_none(),
        Command::Resume { .. } | Command::Watch(_) => true,
        _ => false,
    };
    let config = match load_config() {
        Ok(c) => c,
        // A mistake in the profiles file must not stop what does not need a profile.
        Err(e) if !needs_profile => {
            eprintln!("reelup: warning: {e}");
            ProfileConfig::empty(&default_config_path())
        }
        Err(e) => return Err(e),
    };
    let profile = if needs_profile {
        match config.resolve(profile_name.as_deref()) {
            Ok(p) => Some(p.clone()),
            // `resume` also serves items queued with --endpoint.
            Err(_) if matches!(command, Command::Resume { .. }) && profile_name.is_none() => None,
            Err(e) => return Err(profile_error(e)),
        }
    } else {
        config.resolve(profile_name.as_deref()).ok().cloned()
    };
    let tuning = match &command {
        Command::Upload(a) => a.tuning,
        Command::Resume { tuning, .. } => *tuning,
        Command::Watch(a) => a.tuning,
        _ => Tuning::default(),
    };
    let queue = open_queue(tuning, profile.as_ref())?;
    Ok(match command {
        Command::Upload(args) => upload(&queue, args, profile.as_ref()).await?,
        Command::Watch(args) => {
            watch_cmd::run(&queue, args, profile.as_ref().expect("resolved")).await?
        }
        Command::Queue { json } => list(&queue, json),
        Command::Pause(sel) => each(&queue, sel, |q, id| q.pause(id).map_err(|e| e.to_string())),
        Command::Cancel(sel) => {
            let ids = match select(&queue, &sel, Operation::Cancel.starts_from()) {
                Ok(ids) => ids,
                Err(code) => return Ok(code),
            };
            let mut failed = false;
            for id in ids {
                if let Err(e) = queue.cancel(id).await {
                    eprintln!("reelup: {id}: {e}");
                    failed = true;
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Resume {
            id, all, faststart, ..
        } => {
            let ids = match (id, all) {
                (Some(id), _) => vec![id],
                (None, true) => queue
                    .ids_in(Operation::Resume.starts_from())
                    .unwrap_or_default(),
                (None, false) if faststart.is_some() => {
                    return Err("--faststart is for items named: give an ID or --all".into());
                }
                (None, false) => Vec::new(),
            };
            for id in ids {
                if let Some(layout) = faststart {
                    queue
                        .choose_layout(id, layout)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                queue.resume(id).map_err(|e| e.to_string())?;
            }
            let pending = queue
                .ids_in(Operation::Claim.starts_from())
                .unwrap_or_default();
            if pending.is_empty() {
                eprintln!("reelup: nothing to resume; `reelup queue` lists every upload");
                return Ok(ExitCode::SUCCESS);
            }
            drive(&queue, pending, false, false).await
        }
        Command::Profile(_) | Command::Login(_) | Command::Logout | Command::Link(_) => {
            unreachable!("handled above")
        }
    })
}

pub(crate) type Queue = UploadQueue<CompanionClient>;

fn open_queue(tuning: Tuning, profile: Option<&Profile>) -> Result<Arc<Queue>, String> {
    let path = default_queue_path();
    let store = QueueStore::open(&path).map_err(|e| e.to_string())?;
    if let Some(aside) = &store.moved_aside {
        eprintln!(
            "reelup: the upload queue was damaged; it was moved to {} and a new one started",
            aside.display()
        );
    }
    let part_size_mib = tuning
        .part_size_mib
        .or(profile.map(|p| p.part_size_mib))
        .unwrap_or(reelup_core::config::DEFAULT_PART_SIZE_MIB);
    let parts_in_flight = tuning
        .parts_in_flight
        .or(profile.map(|p| p.parts_in_flight))
        .unwrap_or(reelup_core::config::DEFAULT_PARTS_IN_FLIGHT);
    let options = QueueOptions {
        upload: UploadOptions {
            multipart_threshold: tuning.multipart_threshold_mib * MIB,
            part_size: part_size_mib * MIB,
        },
        parts_in_flight: usize::from(parts_in_flight),
        bandwidth_limit: tuning
            .limit_rate
            .or(profile.and_then(|p| p.bandwidth_limit)),
        ..QueueOptions::default()
    };
    let tokens = Arc::new(TokenCache::new(keyring()));
    let profiles = reelup_core::config::targets_in(default_config_path());
    UploadQueue::for_companion(store, tokens, profiles, options)
        .map_err(|e| format!("cannot set up HTTP: {e}"))
}

async fn upload(
    queue: &Arc<Queue>,
    args: UploadArgs,
    profile: Option<&Profile>,
) -> Result<ExitCode, String> {
    let target = match (&args.endpoint, &args.cdn, profile) {
        (Some(endpoint), Some(cdn), _) => {
            // The same rule as for a profile's endpoint, before anything is sent: the token
            // goes in the clear over http.
            check_url(endpoint, "--endpoint")?;
            check_url(cdn, "--cdn")?;
            Target::new(endpoint, cdn)
        }
        (_, _, Some(p)) => {
            // A token stored for another endpoint is never sent (the queue sends none);
            // say why now rather than leave the endpoint to answer 401.
            if let Err(e @ CredentialError::BoundElsewhere { .. }) =
                token_for(keyring().as_ref(), &p.name, &p.endpoint)
            {
                return Err(e.to_string());
            }
            p.target().map_err(profile_error)?
        }
        _ => return Err("name a profile with --profile, or give --endpoint and --cdn".into()),
    };
    let mut ids = Vec::new();
    let mut failed = 0;
    // Every file in one transaction (`reelup upload DIR/*` with 1,000 clips is one commit),
    // read on a few threads off the runtime's.
    let added = {
        let (queue, files, target) = (queue.clone(), args.files.clone(), target.clone());
        tokio::task::spawn_blocking(move || queue.add_many(&files, &target))
            .await
            .map_err(|e| format!("could not read the files: {e}"))?
            .map_err(|e| e.to_string())?
    };
    for (path, added) in args.files.iter().zip(added) {
        match added {
            Ok(id) => {
                if let Some(layout) = args.faststart
                    && let Err(e) = queue.choose_layout(id, layout).await
                {
                    failed += 1;
                    report_error(args.json, path, e.code(), &e.to_string());
                    continue;
                }
                ids.push(id);
            }
            Err(e) => {
                failed += 1;
                report_error(args.json, path, e.code(), &e.to_string());
            }
        }
    }
    if ids.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    let code = drive(queue, ids, args.json, true).await;
    Ok(if failed > 0 { ExitCode::FAILURE } else { code })
}

fn report_error(json: bool, path: &std::path::Path, code: ErrorCode, message: &str) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "file": path, "error": code, "message": message })
        );
    }
    eprintln!("reelup: {message}");
}

/// Runs the queue for `ids` with progress on stderr, then reports each one's outcome.
/// Ctrl-C, or SIGTERM (a service manager or `docker stop`).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// With `posters`, each finished video gets a poster frame (made with ffmpeg) before the
/// outcomes are reported, so `--json` carries its URL.
pub(crate) async fn drive(
    queue: &Arc<Queue>,
    ids: Vec<i64>,
    json: bool,
    posters: bool,
) -> ExitCode {
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    let interactive = std::io::stderr().is_terminal() && !json;
    let progress = tokio::spawn(show_progress(queue.subscribe(), interactive, ids.clone()));
    // Posters are drawn as files finish, while the others upload.
    let uploads_done = CancellationToken::new();
    let no_ffmpeg = poster::FfmpegMissing::default();
    let drawing = posters.then(|| {
        tokio::spawn(poster::as_they_finish(
            queue.clone(),
            queue.subscribe(),
            ids.iter().copied().collect(),
            uploads_done.clone(),
            no_ffmpeg.clone(),
        ))
    });
    let run = queue.run(Some(ids.clone()), stop.clone()).await;
    uploads_done.cancel();
    let drawn = match drawing {
        // Interrupted: no waiting for ffmpeg.
        Some(task) if stop.is_cancelled() => {
            task.abort();
            Default::default()
        }
        Some(task) => task.await.unwrap_or_default(),
        None => Default::default(),
    };
    progress.abort();
    if let Err(e) = run {
        eprintln!("reelup: {e}");
        return ExitCode::FAILURE;
    }
    if stop.is_cancelled() {
        eprintln!("reelup: interrupted; finished parts are kept. Run `reelup resume` to carry on.");
        return ExitCode::from(130);
    }
    if posters {
        // What the drawing as they finished missed (an event lost in a burst).
        let missed: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !drawn.contains(id))
            .collect();
        poster::add_posters(queue, &missed, &no_ffmpeg).await;
    }
    let mut failed = 0;
    for id in &ids {
        let Ok(item) = queue.get(*id) else { continue };
        match item.state {
            ItemState::Done => {
                let mut url = item.url.clone().unwrap_or_default();
                // A profile that asks for signed links gets one (the queue keeps the plain
                // link: a signed one expires; `reelup link` signs it again).
                let mut expires_at = None;
                match link_cmd::upload_link(&item).await {
                    Some(Ok((signed, at))) => (url, expires_at) = (signed, Some(at)),
                    Some(Err(e)) => eprintln!(
                        "reelup: {}: no signed link ({e}); the plain link follows, and `reelup link {}` tries again",
                        item.path.display(),
                        item.id
                    ),
                    None => {}
                }
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "id": item.id, "file": item.path, "key": item.key, "url": url, "expiresAt": expires_at, "size": item.size, "poster": item.poster_url, "noPoster": item.no_poster, "index_position": item.index_position, "layout": item.layout, "verified": item.verified })
                    );
                } else {
                    println!("{}\t{url}", item.path.display());
                    if item.layout == Some(Layout::Faststart) {
                        eprintln!(
                            "reelup: {}: re-laid with its index first, so it starts instantly (the file on disk is unchanged)",
                            item.path.display()
                        );
                    }
                }
            }
            ItemState::Failed => {
                failed += 1;
                let e =
                    item.error
                        .clone()
                        .unwrap_or_else(|| reelup_core::queue::store::ItemError {
                            code: ErrorCode::Unknown,
                            message: "failed".into(),
                            retryable: true,
                        });
                let hint = if e.retryable {
                    " (`reelup resume --all` tries again)".to_owned()
                } else if matches!(
                    e.code,
                    ErrorCode::FaststartUndecided | ErrorCode::Mp4Damaged
                ) {
                    format!(" [item {}]", item.id)
                } else {
                    String::new()
                };
                report_error(json, &item.path, e.code, &format!("{}{hint}", e.message));
            }
            ItemState::Canceled => {
                failed += 1;
                eprintln!("reelup: {}: canceled", item.path.display());
            }
            ItemState::Paused => {
                eprintln!(
                    "reelup: {}: paused; `reelup resume {}` carries on",
                    item.path.display(),
                    item.id
                );
            }
            // Claimed by another Reelup process (the app, or another CLI) that is still on it.
            ItemState::Queued | ItemState::Uploading | ItemState::Completing => {
                eprintln!(
                    "reelup: {}: being uploaded by another Reelup process",
                    item.path.display()
                );
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        if ids.len() > 1 {
            eprintln!("reelup: {failed} of {} files did not finish", ids.len());
        }
        ExitCode::FAILURE
    }
}

async fn show_progress(
    mut events: tokio::sync::broadcast::Receiver<QueueEvent>,
    interactive: bool,
    ids: Vec<i64>,
) {
    // Looked up per event: a set, so 1,000 files cost no more per event than one.
    let ids: std::collections::HashSet<i64> = ids.into_iter().collect();
    let bars = MultiProgress::new();
    let mut by_id: HashMap<i64, ProgressBar> = HashMap::new();
    let style = ProgressStyle::with_template(
        "{msg:30!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    while let Ok(event) = events.recv().await {
        match event {
            QueueEvent::Changed { item } if ids.contains(&item.id) => {
                if !interactive {
                    eprintln!("{} {}", item.state.as_str(), item.path.display());
                } else if !item.state.is_active()
                    && let Some(bar) = by_id.remove(&item.id)
                {
                    // Forgotten once cleared: the bars held are those running, not every
                    // file of the run.
                    bar.finish_and_clear();
                }
            }
            QueueEvent::Progress {
                id, sent, total, ..
            } if interactive && ids.contains(&id) => {
                let bar = by_id.entry(id).or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(total));
                    bar.set_style(style.clone());
                    bar.set_message(format!("#{id}"));
                    bar
                });
                bar.set_position(sent);
            }
            _ => {}
        }
    }
}

fn select(queue: &Queue, sel: &Selection, states: &[ItemState]) -> Result<Vec<i64>, ExitCode> {
    match (sel.id, sel.all) {
        (Some(id), _) => Ok(vec![id]),
        (None, true) => queue.ids_in(states).map_err(|e| {
            eprintln!("reelup: {e}");
            ExitCode::FAILURE
        }),
        (None, false) => {
            eprintln!("reelup: name an item ID (see `reelup queue`) or pass --all");
            Err(ExitCode::from(2))
        }
    }
}

fn each(
    queue: &Queue,
    sel: Selection,
    op: impl Fn(&Queue, i64) -> Result<bool, String>,
) -> ExitCode {
    let ids = match select(queue, &sel, Operation::Pause.starts_from()) {
        Ok(ids) => ids,
        Err(code) => return code,
    };
    for id in ids {
        match op(queue, id) {
            Ok(true) => eprintln!("{id}: done"),
            Ok(false) => eprintln!("{id}: nothing to do in its current state"),
            Err(e) => {
                eprintln!("reelup: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn list(queue: &Queue, json: bool) -> ExitCode {
    // One row at a time: a queue of 100,000 uploads lists in the memory of one.
    match queue.for_each_item(|item| print_item(&item, json)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reelup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_item(item: &QueueItem, json: bool) {
    if json {
        println!("{}", serde_json::to_string(item).unwrap_or_default());
    } else {
        // A re-laid stream can be a little longer than the file.
        let pct = (item.confirmed * 100)
            .checked_div(item.size)
            .unwrap_or(100)
            .min(100);
        let extra = match (&item.url, &item.error) {
            (Some(url), _) => url.clone(),
            (None, Some(e)) => e.message.clone(),
            _ => format!("{pct}%"),
        };
        // The video's details, when read, as a last column: `0:42 · 1920x1080 ·
        // 29.97 fps · H.264/AAC`.
        let details = item
            .details
            .as_ref()
            .map(|d| format!("\t{}", reelup_core::details_line(d)))
            .unwrap_or_default();
        // What was compared for a finished upload: `verified: CRC64NVME of the whole file`.
        let verified = item
            .verified
            .map(|v| format!("\t{}", v.describe()))
            .unwrap_or_default();
        // Why a finished upload has no poster, when something stopped it.
        let no_poster = item
            .no_poster
            .as_ref()
            .map(|why| format!("\tno poster: {why}"))
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{}{details}{verified}{no_poster}",
            item.id,
            item.state.as_str(),
            item.path.display(),
            index_words(item),
            extra
        );
    }
}

/// Where the item's video keeps its index, and whether it was re-laid, in words.
fn index_words(item: &QueueItem) -> String {
    match (item.index_position, item.layout) {
        (_, Some(Layout::Faststart)) => "starts instantly (re-laid)".into(),
        (Some(p), _) => p.describe().into(),
        (None, _) => "index not checked yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_take_plain_decimal_and_binary_units() {
        assert_eq!(parse_rate("5000000"), Ok(5_000_000));
        assert_eq!(parse_rate("5MB"), Ok(5_000_000));
        assert_eq!(parse_rate("4MiB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_rate("1.5 mib/s"), Ok(1_572_864));
        assert_eq!(parse_rate("800kB"), Ok(800_000));
        assert_eq!(parse_rate("2GiB"), Ok(2 << 30));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("5 parsecs").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("").is_err());
    }
}
