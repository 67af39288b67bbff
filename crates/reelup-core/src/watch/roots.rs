//! Watch roots: the folders the user chose, which directory each one is right now, and the
//! links that are never followed under them.
//!
//! What must stay true:
//! - A root that goes missing, turns unreadable or is replaced by another directory is
//!   noticed by one `stat` per [`ROOT_CHECK_EVERY`](super::ROOT_CHECK_EVERY), said to the user
//!   as a [`FolderState`] naming the folder and the fix, and watched again by itself once it is
//!   back. A root is "the same" while its [`Identity`] (device and inode) is.
//! - Links are never followed: the root itself is used whatever it is (the user chose it), but
//!   any link below it, to a file or to a folder, is refused with a message naming it.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use tokio::time::Instant;

use super::filter::{is_ignored, normalise_extensions};
use super::{FolderState, WatchError, WatchSpec};

/// Which directory a root is: a different one after it was deleted and made again, or when a
/// drive was mounted on it or taken away (the path stays, the device changes).
pub(super) type Identity = crate::platform::DirIdentity;

/// One watched folder as the watcher keeps it.
pub(super) struct Folder {
    pub(super) spec: WatchSpec,
    /// Other spellings of the root that the OS may report events under (macOS reports
    /// `/private/var/...` for `/var/...`).
    pub(super) aliases: Vec<PathBuf>,
    /// `None` until the first check has told the user something.
    pub(super) state: Option<FolderState>,
    pub(super) identity: Identity,
    /// Whether the OS watch is established on the root.
    pub(super) watched: bool,
    /// After the OS refused the watch: not before this instant (on tokio's clock).
    pub(super) retry_at: Option<Instant>,
}

impl Folder {
    /// A relative folder is taken against the current directory now, once: the watcher must
    /// not change what it watches if the process later changes directory.
    pub(super) fn new(mut spec: WatchSpec) -> Result<Self, WatchError> {
        if spec.folder.as_os_str().is_empty() {
            return Err(WatchError::EmptyFolder);
        }
        if !spec.folder.is_absolute() {
            let cwd = std::env::current_dir().map_err(|e| WatchError::RelativeFolder {
                folder: spec.folder.clone(),
                reason: e.to_string(),
            })?;
            spec.folder = cwd.join(&spec.folder);
        }
        normalise_extensions(&mut spec.extensions);
        Ok(Self {
            spec,
            aliases: Vec::new(),
            state: None,
            identity: None,
            watched: false,
            retry_at: None,
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.spec.folder
    }

    pub(super) fn mode(&self) -> RecursiveMode {
        if self.spec.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        }
    }

    pub(super) fn watching(&self) -> bool {
        self.state == Some(FolderState::Watching)
    }

    /// Whether the OS watch is up and the root still the directory it was set up on.
    pub(super) fn watched_as(&self, identity: Identity) -> bool {
        self.watching() && self.watched && self.identity == identity
    }

    pub(super) fn window(&self) -> Duration {
        self.spec.stable_for
    }

    /// Whether the file at `path` (spelled under the root) may be reported.
    pub(super) fn wants(&self, path: &Path) -> bool {
        !is_ignored(self.root(), path, &self.spec.extensions)
            && (self.spec.recursive || path.parent() == Some(self.root()))
    }
}

/// What a look at a root found.
pub(super) enum RootProbe {
    Missing,
    NotADir,
    Unreadable(io::Error),
    /// Still the same directory as before; not listed again.
    Unchanged,
    /// Present and listable, with its identity and canonical spelling.
    Readable(Identity, Option<PathBuf>),
}

/// Looks at a root. With `known` (the identity of a root being watched fine), a root that is
/// still that directory is `Unchanged` after one `stat`; otherwise it is also listed, since
/// only reading it proves it readable.
pub(super) fn probe_root(root: &Path, known: Option<Identity>) -> RootProbe {
    let md = match fs::metadata(root) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return RootProbe::Missing,
        Err(e) => return RootProbe::Unreadable(e),
    };
    if !md.is_dir() {
        return RootProbe::NotADir;
    }
    let identity = identity(&md);
    if known == Some(identity) {
        return RootProbe::Unchanged;
    }
    match fs::read_dir(root) {
        Ok(_) => RootProbe::Readable(identity, fs::canonicalize(root).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => RootProbe::Missing,
        Err(e) => RootProbe::Unreadable(e),
    }
}

fn identity(md: &Metadata) -> Identity {
    crate::platform::dir_identity(md)
}

/// The state to tell the user when a probe found the root gone or unusable, in words that
/// name the folder and the fix; `None` when the root can be watched.
pub(super) fn lost(root: &Path, probe: &RootProbe) -> Option<FolderState> {
    let root = root.display();
    let state = match probe {
        RootProbe::Unchanged | RootProbe::Readable(..) => return None,
        RootProbe::Missing => FolderState::Missing {
            message: format!(
                "{root} is missing: it was deleted or renamed, or its drive is not connected; recreate the folder or reconnect the drive and watching resumes by itself"
            ),
        },
        RootProbe::NotADir => FolderState::Unreadable {
            message: format!(
                "{root} is a file, not a folder; move the file away or choose another folder to watch, and watching resumes by itself"
            ),
        },
        RootProbe::Unreadable(e) => FolderState::Unreadable {
            message: format!(
                "cannot read {root} ({e}); give Reelup read access to the folder or choose another one, and watching resumes by itself"
            ),
        },
    };
    Some(state)
}

/// The state to tell the user when the OS refused to watch `root`.
pub(super) fn watch_refused(root: &Path, e: &notify::Error) -> FolderState {
    let hint = if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
        "the system's limit on watched folders is reached: raise it (sysctl -w fs.inotify.max_user_watches=524288) or watch fewer subfolders; Reelup tries again every minute"
    } else {
        "check the folder and its permissions; Reelup tries again every minute"
    };
    FolderState::Unreadable {
        message: format!("cannot watch {} ({e}); {hint}", root.display()),
    }
}

/// The first component of `path` below `root` (`root` itself excluded: the user chose it)
/// that is a symbolic link; components that do not exist end the search.
pub fn first_link(root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for component in rel.components() {
        at.push(component);
        match fs::symlink_metadata(&at) {
            Ok(md) if md.file_type().is_symlink() => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// What to tell the user about a link found at `link` on the way to `path` (said after
/// the path).
pub(super) fn refusal(path: &Path, link: &Path) -> String {
    let target = fs::read_link(link)
        .map(|t| format!(" (to {})", t.display()))
        .unwrap_or_default();
    let what = if link == path {
        format!("it is a symbolic link{target}")
    } else {
        format!("it is inside {}, a symbolic link{target}", link.display())
    };
    format!(
        "not uploaded: {what}; watch folders never follow links. Put the video itself in the folder to upload it"
    )
}
