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

pub mod uploads;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::is_video;

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

/// Names that are a file still being written by a browser, a downloader or an editor. The
/// finished file appears under its real name (a rename), which is what gets reported.
const JUNK_SUFFIXES: &[&str] = &[".part", ".crdownload", ".tmp", ".download", "~"];

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

        // notify calls this on its own thread; the engine drains it in its task. Unbounded
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
        let engine = Engine {
            next_settle: Instant::now(),
            folders,
            watcher: Arc::new(Mutex::new(watcher)),
            raw: raw_rx,
            events,
            candidates: BTreeMap::new(),
            reported: BTreeMap::new(),
            to_scan: Vec::new(),
            roots_due: HashSet::new(),
        };
        let task = runtime.spawn(engine.run(stop.clone()));
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

/// Whether `path` (a file under the watched `folder`) is never to be reported: outside the
/// folder, hidden or inside a hidden folder, inside the folder's `uploaded/`, a file still
/// being downloaded or an editor's backup, or not one of `extensions` (lower-case, no dot;
/// empty = the default video extensions).
///
/// Path components are compared as they are, so `folder` must be spelled the way `path` is.
pub fn is_ignored(folder: &Path, path: &Path, extensions: &[String]) -> bool {
    if in_ignored_dir(folder, path) {
        return true;
    }
    let Some(name) = path.file_name() else {
        return true;
    };
    let name_lower = name.to_string_lossy().to_lowercase();
    if JUNK_SUFFIXES.iter().any(|s| name_lower.ends_with(s)) {
        return true;
    }
    if extensions.is_empty() {
        return !is_video(path);
    }
    !path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        extensions
            .iter()
            .any(|x| x.trim_start_matches('.').eq_ignore_ascii_case(e))
    })
}

/// Whether anything at `path` is out of bounds by place alone: outside `folder`, the folder
/// itself, hidden (any component starting with a dot), or under the folder's `uploaded/`.
/// Used for directories too, so a hidden or `uploaded/` subtree is never walked.
fn in_ignored_dir(folder: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(folder) else {
        return true;
    };
    let mut components = rel.components().peekable();
    if components.peek().is_none() {
        return true;
    }
    for (i, component) in components.enumerate() {
        let Component::Normal(name) = component else {
            return true;
        };
        if name.as_encoded_bytes().starts_with(b".") {
            return true;
        }
        // Case-insensitively: on macOS and Windows `Uploaded/` is the same folder.
        if i == 0 && name.eq_ignore_ascii_case(UPLOADED_DIR) {
            return true;
        }
    }
    false
}

/// Moves `file` (under the watched `folder`) into `<folder>/uploaded/`, at the same path
/// relative to the folder, and returns where it went. Never overwrites: if the name is taken
/// the file becomes "name (2).ext", "name (3).ext", and so on. Creates folders as needed.
///
/// The file keeps its bytes and mtime. The watcher never reports anything under `uploaded/`,
/// so this cannot queue the file again.
pub fn move_to_uploaded(folder: &Path, file: &Path) -> io::Result<PathBuf> {
    let rel = file.strip_prefix(folder).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not inside the watch folder {}",
                file.display(),
                folder.display()
            ),
        )
    })?;
    if rel
        .components()
        .next()
        .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(UPLOADED_DIR))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is already in {UPLOADED_DIR}/", file.display()),
        ));
    }
    let Some(name) = rel.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is the watch folder itself, not a file in it",
                file.display()
            ),
        ));
    };
    let dest_dir = match rel.parent() {
        Some(parent) => folder.join(UPLOADED_DIR).join(parent),
        None => folder.join(UPLOADED_DIR),
    };
    // A linked `uploaded/` (or a linked folder inside it) would carry the file wherever the
    // link points: somebody else's folder, a synced share. Only real folders are used.
    if let Some(link) = first_link(folder, &dest_dir) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; Reelup moves uploaded files only into real folders, so {} stays where it is. Replace the link with a folder",
                link.display(),
                file.display()
            ),
        ));
    }
    fs::create_dir_all(&dest_dir)?;
    for n in 1..=10_000u32 {
        let dest = dest_dir.join(numbered(Path::new(name), n));
        match move_no_clobber(file, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} has 10000 files named like {}; clear some out",
            dest_dir.display(),
            name.to_string_lossy()
        ),
    ))
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
fn refusal(path: &Path, link: &Path) -> String {
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

/// `name` for n = 1, else "stem (n).ext".
fn numbered(name: &Path, n: u32) -> OsString {
    if n == 1 {
        return name.as_os_str().to_owned();
    }
    let mut out = name.file_stem().unwrap_or_default().to_owned();
    out.push(format!(" ({n})"));
    if let Some(ext) = name.extension() {
        out.push(".");
        out.push(ext);
    }
    out
}

/// Moves `from` to `to` unless `to` exists. A hard link fails atomically when `to` exists, so
/// where links work nothing is ever overwritten; on file systems without them (FAT, exFAT,
/// some shares) it checks first and renames, which a racing writer could in theory beat.
fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).inspect_err(|_| {
            // Leave one copy, where it was, rather than two.
            let _ = fs::remove_file(to);
        }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
    }
}

/// What "unchanged" means for a file: same size, same mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: Option<SystemTime>,
}

impl Stamp {
    fn of(md: &Metadata) -> Self {
        Self {
            size: md.len(),
            mtime: md.modified().ok(),
        }
    }
}

/// Which directory a root is: a different one after it was deleted and made again, or when a
/// drive was mounted on it or taken away (the path stays, the device changes).
type Identity = crate::platform::DirIdentity;

fn identity(md: &Metadata) -> Identity {
    crate::platform::dir_identity(md)
}

struct Folder {
    spec: WatchSpec,
    /// Other spellings of the root that the OS may report events under (macOS reports
    /// `/private/var/...` for `/var/...`).
    aliases: Vec<PathBuf>,
    /// `None` until the first check has told the user something.
    state: Option<FolderState>,
    identity: Identity,
    watched: bool,
    retry_at: Option<Instant>,
}

impl Folder {
    fn new(mut spec: WatchSpec) -> Result<Self, WatchError> {
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
        for ext in &mut spec.extensions {
            *ext = ext.trim_start_matches('.').to_ascii_lowercase();
        }
        Ok(Self {
            spec,
            aliases: Vec::new(),
            state: None,
            identity: None,
            watched: false,
            retry_at: None,
        })
    }

    fn root(&self) -> &Path {
        &self.spec.folder
    }

    fn mode(&self) -> RecursiveMode {
        if self.spec.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        }
    }

    fn watching(&self) -> bool {
        self.state == Some(FolderState::Watching)
    }

    /// Whether the file at `path` (spelled under the root) may be reported.
    fn wants(&self, path: &Path) -> bool {
        !is_ignored(self.root(), path, &self.spec.extensions)
            && (self.spec.recursive || path.parent() == Some(self.root()))
    }

    /// How often unsettled files are looked at: a few times per window, so a file is
    /// reported within a fraction of the window after it settles.
    fn tick(&self) -> Duration {
        (self.spec.stable_for / 4).clamp(Duration::from_millis(20), Duration::from_millis(500))
    }
}

/// A file seen changing that has not yet been stable for its folder's window.
struct Candidate {
    folder: usize,
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
    fn new(folder: usize, stamp: Option<Stamp>, at: Instant) -> Self {
        Self {
            folder,
            stamp,
            looked: at,
            since: at,
            warned_unopenable: false,
        }
    }
}

/// Where the watch task was told the events receiver is gone: nothing more to do.
struct Closed;

/// The watch task's state. Only unsettled files are held in `candidates`; `reported` holds
/// what was reported in this run, so an unchanged file is not reported twice, and loses
/// entries as files go away.
struct Engine {
    folders: Vec<Folder>,
    watcher: Arc<Mutex<RecommendedWatcher>>,
    raw: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    events: mpsc::Sender<WatchEvent>,
    candidates: BTreeMap<PathBuf, Candidate>,
    reported: BTreeMap<PathBuf, Stamp>,
    /// Paths that appeared (moved in, created folders, or whole roots after a (re)watch) and
    /// need a look or a walk, with their folder.
    to_scan: Vec<(usize, PathBuf)>,
    /// Roots that had an event of their own and need a full check now.
    roots_due: HashSet<usize>,
    next_settle: Instant,
}

enum Wake {
    Stop,
    Raw(Option<notify::Result<notify::Event>>),
    CheckRoots,
    Settle,
}

/// What a look at a root found.
enum RootProbe {
    Missing,
    NotADir,
    Unreadable(io::Error),
    /// Still the same directory as before; not listed again.
    Unchanged,
    /// Present and listable, with its identity and canonical spelling.
    Readable(Identity, Option<PathBuf>),
}

impl Engine {
    async fn run(mut self, stop: CancellationToken) {
        let _ = self.work(&stop).await;
        tracing::debug!("watch folders: stopped");
    }

    async fn work(&mut self, stop: &CancellationToken) -> Result<(), Closed> {
        for i in 0..self.folders.len() {
            self.check_root(i, true).await?;
        }
        let mut root_checks = tokio::time::interval_at(
            tokio::time::Instant::now() + ROOT_CHECK_EVERY,
            ROOT_CHECK_EVERY,
        );
        root_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
            let settle_at = (!self.candidates.is_empty()).then_some(self.next_settle);
            let wake = tokio::select! {
                biased;
                _ = stop.cancelled() => Wake::Stop,
                _ = self.events.closed() => Wake::Stop,
                raw = self.raw.recv() => Wake::Raw(raw),
                _ = root_checks.tick() => Wake::CheckRoots,
                _ = tokio::time::sleep_until(settle_at.unwrap_or_else(Instant::now).into()),
                    if settle_at.is_some() => Wake::Settle,
            };
            match wake {
                Wake::Stop | Wake::Raw(None) => return Ok(()),
                Wake::Raw(Some(event)) => self.on_event(event),
                Wake::CheckRoots => {
                    for i in 0..self.folders.len() {
                        self.check_root(i, false).await?;
                    }
                }
                Wake::Settle => self.settle().await?,
            }
        }
    }

    /// Turns one notification into candidates, vanished files, paths to scan and roots to
    /// check. Touches no file: a busy writer can cause thousands of these a second.
    fn on_event(&mut self, event: notify::Result<notify::Event>) {
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
        let now = Instant::now();
        match event.kind {
            // Opening, reading and closing after reading change nothing, and reading is what
            // this watcher and the uploader do.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                self.touched(&event.paths, now)
            }
            EventKind::Access(_) => {}
            EventKind::Create(CreateKind::File)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_)) => {
                self.touched(&event.paths, now)
            }
            EventKind::Create(_) => self.appeared(&event.paths),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                self.vanished(&event.paths)
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => self.appeared(&event.paths),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = event.paths.as_slice() {
                    self.vanished(std::slice::from_ref(from));
                    self.appeared(std::slice::from_ref(to));
                }
            }
            // Which end of a rename is not said (macOS): forget the path, then look.
            EventKind::Modify(ModifyKind::Name(_)) => {
                self.vanished(&event.paths);
                self.appeared(&event.paths);
            }
            // A write of some kind (Windows says no more than this).
            EventKind::Modify(_) => self.touched(&event.paths, now),
            // Nothing said at all: a change to a file, or a folder to look into.
            EventKind::Any | EventKind::Other => {
                self.touched(&event.paths, now);
                self.appeared(&event.paths);
            }
        }
    }

    /// The watched folder a reported path belongs to, and the path spelled under that
    /// folder's root (the innermost folder, if watched folders nest).
    fn resolve(&self, path: &Path) -> Option<(usize, PathBuf)> {
        let mut best: Option<(usize, usize, PathBuf)> = None;
        for (i, folder) in self.folders.iter().enumerate() {
            for base in
                std::iter::once(folder.root()).chain(folder.aliases.iter().map(|p| p.as_path()))
            {
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
            if !folder.watching() || !folder.wants(&path) {
                continue;
            }
            self.candidates
                .entry(path)
                .and_modify(|c| c.since = now)
                .or_insert(Candidate::new(i, None, now));
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
            remove_subtree(&mut self.candidates, &path);
            remove_subtree(&mut self.reported, &path);
        }
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
            if !self.folders[i].watching() || self.reported.get(&path) == Some(&stamp) {
                continue;
            }
            self.candidates
                .entry(path)
                .or_insert(Candidate::new(i, Some(stamp), now));
        }
    }

    /// Looks at every unsettled file: a change restarts its window; one unchanged for the
    /// whole window that opens for reading is reported and forgotten.
    async fn settle(&mut self) -> Result<(), Closed> {
        let started = Instant::now();
        let looks: Vec<(PathBuf, PathBuf, Option<Stamp>, bool)> = self
            .candidates
            .iter()
            .map(|(path, c)| {
                let window = self.folders[c.folder].spec.stable_for;
                let due = c.stamp.is_some() && started.duration_since(c.since) >= window;
                let root = self.folders[c.folder].root().to_owned();
                (path.clone(), root, c.stamp, due)
            })
            .collect();
        let seen = tokio::task::spawn_blocking(move || {
            looks
                .into_iter()
                .map(|(path, root, before, due)| {
                    // A link is refused at first sight, whatever its target does: its own
                    // stamp says whether it changed.
                    if let Some(link) = first_link(&root, &path) {
                        let now = fs::symlink_metadata(&path).ok().map(|md| Stamp::of(&md));
                        return (path.clone(), now, None, Some(refusal(&path, &link)));
                    }
                    let now = fs::symlink_metadata(&path)
                        .ok()
                        .filter(|md| md.is_file())
                        .map(|md| Stamp::of(&md));
                    // Only a file that held still is opened: opening is the last check, not
                    // a way to watch.
                    let opens = (due && now.is_some() && now == before)
                        .then(|| fs::File::open(&path).is_ok());
                    (path, now, opens, None)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();

        // What happened while we looked counts: a write during the look restarts the window.
        while let Ok(event) = self.raw.try_recv() {
            self.on_event(event);
        }

        let mut ready = Vec::new();
        let mut refused = Vec::new();
        for (path, now, opens, link) in seen {
            let Some(candidate) = self.candidates.get_mut(&path) else {
                continue;
            };
            let Some(now) = now else {
                self.candidates.remove(&path);
                continue;
            };
            if self.reported.get(&path) == Some(&now) {
                // Touched but not changed (chmod, a rewrite of the same bytes and time).
                self.candidates.remove(&path);
                continue;
            }
            if let Some(message) = link {
                let folder = candidate.folder;
                self.candidates.remove(&path);
                self.reported.insert(path.clone(), now);
                refused.push((folder, path, message));
                continue;
            }
            if candidate.stamp != Some(now) {
                // A change that a write event since the last look accounts for leaves the
                // window where that event put it; one that no event told of (a file system
                // without notifications) starts the window at this look.
                let told = candidate.since > candidate.looked;
                if candidate.stamp.is_some() && !told {
                    candidate.since = candidate.since.max(started);
                }
                candidate.stamp = Some(now);
                candidate.looked = started;
                continue;
            }
            candidate.looked = started;
            if candidate.since > started {
                continue;
            }
            match opens {
                Some(true) => {
                    let folder = candidate.folder;
                    self.candidates.remove(&path);
                    self.reported.insert(path.clone(), now);
                    ready.push((folder, path));
                }
                Some(false) if !candidate.warned_unopenable => {
                    candidate.warned_unopenable = true;
                    tracing::warn!(
                        "watch folders: {} is complete but cannot be opened for reading; it is reported once it can",
                        path.display()
                    );
                }
                _ => {}
            }
        }

        let after = Instant::now();
        self.next_settle = self
            .candidates
            .values()
            .map(|c| {
                // At the end of the window, or at the next tick to catch changes the OS did
                // not tell (and to retry a file that would not open).
                let folder = &self.folders[c.folder];
                let tick = after + folder.tick();
                let due = c.since + folder.spec.stable_for;
                if due > after { due.min(tick) } else { tick }
            })
            .min()
            .unwrap_or(after);

        for (i, path, message) in refused {
            tracing::warn!("watch folders: {}: {message}", path.display());
            self.send(WatchEvent::Refused {
                folder: self.folders[i].root().to_owned(),
                path,
                message,
            })
            .await?;
        }
        for (i, path) in ready {
            self.send(WatchEvent::Ready {
                folder: self.folders[i].root().to_owned(),
                path,
            })
            .await?;
        }
        Ok(())
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
        match probe {
            RootProbe::Unchanged => Ok(()),
            RootProbe::Missing => {
                let message = format!(
                    "{} is missing: it was deleted or renamed, or its drive is not connected; recreate the folder or reconnect the drive and watching resumes by itself",
                    root.display()
                );
                self.lose(i, FolderState::Missing { message }).await
            }
            RootProbe::NotADir => {
                let message = format!(
                    "{} is a file, not a folder; move the file away or choose another folder to watch, and watching resumes by itself",
                    root.display()
                );
                self.lose(i, FolderState::Unreadable { message }).await
            }
            RootProbe::Unreadable(e) => {
                let message = format!(
                    "cannot read {} ({e}); give Reelup read access to the folder or choose another one, and watching resumes by itself",
                    root.display()
                );
                self.lose(i, FolderState::Unreadable { message }).await
            }
            RootProbe::Readable(identity, canonical) => {
                let folder = &mut self.folders[i];
                if folder.watching() && folder.watched && folder.identity == identity {
                    return Ok(());
                }
                if folder.retry_at.is_some_and(|at| Instant::now() < at) {
                    return Ok(());
                }
                folder.aliases = canonical.into_iter().filter(|c| *c != root).collect();
                let mode = folder.mode();
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
                        // Whatever arrived while nobody watched.
                        self.to_scan.push((i, root.clone()));
                        self.set_state(i, FolderState::Watching).await
                    }
                    Err(e) => {
                        folder.watched = false;
                        folder.retry_at = Some(Instant::now() + SETUP_RETRY_EVERY);
                        let hint = if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                            "the system's limit on watched folders is reached: raise it (sysctl -w fs.inotify.max_user_watches=524288) or watch fewer subfolders; Reelup tries again every minute"
                        } else {
                            "check the folder and its permissions; Reelup tries again every minute"
                        };
                        let message = format!("cannot watch {} ({e}); {hint}", root.display());
                        self.forget_folder(i);
                        self.set_state(i, FolderState::Unreadable { message }).await
                    }
                }
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
        self.candidates.retain(|_, c| c.folder != i);
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
}

/// Looks at a root. With `known` (the identity of a root being watched fine), a root that is
/// still that directory is `Unchanged` after one `stat`; otherwise it is also listed, since
/// only reading it proves it readable.
fn probe_root(root: &Path, known: Option<Identity>) -> RootProbe {
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

/// One walk, run on a blocking thread: `start` is a file or a directory under `root`.
struct ScanJob {
    folder: usize,
    root: PathBuf,
    recursive: bool,
    extensions: Vec<String>,
    start: PathBuf,
}

impl ScanJob {
    /// Nothing is followed: a linked directory is not walked (no loops, nothing outside the
    /// folder) and a link to a file becomes a candidate only to be refused by `settle`.
    /// The root itself is walked whatever it is: the user chose it.
    fn run(&self, found: &mut Vec<(usize, PathBuf, Stamp)>) {
        let md = if self.start == self.root {
            fs::metadata(&self.start)
        } else {
            fs::symlink_metadata(&self.start)
        };
        let Ok(md) = md else {
            return;
        };
        if md.is_file() || md.file_type().is_symlink() {
            self.consider(&self.start, &md, found);
            return;
        }
        if !md.is_dir() || (self.start != self.root && !self.recursive) {
            return;
        }
        let mut dirs = vec![self.start.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if self.recursive && !in_ignored_dir(&self.root, &path) {
                        dirs.push(path);
                    }
                } else if !is_ignored(&self.root, &path, &self.extensions)
                    && let Ok(md) = fs::symlink_metadata(&path)
                {
                    self.consider(&path, &md, found);
                }
            }
        }
    }

    fn consider(&self, path: &Path, md: &Metadata, found: &mut Vec<(usize, PathBuf, Stamp)>) {
        let wanted = (md.is_file() || md.file_type().is_symlink())
            && !is_ignored(&self.root, path, &self.extensions)
            && (self.recursive || path.parent() == Some(self.root.as_path()));
        if wanted {
            found.push((self.folder, path.to_owned(), Stamp::of(md)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered(Path::new("clip.mp4"), 1), "clip.mp4");
        assert_eq!(numbered(Path::new("clip.mp4"), 2), "clip (2).mp4");
        assert_eq!(numbered(Path::new("clip"), 3), "clip (3)");
        assert_eq!(numbered(Path::new("a.b.mov"), 2), "a.b (2).mov");
    }

    #[test]
    fn subtrees_are_removed_and_neighbours_kept() {
        let mut map = BTreeMap::new();
        for p in [
            "/w/a",
            "/w/a/x.mp4",
            "/w/a/b/y.mp4",
            "/w/a-b.mp4",
            "/w/ab.mp4",
            "/w/b.mp4",
        ] {
            map.insert(PathBuf::from(p), ());
        }
        remove_subtree(&mut map, Path::new("/w/a"));
        let left: Vec<_> = map.keys().map(|p| p.to_str().unwrap_or_default()).collect();
        assert_eq!(left, ["/w/a-b.mp4", "/w/ab.mp4", "/w/b.mp4"]);
    }
}
