//! The OS's notifications (through notify) turned into the watcher's work: files whose window
//! restarts, paths to walk, things that went away, roots to check.
//!
//! What must stay true: nothing here touches a file. A busy writer can cause thousands of
//! events a second, so an event only records what to do; the looks and walks happen later,
//! once per round, off the runtime's threads.

use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use tokio::time::Instant;

use super::filter::in_ignored_dir;
use super::task::WatchTask;

impl WatchTask {
    /// Takes in one notification, read at `now` on the watcher's clock.
    pub(super) fn on_event(&mut self, event: notify::Result<notify::Event>, now: Instant) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                // Typically a new subfolder over the inotify watch limit.
                tracing::warn!("watch folders: {e}");
                return;
            }
        };
        if event.need_rescan() {
            // The OS dropped events: walk what is watched once.
            tracing::info!("watch folders: events were lost; scanning the folders again");
            for (i, folder) in self.folders.iter().enumerate() {
                if folder.watching() {
                    self.to_scan.push((i, folder.root().to_owned()));
                }
            }
            return;
        }
        self.on_kind(event.kind, &event.paths, now);
    }

    fn on_kind(&mut self, kind: EventKind, paths: &[PathBuf], now: Instant) {
        match kind {
            // Opening, reading and closing after reading change nothing, and reading is what
            // this watcher and the uploader do.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => self.touched(paths, now),
            EventKind::Access(_) => {}
            EventKind::Create(CreateKind::File)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_)) => {
                self.touched(paths, now)
            }
            EventKind::Create(_) => self.appeared(paths),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                self.vanished(paths)
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => self.appeared(paths),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = paths {
                    self.vanished(std::slice::from_ref(from));
                    self.appeared(std::slice::from_ref(to));
                }
            }
            // Which end of a rename is not said (macOS): forget the path, then look.
            EventKind::Modify(ModifyKind::Name(_)) => {
                self.vanished(paths);
                self.appeared(paths);
            }
            // A write of some kind (Windows says no more than this).
            EventKind::Modify(_) => self.touched(paths, now),
            // Nothing said at all: a change to a file, or a folder to look into.
            EventKind::Any | EventKind::Other => {
                self.touched(paths, now);
                self.appeared(paths);
            }
        }
    }

    /// The watched folder a reported path belongs to, and the path spelled under that
    /// folder's root (the innermost folder, if watched folders nest).
    fn resolve(&self, path: &Path) -> Option<(usize, PathBuf)> {
        let mut best: Option<(usize, usize, PathBuf)> = None;
        for (i, folder) in self.folders.iter().enumerate() {
            let bases =
                std::iter::once(folder.root()).chain(folder.aliases.iter().map(|p| p.as_path()));
            for base in bases {
                let Ok(rel) = path.strip_prefix(base) else {
                    continue;
                };
                let depth = base.components().count();
                if best.as_ref().is_some_and(|(_, d, _)| *d >= depth) {
                    continue;
                }
                let spelled = if rel.as_os_str().is_empty() {
                    folder.root().to_owned()
                } else {
                    folder.root().join(rel)
                };
                best = Some((i, depth, spelled));
            }
        }
        best.map(|(i, _, path)| (i, path))
    }

    /// Files written to: (re)start their window.
    fn touched(&mut self, paths: &[PathBuf], now: Instant) {
        for path in paths {
            let Some((i, path)) = self.resolve(path) else {
                continue;
            };
            let folder = &self.folders[i];
            if path == folder.root() {
                // chmod/chown of the root may have made it unreadable.
                self.roots_due.insert(i);
                continue;
            }
            if folder.watching() && folder.wants(&path) {
                self.settling.touched(i, folder.window(), path, now);
            }
        }
    }

    /// Something arrived (a file or a whole folder moved in, a folder created): look at it.
    fn appeared(&mut self, paths: &[PathBuf]) {
        for path in paths {
            let Some((i, path)) = self.resolve(path) else {
                continue;
            };
            let folder = &self.folders[i];
            if path == folder.root() {
                self.roots_due.insert(i);
            } else if folder.watching() && !in_ignored_dir(folder.root(), &path) {
                self.to_scan.push((i, path));
            }
        }
    }

    /// Something went away (deleted, or moved out or to another name): forget it and
    /// anything under it, so memory follows what is on disk.
    fn vanished(&mut self, paths: &[PathBuf]) {
        for path in paths {
            let Some((i, path)) = self.resolve(path) else {
                continue;
            };
            if path == self.folders[i].root() {
                self.roots_due.insert(i);
                continue;
            }
            self.settling.vanished(&path);
        }
    }
}
