//! Settling: deciding when a file is complete from what was seen of it and when.
//!
//! Pure logic: nothing here touches a file or reads a clock. The watcher looks at files
//! (size, mtime, whether they open), reads the time from tokio's clock and passes both in as
//! [`Observation`]s and instants, so the tests below drive it with instants they choose.
//!
//! What must stay true:
//! - A file is reported only when a look finds its size and mtime unchanged since the previous
//!   look, at least its folder's window has passed since it was last seen changing, *and* it
//!   opened for reading. A copy or recording in progress is never reported half-written, and
//!   a file that keeps growing is reported once, after it stops.
//! - A change restarts the window: a write event at the instant it arrived; a change no event
//!   told of (a file system without notifications) at the look that found it.
//! - Within one run an unchanged file is reported once; again only if its size or mtime
//!   change. A link is refused at first sight, once per stamp, whatever its target does.
//! - Only unsettled files are held; a file that went away is forgotten with all under it.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// What "unchanged" means for a file: same size, same mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    size: u64,
    mtime: Option<SystemTime>,
}

impl Stamp {
    pub(super) fn of(md: &Metadata) -> Self {
        Self {
            size: md.len(),
            mtime: md.modified().ok(),
        }
    }
}

/// How often unsettled files are looked at: a few times per window, so a file is reported
/// within a fraction of the window after it settles, but never a busy loop.
pub(super) fn tick_for(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_millis(20), Duration::from_millis(500))
}

/// A file seen changing that has not yet been stable for its window.
#[derive(Debug)]
struct Candidate {
    folder: usize,
    window: Duration,
    /// Size and mtime at the last look; `None` until looked at.
    stamp: Option<Stamp>,
    /// When `stamp` was taken.
    looked: Instant,
    /// Since when the file has been seen unchanged: its last write event, or the look that
    /// found a change no event told of.
    since: Instant,
    warned_unopenable: bool,
}

impl Candidate {
    fn new(folder: usize, window: Duration, stamp: Option<Stamp>, at: Instant) -> Self {
        Self {
            folder,
            window,
            stamp,
            looked: at,
            since: at,
            warned_unopenable: false,
        }
    }

    /// Whether the window has passed at `at` (false for an event newer than `at`).
    fn settled_at(&self, at: Instant) -> bool {
        at.saturating_duration_since(self.since) >= self.window
    }

    /// When this candidate next needs a look, judged at `after`: at the end of its window, or
    /// at the next tick to catch changes the OS did not tell (and to retry a file that would
    /// not open).
    fn next_look(&self, after: Instant) -> Instant {
        let tick = after + tick_for(self.window);
        let due = self.since + self.window;
        if due > after { due.min(tick) } else { tick }
    }
}

/// What the watcher is to look at for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Look {
    pub(super) path: PathBuf,
    pub(super) folder: usize,
    /// The stamp at the previous look.
    pub(super) before: Option<Stamp>,
    /// Whether the window has passed: only then is opening worth trying, and only if the
    /// stamp still equals `before`. Opening is the last check, not a way to watch.
    pub(super) due: bool,
}

impl Look {
    /// Whether to try opening the file, now that its stamp is `now`: only when it is due and
    /// held still since the previous look.
    pub(super) fn wants_open(&self, now: Option<Stamp>) -> bool {
        self.due && now.is_some() && now == self.before
    }
}

/// What a look at a candidate found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observation {
    /// Size and mtime now (a link's own); `None` if it is gone or no longer a file.
    pub(super) stamp: Option<Stamp>,
    /// Whether it opened for reading; `None` if that was not tried.
    pub(super) opens: Option<bool>,
    /// Set when the path is a link or lies under one: what to tell the user.
    pub(super) refusal: Option<String>,
}

/// What one round of looks decided, each with the index of its folder.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Settled {
    pub(super) refused: Vec<(usize, PathBuf, String)>,
    pub(super) ready: Vec<(usize, PathBuf)>,
    /// Complete but would not open: to be said once, and reported once it opens.
    pub(super) unopenable: Vec<PathBuf>,
}

/// Every unsettled file and what was reported in this run.
#[derive(Debug)]
pub(super) struct Settling {
    candidates: BTreeMap<PathBuf, Candidate>,
    reported: BTreeMap<PathBuf, Stamp>,
    next_look: Instant,
}

impl Settling {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            candidates: BTreeMap::new(),
            reported: BTreeMap::new(),
            next_look: now,
        }
    }

    /// When the unsettled files next need a look; `None` when there are none.
    pub(super) fn next_look(&self) -> Option<Instant> {
        (!self.candidates.is_empty()).then_some(self.next_look)
    }

    /// A write event for `path` at `now`: its window (re)starts.
    pub(super) fn touched(&mut self, folder: usize, window: Duration, path: PathBuf, now: Instant) {
        self.candidates
            .entry(path)
            .and_modify(|c| c.since = now)
            .or_insert(Candidate::new(folder, window, None, now));
    }

    /// `path` found by a walk with `stamp` at `now`: a candidate from first sight, unless it
    /// is already one or was reported just like this.
    pub(super) fn found(
        &mut self,
        folder: usize,
        window: Duration,
        path: PathBuf,
        stamp: Stamp,
        now: Instant,
    ) {
        if self.reported.get(&path) == Some(&stamp) {
            return;
        }
        self.candidates
            .entry(path)
            .or_insert(Candidate::new(folder, window, Some(stamp), now));
    }

    /// `path` went away: forget it and everything under it, so memory follows the disk.
    pub(super) fn vanished(&mut self, path: &Path) {
        remove_subtree(&mut self.candidates, path);
        remove_subtree(&mut self.reported, path);
    }

    /// The folder stopped being watched: its unsettled files are found again by the walk
    /// when it comes back.
    pub(super) fn forget_folder(&mut self, folder: usize) {
        self.candidates.retain(|_, c| c.folder != folder);
    }

    /// What to look at, for a round of looks starting at `now`.
    pub(super) fn looks(&self, now: Instant) -> Vec<Look> {
        self.candidates
            .iter()
            .map(|(path, c)| Look {
                path: path.clone(),
                folder: c.folder,
                before: c.stamp,
                due: c.stamp.is_some() && c.settled_at(now),
            })
            .collect()
    }

    /// Takes in what a round of looks that started at `started` found, and plans the next
    /// round as of `after` (when the looks were done).
    pub(super) fn observe(
        &mut self,
        seen: Vec<(PathBuf, Observation)>,
        started: Instant,
        after: Instant,
    ) -> Settled {
        let mut settled = Settled::default();
        for (path, observation) in seen {
            self.observe_one(path, observation, started, &mut settled);
        }
        self.next_look = self
            .candidates
            .values()
            .map(|c| c.next_look(after))
            .min()
            .unwrap_or(after);
        settled
    }

    fn observe_one(
        &mut self,
        path: PathBuf,
        seen: Observation,
        started: Instant,
        out: &mut Settled,
    ) {
        let Some(candidate) = self.candidates.get_mut(&path) else {
            return;
        };
        let Some(now) = seen.stamp else {
            self.candidates.remove(&path);
            return;
        };
        if self.reported.get(&path) == Some(&now) {
            // Touched but not changed (chmod, a rewrite of the same bytes and time).
            self.candidates.remove(&path);
            return;
        }
        if let Some(message) = seen.refusal {
            let folder = candidate.folder;
            self.done(&path, now);
            out.refused.push((folder, path, message));
            return;
        }
        if candidate.stamp != Some(now) {
            // A change that a write event since the last look accounts for leaves the window
            // where that event put it; one that no event told of starts the window here.
            let told = candidate.since > candidate.looked;
            if candidate.stamp.is_some() && !told {
                candidate.since = candidate.since.max(started);
            }
            candidate.stamp = Some(now);
            candidate.looked = started;
            return;
        }
        candidate.looked = started;
        // Not yet: also when a write event arrived while the look was under way.
        if !candidate.settled_at(started) {
            return;
        }
        match seen.opens {
            Some(true) => {
                let folder = candidate.folder;
                self.done(&path, now);
                out.ready.push((folder, path));
            }
            Some(false) if !candidate.warned_unopenable => {
                candidate.warned_unopenable = true;
                out.unopenable.push(path);
            }
            _ => {}
        }
    }

    /// `path` was reported (or refused) as `stamp`: not again until it changes.
    fn done(&mut self, path: &Path, stamp: Stamp) {
        self.candidates.remove(path);
        self.reported.insert(path.to_owned(), stamp);
    }
}

/// Removes `prefix` and every path under it. Paths order component by component, so what is
/// under a directory sorts right after it.
fn remove_subtree<V>(map: &mut BTreeMap<PathBuf, V>, prefix: &Path) {
    let doomed: Vec<PathBuf> = map
        .range(prefix.to_path_buf()..)
        .take_while(|(path, _)| path.starts_with(prefix))
        .map(|(path, _)| path.clone())
        .collect();
    for path in doomed {
        map.remove(&path);
    }
}

#[cfg(test)]
mod tests;
