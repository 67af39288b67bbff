//! `reelup watch`: watch folders headless (a NAS, a server) on the same engine as the app.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use reelup_core::QueueEvent;
use reelup_core::config::{AfterUpload, Profile, WatchFolder};
use reelup_core::queue::store::ItemState;
use reelup_core::watch::uploads::{FolderTarget, WatchReport, watch_into_queue};
use reelup_core::watch::{FolderState, UPLOADED_DIR};
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
    #[arg(long, default_value_t = reelup_core::config::DEFAULT_STABLE_SECS)]
    stable_secs: u64,
    #[command(flatten)]
    pub tuning: Tuning,
}

pub async fn run(
    queue: &Arc<Queue>,
    args: WatchArgs,
    profile: &Profile,
) -> Result<ExitCode, String> {
    let target = profile.target().map_err(crate::profile_error)?;
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
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.cancel();
        });
    }
    let (tx, mut reports) = tokio::sync::mpsc::channel(256);
    let watching = {
        let folders = folders
            .iter()
            .map(|folder| FolderTarget {
                folder: folder.clone(),
                target: target.clone(),
            })
            .collect();
        tokio::spawn(watch_into_queue(queue.clone(), folders, tx, stop.clone()))
    };
    let serving = {
        let (queue, stop) = (queue.clone(), stop.clone());
        tokio::spawn(async move { queue.serve(stop).await })
    };
    let mut queue_events = queue.subscribe();
    eprintln!(
        "reelup: watching {} folder(s) for profile {:?}; Ctrl-C stops (the queue is kept)",
        folders.len(),
        profile.name
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            report = reports.recv() => match report {
                Some(WatchReport::Queued { id, path }) => eprintln!("queued {} (#{id})", path.display()),
                Some(WatchReport::Folder { folder, state }) => match state {
                    FolderState::Watching => eprintln!("watching {}", folder.display()),
                    FolderState::Missing { message } | FolderState::Unreadable { message } => {
                        eprintln!("reelup: {message}");
                    }
                },
                Some(WatchReport::Moved { to, .. }) => eprintln!("moved to {}", to.display()),
                Some(WatchReport::NotQueued { path, message } | WatchReport::MoveFailed { path, message }) => {
                    eprintln!("reelup: {}: {message}", path.display());
                }
                None => break,
            },
            event = queue_events.recv() => {
                if let Ok(QueueEvent::Changed { item }) = event {
                    report(&item, &folders);
                }
            }
        }
    }
    stop.cancel();
    match watching.await {
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(format!("the watcher failed: {e}")),
        Ok(Ok(())) => {}
    }
    let _ = serving.await;
    eprintln!(
        "reelup: stopped; unfinished uploads carry on with the next `reelup watch` or `reelup resume`"
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a finished upload's URL (once: a moved file is announced again from uploaded/).
fn report(item: &reelup_core::queue::store::QueueItem, folders: &[WatchFolder]) {
    match item.state {
        ItemState::Done
            if !folders
                .iter()
                .any(|w| item.path.starts_with(w.path.join(UPLOADED_DIR))) =>
        {
            println!(
                "{}\t{}",
                item.path.display(),
                item.url.as_deref().unwrap_or("")
            );
        }
        ItemState::Uploading => eprintln!("uploading {}", item.path.display()),
        ItemState::Failed => {
            let message = item.error.as_ref().map_or("failed", |e| e.message.as_str());
            eprintln!("reelup: {}: {message}", item.path.display());
        }
        _ => {}
    }
}
