//! `reelup watch`: watch folders headless (a NAS, a server) on the same engine as the app.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reelup_core::QueueEvent;
use reelup_core::profiles::{AfterUpload, Profile, WatchFolder};
use reelup_core::queue_store::ItemState;
use reelup_core::watch::{FolderState, FolderWatcher, WatchEvent, WatchSpec, move_to_uploaded};
use tokio_util::sync::CancellationToken;

use crate::{Queue, Tuning, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Folders to watch instead of the profile's watch folders.
    dirs: Vec<PathBuf>,
    /// With DIRs: watch their subfolders too.
    #[arg(long)]
    recursive: bool,
    /// With DIRs: after a file is uploaded, leave it or move it into uploaded/.
    #[arg(long, default_value = "leave", value_parser = ["leave", "move"])]
    after_upload: String,
    /// With DIRs: seconds a file's size and mtime must stay the same before it goes up.
    #[arg(long, default_value_t = reelup_core::profiles::DEFAULT_STABLE_SECS)]
    stable_secs: u64,
    #[command(flatten)]
    pub tuning: Tuning,
}

pub async fn run(
    queue: &Arc<Queue>,
    args: WatchArgs,
    profile: &Profile,
) -> Result<ExitCode, String> {
    let target = profile.target()?;
    let folders: Vec<WatchFolder> = if args.dirs.is_empty() {
        profile.watch.clone()
    } else {
        args.dirs
            .iter()
            .map(|d| {
                let mut w = WatchFolder::new(std::path::absolute(d).unwrap_or_else(|_| d.clone()));
                w.recursive = args.recursive;
                w.stable_secs = args.stable_secs.max(1);
                if args.after_upload == "move" {
                    w.after_upload = AfterUpload::Move;
                }
                w
            })
            .collect()
    };
    if folders.is_empty() {
        return Err(format!(
            "profile {:?} has no watch folders; name folders (`reelup watch DIR`) or add them with `reelup profile add {} --endpoint {} --watch DIR --force`",
            profile.name, profile.name, profile.endpoint
        ));
    }
    let specs = folders
        .iter()
        .map(|w| WatchSpec {
            folder: w.path.clone(),
            recursive: w.recursive,
            extensions: w.extensions.clone(),
            stable_for: Duration::from_secs(w.stable_secs),
        })
        .collect();

    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let watcher = FolderWatcher::start(specs, tx, stop.clone()).map_err(|e| e.to_string())?;
    let mut queue_events = queue.subscribe();
    let serving = {
        let (queue, stop) = (queue.clone(), stop.clone());
        tokio::spawn(async move { queue.serve(stop).await })
    };
    eprintln!(
        "reelup: watching {} folder(s) for profile {:?}; Ctrl-C stops (the queue is kept)",
        folders.len(),
        profile.name
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            event = rx.recv() => match event {
                Some(WatchEvent::Ready { path, .. }) => match queue.add_watched(&path, &target) {
                    Ok(Some(id)) => eprintln!("queued {} (#{id})", path.display()),
                    Ok(None) => tracing::debug!(path = %path.display(), "already uploaded"),
                    Err(e) => eprintln!("reelup: {e}"),
                },
                Some(WatchEvent::Folder { folder, state }) => match state {
                    FolderState::Watching => eprintln!("watching {}", folder.display()),
                    FolderState::Missing { message } | FolderState::Unreadable { message } => {
                        eprintln!("reelup: {message}");
                    }
                },
                None => break,
            },
            event = queue_events.recv() => {
                if let Ok(QueueEvent::Changed { item }) = event {
                    report(&item, &folders, queue);
                }
            }
        }
    }
    stop.cancel();
    watcher.shutdown().await;
    let _ = serving.await;
    eprintln!(
        "reelup: stopped; unfinished uploads carry on with the next `reelup watch` or `reelup resume`"
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints an outcome, and does the folder's after-upload move for a finished file.
fn report(item: &reelup_core::queue_store::QueueItem, folders: &[WatchFolder], queue: &Queue) {
    match item.state {
        ItemState::Done
            if !folders
                .iter()
                .any(|w| item.path.starts_with(w.path.join("uploaded"))) =>
        {
            println!(
                "{}\t{}",
                item.path.display(),
                item.url.as_deref().unwrap_or("")
            );
            let home = folders
                .iter()
                .filter(|w| w.after_upload == AfterUpload::Move)
                // Recording the move announces the item again, from inside uploaded/.
                .find(|w| {
                    item.path.starts_with(&w.path)
                        && !item.path.starts_with(w.path.join("uploaded"))
                });
            if let Some(w) = home {
                match move_to_uploaded(&w.path, &item.path) {
                    Ok(to) => {
                        if let Err(e) = queue.set_path(item.id, &to) {
                            tracing::warn!(error = %e, "could not record the moved file");
                        }
                    }
                    Err(e) => eprintln!(
                        "reelup: uploaded {}, but could not move it into uploaded/: {e}",
                        item.path.display()
                    ),
                }
            }
        }
        ItemState::Failed => {
            let message = item.error.as_ref().map_or("failed", |e| e.message.as_str());
            eprintln!("reelup: {}: {message}", item.path.display());
        }
        _ => {}
    }
}
