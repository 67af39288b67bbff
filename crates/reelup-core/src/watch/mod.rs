//! Watch folders: videos dropped, copied or recorded into a folder are reported once they are
//! complete, so the queue can take them without the user doing anything.
//!
//! What must stay true:
//! - A file is reported only after its size and mtime have held still for the folder's
//!   stability window *and* it opens for reading, so a copy or a recording in progress is
//!   never reported half-written, and a file that keeps growing is reported once, after it
//!   stops.
//! - Within one run an unchanged file is reported once; it is reported again only if its size
//!   or mtime change. (Across restarts the queue dedupes by fingerprint.)
//! - Links are never followed: a file in a watched folder that is a symbolic link (or lies
//!   under a linked folder) is refused with a [`WatchEvent::Refused`] naming it, never
//!   reported. A shared drop folder must not be a way to upload `~/.aws/credentials`.
//! - Junk never gets through: partial downloads, editor backups, hidden files and folders,
//!   other extensions, and the folder's own `uploaded/` (where [`move_to_uploaded`] puts
//!   finished files).
//! - Idle costs nothing measurable, whatever the number of files: changes come from the OS
//!   (inotify, FSEvents, ReadDirectoryChangesW), the tree is walked only when a watch is
//!   (re)established, and only unsettled files are looked at again. The one periodic cost is a
//!   `stat` of each watched root every [`ROOT_CHECK_EVERY`], which is how a folder that went
//!   missing is noticed coming back.
//! - The watcher's time is tokio's clock, read only by the watch task and handed to settling,
//!   which never reads a clock or a file itself.
//!
//! Where things live:
//!
//! | file         | what it holds                                                             |
//! |--------------|---------------------------------------------------------------------------|
//! | `mod.rs`     | the public types ([`WatchSpec`], [`WatchEvent`], …) and [`FolderWatcher`] |
//! | `settle.rs`  | settling as pure logic: observations and instants in, "ready" out         |
//! | `filter.rs`  | ignored names and places, extensions ([`is_ignored`])                     |
//! | `roots.rs`   | watched roots, directory identity, missing/unreadable roots, link refusal |
//! | `moves.rs`   | after-upload moves into `uploaded/` ([`move_to_uploaded`])                |
//! | `task.rs`    | the watch task: notify + tokio, root checks, rounds of looks              |
//! | `events.rs`  | the OS's notifications turned into the watch task's work                  |
//! | `scan.rs`    | reading the disk: walks that find files, looks at unsettled ones          |
//! | `uploads.rs` | watch folders feeding the upload queue (what the CLI and the app run)     |

mod events;
mod filter;
mod moves;
mod roots;
mod scan;
mod settle;
mod task;
pub mod uploads;

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecommendedWatcher, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use filter::is_ignored;
pub use moves::move_to_uploaded;
use roots::Folder;
pub use roots::first_link;
use task::WatchTask;

/// How long a file must stay the same before it counts as complete, unless a folder says
/// otherwise. Long enough for a copy that stalls on a slow card reader or network share.
pub const DEFAULT_STABLE_FOR: Duration = Duration::from_secs(3);

/// The subfolder of a watched folder that finished files are moved into. Never reported, so
/// moving a file there can never queue it a second time.
pub const UPLOADED_DIR: &str = "uploaded";

/// How often each watched root is `stat`ed to notice it vanishing, being replaced, or coming
/// back. A `stat` of one directory: this is the watcher's only periodic work.
pub const ROOT_CHECK_EVERY: Duration = Duration::from_secs(2);

/// After the OS refused a watch (typically the inotify watch limit), establishing it again is
/// tried this often rather than at every root check, because each try walks the whole tree.
const SETUP_RETRY_EVERY: Duration = Duration::from_secs(60);

/// One folder to watch and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    pub folder: PathBuf,
    /// Also watch every subfolder (except hidden ones and `uploaded/`), including ones made
    /// later.
    pub recursive: bool,
    /// Extensions to report, lower-case, without the dot; empty means
    /// [`VIDEO_EXTENSIONS`](crate::VIDEO_EXTENSIONS).
    pub extensions: Vec<String>,
    /// How long size and mtime must hold still before a file counts as complete.
    pub stable_for: Duration,
}

impl WatchSpec {
    /// Recursive, the default video extensions, [`DEFAULT_STABLE_FOR`].
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        Self {
            folder: folder.into(),
            recursive: true,
            extensions: Vec::new(),
            stable_for: DEFAULT_STABLE_FOR,
        }
    }
}

/// Whether a watched folder is being watched, and if not, why, in words for the user that
/// name the folder and the fix. A folder that is not watched recovers by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderState {
    Watching,
    Missing { message: String },
    Unreadable { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// `path` is complete and may be queued. `folder` is the watched folder as given in its
    /// [`WatchSpec`], and `path` lies under it.
    Ready { folder: PathBuf, path: PathBuf },
    /// The folder's state, sent for every folder at start and on every change.
    Folder { folder: PathBuf, state: FolderState },
    /// `path` would have been reported but is a symbolic link, or lies under a linked
    /// folder; `message` says so, for the user. Sent once per link (again if it changes).
    Refused {
        folder: PathBuf,
        path: PathBuf,
        message: String,
    },
}

/// Why watching could not start at all. Problems with one folder are not errors: they are a
/// [`FolderState`], because they can go away.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "watch folders need a running tokio runtime; start the watcher from inside one (an async fn under #[tokio::main])"
    )]
    NoRuntime,

    #[error("a watch folder has an empty path; give the folder to watch")]
    EmptyFolder,

    #[error(
        "watch folder {}: not an absolute path, and the current directory is unknown ({reason}); give the full path",
        folder.display()
    )]
    RelativeFolder { folder: PathBuf, reason: String },

    #[error("cannot start watching folders ({reason}); {}", backend_hint())]
    Backend { reason: String },
}

fn backend_hint() -> &'static str {
    crate::platform::watch_backend_hint()
}

/// A running set of watch folders. Watching stops when the `stop` token given to
/// [`FolderWatcher::start`] is cancelled or when this is dropped.
#[derive(Debug)]
pub struct FolderWatcher {
    cancel: DropGuard,
    task: JoinHandle<()>,
}

impl FolderWatcher {
    /// Starts watching; events go to `events`. Runs until `stop` is cancelled or the returned
    /// `FolderWatcher` is dropped (or `events` is closed). Must be called inside a tokio
    /// runtime.
    ///
    /// Every folder gets a [`WatchEvent::Folder`] first; files already in a watching folder
    /// are then found by a scan and reported like new ones, once they are stable.
    pub fn start(
        specs: Vec<WatchSpec>,
        events: mpsc::Sender<WatchEvent>,
        stop: CancellationToken,
    ) -> Result<FolderWatcher, WatchError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
        let folders = specs
            .into_iter()
            .map(Folder::new)
            .collect::<Result<Vec<_>, _>>()?;

        // notify calls this on its own thread; the watch task drains it. Unbounded
        // because notify must never block; its volume is bounded by what the OS queues.
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let watcher = RecommendedWatcher::new(
            move |event| {
                let _ = raw_tx.send(event);
            },
            // Linked folders are not watched into: nothing outside the folder, no loops.
            notify::Config::default().with_follow_symlinks(false),
        )
        .map_err(|e| WatchError::Backend {
            reason: e.to_string(),
        })?;

        let stop = stop.child_token();
        let task_state = WatchTask::new(folders, watcher, raw_rx, events);
        let task = runtime.spawn(task_state.run(stop.clone()));
        Ok(FolderWatcher {
            cancel: stop.drop_guard(),
            task,
        })
    }

    /// Stops watching and waits until the watcher has let go of every folder.
    pub async fn shutdown(self) {
        let FolderWatcher { cancel, task } = self;
        drop(cancel);
        let _ = task.await;
    }
}
