//! The watch task: one tokio task per [`FolderWatcher`](super::FolderWatcher) that takes the
//! OS's notifications, checks the roots, walks what appeared and runs the rounds of looks that
//! settling asks for, and sends what came of it as [`WatchEvent`]s.
//!
//! Time comes from tokio's clock (`tokio::time::Instant`, `sleep_until`, `interval`) and
//! nothing else, so a test on a paused runtime (`#[tokio::test(start_paused = true)]`) moves
//! the watcher's time. Every read of the disk and every call into notify runs on a blocking
//! thread, which also holds a paused clock still while it runs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use notify::{RecommendedWatcher, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::roots::{self, Folder, Identity, RootProbe, probe_root};
use super::scan::{ScanJob, look_at};
use super::settle::{Settled, Settling};
use super::{FolderState, ROOT_CHECK_EVERY, SETUP_RETRY_EVERY, WatchEvent};

/// Where the watch task was told the events receiver is gone: nothing more to do.
pub(super) struct Closed;

/// The watch task's state.
pub(super) struct WatchTask {
    pub(super) folders: Vec<Folder>,
    watcher: Arc<Mutex<RecommendedWatcher>>,
    raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    events: mpsc::Sender<WatchEvent>,
    /// Unsettled files, and what was reported in this run.
    pub(super) settling: Settling,
    /// Paths that appeared (moved in, created folders, or whole roots after a (re)watch) and
    /// need a look or a walk, with their folder.
    pub(super) to_scan: Vec<(usize, PathBuf)>,
    /// Roots that had an event of their own and need a full check now.
    pub(super) roots_due: HashSet<usize>,
}

enum Wake {
    Stop,
    Raw(Option<notify::Result<notify::Event>>),
    CheckRoots,
    Settle,
}

impl WatchTask {
    pub(super) fn new(
        folders: Vec<Folder>,
        watcher: RecommendedWatcher,
        raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        events: mpsc::Sender<WatchEvent>,
    ) -> Self {
        Self {
            folders,
            watcher: Arc::new(Mutex::new(watcher)),
            raw,
            events,
            settling: Settling::new(Instant::now()),
            to_scan: Vec::new(),
            roots_due: HashSet::new(),
        }
    }

    pub(super) async fn run(mut self, stop: CancellationToken) {
        let _ = self.work(&stop).await;
        tracing::debug!("watch folders: stopped");
    }

    async fn work(&mut self, stop: &CancellationToken) -> Result<(), Closed> {
        for i in 0..self.folders.len() {
            self.check_root(i, true).await?;
        }
        let mut root_checks =
            tokio::time::interval_at(Instant::now() + ROOT_CHECK_EVERY, ROOT_CHECK_EVERY);
        root_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if !self.to_scan.is_empty() {
                self.scan().await;
                continue;
            }
            if let Some(&i) = self.roots_due.iter().next() {
                self.roots_due.remove(&i);
                self.check_root(i, true).await?;
                continue;
            }
            let settle_at = self.settling.next_look();
            let wake = tokio::select! {
                biased;
                _ = stop.cancelled() => Wake::Stop,
                _ = self.events.closed() => Wake::Stop,
                raw = self.raw.recv() => Wake::Raw(raw),
                _ = root_checks.tick() => Wake::CheckRoots,
                _ = tokio::time::sleep_until(settle_at.unwrap_or_else(Instant::now)),
                    if settle_at.is_some() => Wake::Settle,
            };
            match wake {
                Wake::Stop | Wake::Raw(None) => return Ok(()),
                Wake::Raw(Some(event)) => self.on_event(event, Instant::now()),
                Wake::CheckRoots => {
                    for i in 0..self.folders.len() {
                        self.check_root(i, false).await?;
                    }
                }
                Wake::Settle => self.settle().await?,
            }
        }
    }

    /// Notices a root going missing, turning unreadable, being replaced, or coming back,
    /// and (re)establishes the watch as needed. Without `full`, a root that is still the same
    /// directory costs one `stat`.
    async fn check_root(&mut self, i: usize, full: bool) -> Result<(), Closed> {
        let folder = &self.folders[i];
        let root = folder.root().to_owned();
        let known = (folder.watching() && folder.watched && !full).then_some(folder.identity);
        let probe_path = root.clone();
        let probe = tokio::task::spawn_blocking(move || probe_root(&probe_path, known))
            .await
            .unwrap_or(RootProbe::Unchanged);
        if let Some(state) = roots::lost(&root, &probe) {
            return self.lose(i, state).await;
        }
        let RootProbe::Readable(identity, canonical) = probe else {
            return Ok(());
        };
        let folder = &mut self.folders[i];
        if folder.watched_as(identity) || folder.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        folder.aliases = canonical.into_iter().filter(|c| *c != root).collect();
        self.rewatch(i, identity).await
    }

    /// (Re)establishes the OS watch on a readable root; whatever arrived while nobody
    /// watched is found by the walk that follows.
    async fn rewatch(&mut self, i: usize, identity: Identity) -> Result<(), Closed> {
        let root = self.folders[i].root().to_owned();
        let mode = self.folders[i].mode();
        let watch_root = root.clone();
        let result = self
            .with_watcher(move |w| {
                // A root that was replaced still has the old directory's watch.
                let _ = w.unwatch(&watch_root);
                w.watch(&watch_root, mode)
            })
            .await;
        let folder = &mut self.folders[i];
        match result {
            Ok(()) => {
                folder.watched = true;
                folder.identity = identity;
                folder.retry_at = None;
                self.to_scan.push((i, root));
                self.set_state(i, FolderState::Watching).await
            }
            Err(e) => {
                folder.watched = false;
                folder.retry_at = Some(Instant::now() + SETUP_RETRY_EVERY);
                let state = roots::watch_refused(&root, &e);
                self.forget_folder(i);
                self.set_state(i, state).await
            }
        }
    }

    /// The folder cannot be watched now: let go of its watch and unsettled files; a root
    /// check brings it back.
    async fn lose(&mut self, i: usize, state: FolderState) -> Result<(), Closed> {
        if self.folders[i].watched {
            let root = self.folders[i].root().to_owned();
            self.with_watcher(move |w| {
                let _ = w.unwatch(&root);
            })
            .await;
            self.folders[i].watched = false;
        }
        self.folders[i].identity = None;
        self.folders[i].retry_at = None;
        self.forget_folder(i);
        self.set_state(i, state).await
    }

    fn forget_folder(&mut self, i: usize) {
        self.settling.forget_folder(i);
        self.to_scan.retain(|(f, _)| *f != i);
    }

    async fn set_state(&mut self, i: usize, state: FolderState) -> Result<(), Closed> {
        let folder = &mut self.folders[i];
        if folder.state.as_ref() == Some(&state) {
            return Ok(());
        }
        match &state {
            FolderState::Watching => tracing::info!("watching {}", folder.root().display()),
            FolderState::Missing { message } | FolderState::Unreadable { message } => {
                tracing::warn!("watch folder: {message}")
            }
        }
        folder.state = Some(state.clone());
        let folder = folder.root().to_owned();
        self.send(WatchEvent::Folder { folder, state }).await
    }

    async fn send(&self, event: WatchEvent) -> Result<(), Closed> {
        self.events.send(event).await.map_err(|_| Closed)
    }

    /// Runs `f` on the notify watcher off the runtime's threads: a recursive watch walks the
    /// whole tree.
    async fn with_watcher<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut RecommendedWatcher) -> R + Send + 'static,
    ) -> R {
        let watcher = Arc::clone(&self.watcher);
        tokio::task::spawn_blocking(move || {
            let mut watcher = watcher.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut watcher)
        })
        .await
        .expect("the notify watcher call panicked")
    }

    /// Walks what appeared (files, folders, whole roots) off the runtime's threads and makes
    /// candidates of the files, their window starting now, at first sight.
    async fn scan(&mut self) {
        let mut jobs = std::mem::take(&mut self.to_scan);
        jobs.sort();
        jobs.dedup();
        let jobs: Vec<ScanJob> = jobs
            .into_iter()
            .filter(|(i, _)| self.folders[*i].watching())
            .map(|(i, start)| {
                let folder = &self.folders[i];
                ScanJob {
                    folder: i,
                    root: folder.root().to_owned(),
                    recursive: folder.spec.recursive,
                    extensions: folder.spec.extensions.clone(),
                    start,
                }
            })
            .collect();
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for job in &jobs {
                job.run(&mut found);
            }
            found
        })
        .await
        .unwrap_or_default();
        let now = Instant::now();
        for (i, path, stamp) in found {
            let folder = &self.folders[i];
            if folder.watching() {
                self.settling.found(i, folder.window(), path, stamp, now);
            }
        }
    }

    /// One round of looks at every unsettled file, off the runtime's threads; settling
    /// decides what they mean.
    async fn settle(&mut self) -> Result<(), Closed> {
        let started = Instant::now();
        let looks: Vec<_> = self
            .settling
            .looks(started)
            .into_iter()
            .map(|look| (self.folders[look.folder].root().to_owned(), look))
            .collect();
        let seen = tokio::task::spawn_blocking(move || {
            looks
                .into_iter()
                .map(|(root, look)| {
                    let observation = look_at(&root, &look);
                    (look.path, observation)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();

        // What happened while we looked counts: a write during the look restarts the window.
        while let Ok(event) = self.raw.try_recv() {
            self.on_event(event, Instant::now());
        }
        let settled = self.settling.observe(seen, started, Instant::now());
        self.report(settled).await
    }

    async fn report(&self, settled: Settled) -> Result<(), Closed> {
        let Settled {
            refused,
            ready,
            unopenable,
        } = settled;
        for path in unopenable {
            tracing::warn!(
                "watch folders: {} is complete but cannot be opened for reading; it is reported once it can",
                path.display()
            );
        }
        for (i, path, message) in refused {
            tracing::warn!("watch folders: {}: {message}", path.display());
            let folder = self.folders[i].root().to_owned();
            self.send(WatchEvent::Refused {
                folder,
                path,
                message,
            })
            .await?;
        }
        for (i, path) in ready {
            let folder = self.folders[i].root().to_owned();
            self.send(WatchEvent::Ready { folder, path }).await?;
        }
        Ok(())
    }
}
