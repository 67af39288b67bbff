//! Watch folders against the real file system and the OS's own notifications (inotify here),
//! with short stability windows. Each test says what would break if the watcher got it wrong:
//! a half-written file queued, a file queued twice, junk queued, or a folder lost for good.
//!
//! Two clocks. Where the behaviour under test is timing (the stability window, a file that
//! keeps growing), the test runs on tokio's paused clock and moves time itself; settling's
//! finer cases (a file that will not open, a write during a look) are unit tests in
//! `src/watch/settle/tests.rs`. The other tests are about which events inotify delivers
//! (creates, renames, deletes, whole folders): those arrive on the OS's own schedule, which a
//! paused clock would skip past, so they wait on the real clock, a window or a few at a time.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reelup_core::watch::{
    FolderState, FolderWatcher, WatchEvent, WatchSpec, is_ignored, move_to_uploaded,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_millis(400);
/// Longest any expected event may take, on a busy two-core machine.
const PATIENCE: Duration = Duration::from_secs(10);

fn spec(folder: &Path, recursive: bool, stable_for: Duration) -> WatchSpec {
    WatchSpec {
        folder: folder.to_owned(),
        recursive,
        extensions: Vec::new(),
        stable_for,
    }
}

struct Watch {
    watcher: Option<FolderWatcher>,
    events: mpsc::Receiver<WatchEvent>,
    stop: CancellationToken,
    /// Everything received, for the failure message.
    log: Vec<WatchEvent>,
}

impl Watch {
    fn start(specs: Vec<WatchSpec>) -> Self {
        let (tx, events) = mpsc::channel(4096);
        let stop = CancellationToken::new();
        let watcher = FolderWatcher::start(specs, tx, stop.clone()).expect("start watching");
        Self {
            watcher: Some(watcher),
            events,
            stop,
            log: Vec::new(),
        }
    }

    /// Starts watching one folder and waits until it is watched.
    async fn watching(folder: &Path, recursive: bool, stable_for: Duration) -> Self {
        let mut watch = Self::start(vec![spec(folder, recursive, stable_for)]);
        watch.state(folder, |s| *s == FolderState::Watching).await;
        watch
    }

    async fn next(&mut self, within: Duration) -> Option<WatchEvent> {
        let event = tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()?;
        self.log.push(event.clone());
        Some(event)
    }

    /// Waits for an event `pick` accepts, passing over the others.
    async fn until<T>(&mut self, what: &str, mut pick: impl FnMut(&WatchEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                None => panic!("no {what} within {PATIENCE:?}; received {:#?}", self.log),
            }
        }
    }

    async fn state(&mut self, folder: &Path, want: impl Fn(&FolderState) -> bool) -> FolderState {
        self.until(
            &format!("wanted state of {}", folder.display()),
            |e| match e {
                WatchEvent::Folder { folder: f, state } if f == folder && want(state) => {
                    Some(state.clone())
                }
                _ => None,
            },
        )
        .await
    }

    async fn ready(&mut self) -> PathBuf {
        self.until("Ready event", |e| match e {
            WatchEvent::Ready { path, .. } => Some(path.clone()),
            _ => None,
        })
        .await
    }

    /// Passes `time`, failing on any Ready: nothing may be reported while it is written.
    async fn no_ready_for(&mut self, time: Duration) {
        let deadline = Instant::now() + time;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left).await {
                Some(WatchEvent::Ready { path, .. }) => {
                    panic!("{} reported while still being written", path.display())
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Every Ready until nothing has happened for `quiet`.
    async fn ready_until_quiet(&mut self, quiet: Duration) -> Vec<PathBuf> {
        let mut ready = Vec::new();
        let deadline = Instant::now() + PATIENCE * 2;
        while Instant::now() < deadline {
            match self.next(quiet).await {
                Some(WatchEvent::Ready { path, .. }) => ready.push(path),
                Some(WatchEvent::Folder { .. } | WatchEvent::Refused { .. }) => {}
                None => return ready,
            }
        }
        panic!("events never stopped coming; received {:#?}", self.log)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.cancel();
        drop(self.watcher.take());
    }
}

fn write(path: &Path, bytes: usize) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(path, vec![7u8; bytes]).expect("write");
}

impl Watch {
    /// Every Ready and every Refused (path, message) until nothing has happened for `quiet`.
    async fn outcomes_until_quiet(
        &mut self,
        quiet: Duration,
    ) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
        let (mut ready, mut refused) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + PATIENCE * 2;
        while Instant::now() < deadline {
            match self.next(quiet).await {
                Some(WatchEvent::Ready { path, .. }) => ready.push(path),
                Some(WatchEvent::Refused { path, message, .. }) => refused.push((path, message)),
                Some(WatchEvent::Folder { .. }) => {}
                None => return (ready, refused),
            }
        }
        panic!("events never stopped coming; received {:#?}", self.log)
    }
}

fn sorted(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut paths = paths;
    paths.sort();
    paths
}

/// Time here is tokio's paused clock: the test moves it, so the window is checked exactly and
/// costs no waiting. The recording is begun before watching starts so that the watcher's own
/// walk finds it; inotify's events land on the OS's schedule, which a paused clock does not
/// wait for, but each write after that is also seen by the watcher's own looks, so a late
/// event can only restart the window, never shorten it.
#[tokio::test(start_paused = true)]
async fn a_file_written_slowly_is_reported_once_after_its_last_write_at_its_final_size() {
    // Pauses between writes are a quarter of the window (a pause longer than the window is
    // indistinguishable from a finished file); the whole write lasts almost two windows.
    let window = Duration::from_millis(800);
    let (chunks, chunk, pause) = (8, 64 * 1024, window / 4);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("recording.mov");
    // Held open throughout, as a recorder that has not closed yet would be.
    let mut file = fs::File::create(&path).expect("create");
    file.write_all(&[0u8; 1024]).expect("write");
    let mut watch = Watch::watching(dir.path(), true, window).await;

    let mut last_write = Instant::now();
    for i in 0..chunks {
        watch.no_ready_for(pause).await;
        file.write_all(&vec![i as u8; chunk]).expect("write");
        last_write = Instant::now();
    }

    let reported = watch.ready().await;
    let after = Instant::now().duration_since(last_write);
    assert_eq!(reported, path);
    assert!(
        after >= window,
        "reported {after:?} after the last write, inside the window"
    );
    let size = fs::metadata(&path).expect("stat").len();
    assert_eq!(size, (1024 + chunks * chunk) as u64);

    let_inotify_deliver().await;
    let again = watch.ready_until_quiet(window * 3).await;
    assert!(again.is_empty(), "reported again: {again:?}");
    drop(file);
}

/// Lets inotify's events for what the test just did reach the watcher, on a paused clock.
/// This is a real wait, on a blocking thread so the paused clock stands still meanwhile: the
/// events come from the kernel, and only real time brings them.
async fn let_inotify_deliver() {
    tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)))
        .await
        .expect("wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_files_created_at_once_are_each_reported_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut watch = Watch::watching(dir.path(), true, WINDOW).await;

    let expected: Vec<PathBuf> = (0..50)
        .map(|i| dir.path().join(format!("clip-{i:02}.mp4")))
        .collect();
    for path in &expected {
        write(path, 10 * 1024);
    }

    let ready = watch.ready_until_quiet(WINDOW * 4).await;
    assert_eq!(sorted(ready), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_present_before_start_are_found_in_subfolders_when_recursive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("top.mov"), 100);
    write(&root.join("day1/cam-a/deep.MKV"), 100);
    write(&root.join("day1/notes.txt"), 100);

    let mut watch = Watch::watching(root, true, WINDOW).await;
    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert_eq!(
        sorted(ready),
        [root.join("day1/cam-a/deep.MKV"), root.join("top.mov")]
    );

    // Subfolders made after the start are watched too.
    write(&root.join("day2/later.mp4"), 100);
    assert_eq!(watch.ready().await, root.join("day2/later.mp4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_watched_without_subfolders_ignores_them_before_and_after_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("top.mp4"), 100);
    write(&root.join("sub/inner.mp4"), 100);

    let mut watch = Watch::watching(root, false, WINDOW).await;
    assert_eq!(watch.ready().await, root.join("top.mp4"));

    write(&root.join("sub/later.mp4"), 100);
    write(&root.join("newsub/new.mp4"), 100);
    write(&root.join("top2.mp4"), 100);
    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert_eq!(ready, [root.join("top2.mp4")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_is_never_reported_and_a_finished_download_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Junk already there at start, found by the scan...
    for junk in ["old.mp4.part", ".hidden-old.mp4", "uploaded/old.mp4"] {
        write(&root.join(junk), 100);
    }
    let mut watch = Watch::watching(root, true, WINDOW).await;

    // ...and junk arriving while watched.
    for junk in [
        "movie.mp4.part",
        "movie2.mp4.crdownload",
        "edit.mov~",
        "render.mp4.tmp",
        "clip.mkv.download",
        ".hidden.mp4",
        ".cache/thumb.mp4",
        "proj/.proxy/p.mov",
        "notes.txt",
        "still.jpg",
        "uploaded/done.mp4",
        "uploaded/day1/done.mov",
    ] {
        write(&root.join(junk), 100);
    }
    // A real video alongside, so the wait below is for something.
    write(&root.join("real.mp4"), 100);
    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert_eq!(ready, [root.join("real.mp4")]);

    // Browsers and downloaders finish by renaming the partial file.
    fs::rename(root.join("movie.mp4.part"), root.join("movie.mp4")).expect("rename");
    assert_eq!(watch.ready().await, root.join("movie.mp4"));
    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert!(ready.is_empty(), "reported: {ready:?}");
}

#[test]
fn the_ignore_rules() {
    let root = Path::new("/w");
    let default: &[String] = &[];
    let ignored = |p: &str| is_ignored(root, Path::new(p), default);
    for junk in [
        "/w/a.mp4.part",
        "/w/a.MP4.PART",
        "/w/a.mp4.crdownload",
        "/w/a.mp4.tmp",
        "/w/a.mp4.download",
        "/w/a.mp4~",
        "/w/.a.mp4",
        "/w/._a.mp4",
        "/w/.dir/a.mp4",
        "/w/x/.dir/y/a.mp4",
        "/w/uploaded/a.mp4",
        "/w/Uploaded/x/a.mp4",
        "/w/a.txt",
        "/w/noext",
        "/elsewhere/a.mp4",
        "/w",
    ] {
        assert!(ignored(junk), "{junk} should be ignored");
    }
    for video in [
        "/w/a.mp4",
        "/w/A.MOV",
        "/w/x/y/a.mkv",
        "/w/x/uploaded/a.mp4",
        "/w/a.webm",
        "/w/a.mxf",
    ] {
        assert!(!ignored(video), "{video} should be reported");
    }

    let wav = ["wav".to_owned(), ".MXF".to_owned()];
    assert!(!is_ignored(root, Path::new("/w/take.WAV"), &wav));
    assert!(!is_ignored(root, Path::new("/w/take.mxf"), &wav));
    assert!(is_ignored(root, Path::new("/w/take.mp4"), &wav));
    assert!(is_ignored(root, Path::new("/w/take.wav.part"), &wav));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_folder_is_missing_until_it_comes_back_then_watched_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("card");
    fs::create_dir(&folder).expect("mkdir");
    let mut watch = Watch::watching(&folder, true, WINDOW).await;

    fs::remove_dir_all(&folder).expect("rm");
    let missing = watch
        .state(&folder, |s| matches!(s, FolderState::Missing { .. }))
        .await;
    let FolderState::Missing { message } = missing else {
        unreachable!()
    };
    assert!(
        message.contains(&folder.display().to_string()) && message.contains("recreate"),
        "{message}"
    );

    // Back, with a file in it already (moved into place whole, as a remounted card would
    // be): only the rescan after the watch is re-established can find it.
    let staging = dir.path().join("staging");
    write(&staging.join("before.mp4"), 100);
    fs::rename(&staging, &folder).expect("rename");
    watch.state(&folder, |s| *s == FolderState::Watching).await;
    assert_eq!(watch.ready().await, folder.join("before.mp4"));
    // And the new watch sees what arrives now.
    write(&folder.join("after.mp4"), 100);
    assert_eq!(watch.ready().await, folder.join("after.mp4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_missing_at_start_is_watched_once_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("not-yet");
    let mut watch = Watch::start(vec![spec(&folder, true, WINDOW)]);
    watch
        .state(&folder, |s| matches!(s, FolderState::Missing { .. }))
        .await;
    write(&folder.join("a.mp4"), 100);
    watch.state(&folder, |s| *s == FolderState::Watching).await;
    assert_eq!(watch.ready().await, folder.join("a.mp4"));
}

/// Tests run as root, which reads any folder whatever its mode, so an unreadable folder is
/// made here with a file where the folder should be. As another user, a folder with mode
/// 000 is checked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_folder_says_why_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("footage");
    fs::write(&folder, b"not a folder").expect("write");
    let mut watch = Watch::start(vec![spec(&folder, true, WINDOW)]);
    let state = watch
        .state(&folder, |s| matches!(s, FolderState::Unreadable { .. }))
        .await;
    let FolderState::Unreadable { message } = state else {
        unreachable!()
    };
    assert!(
        message.contains(&folder.display().to_string()) && message.contains("not a folder"),
        "{message}"
    );

    fs::remove_file(&folder).expect("rm");
    fs::create_dir(&folder).expect("mkdir");
    watch.state(&folder, |s| *s == FolderState::Watching).await;
    write(&folder.join("a.mp4"), 100);
    assert_eq!(watch.ready().await, folder.join("a.mp4"));

    #[cfg(unix)]
    if !running_as_root() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o000)).expect("chmod");
        let state = watch
            .state(&folder, |s| matches!(s, FolderState::Unreadable { .. }))
            .await;
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(format!("{state:?}").contains("read access"), "{state:?}");
        watch.state(&folder, |s| *s == FolderState::Watching).await;
    }
}

#[cfg(unix)]
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_uploaded_keeps_the_relative_path_numbers_collisions_and_is_not_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let clip = root.join("day1/clip.mp4");
    write(&clip, 10);
    let mut watch = Watch::watching(root, true, WINDOW).await;
    assert_eq!(watch.ready().await, clip);

    let first = move_to_uploaded(root, &clip).expect("move");
    assert_eq!(first, root.join("uploaded/day1/clip.mp4"));
    assert!(!clip.exists());

    // Two more files by the same name land beside it, numbered, and nothing is overwritten.
    let mut moved = vec![first];
    for n in [2u8, 3] {
        fs::write(&clip, [n; 10]).expect("write");
        moved.push(move_to_uploaded(root, &clip).expect("move"));
    }
    assert_eq!(
        moved,
        [
            root.join("uploaded/day1/clip.mp4"),
            root.join("uploaded/day1/clip (2).mp4"),
            root.join("uploaded/day1/clip (3).mp4"),
        ]
    );
    assert_eq!(fs::read(&moved[0]).expect("read"), [7u8; 10]);
    assert_eq!(fs::read(&moved[1]).expect("read"), [2u8; 10]);
    assert_eq!(fs::read(&moved[2]).expect("read"), [3u8; 10]);

    // A file at the top level goes to the top of uploaded/.
    write(&root.join("top.mp4"), 10);
    assert_eq!(
        move_to_uploaded(root, &root.join("top.mp4")).expect("move"),
        root.join("uploaded/top.mp4")
    );

    let outside = tempfile::tempdir().expect("tempdir");
    write(&outside.path().join("x.mp4"), 10);
    let err = move_to_uploaded(root, &outside.path().join("x.mp4")).expect_err("outside");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert!(
        ready.iter().all(|p| !p.starts_with(root.join("uploaded"))),
        "reported a moved file: {ready:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_file_is_reported_once_and_a_changed_one_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.mp4");
    write(&path, 100);
    let mut watch = Watch::watching(dir.path(), true, WINDOW).await;
    assert_eq!(watch.ready().await, path);

    // Attributes and reads are not changes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    fs::read(&path).expect("read");
    let ready = watch.ready_until_quiet(WINDOW * 3).await;
    assert!(ready.is_empty(), "reported unchanged: {ready:?}");

    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"more"))
        .expect("append");
    assert_eq!(watch.ready().await, path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_the_watch_and_closes_the_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut watch = Watch::watching(dir.path(), true, WINDOW).await;
    watch.stop.cancel();
    let closed = tokio::time::timeout(PATIENCE, async {
        while watch.events.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "still running after stop");

    // Dropping the watcher stops it as well.
    let (tx, mut events) = mpsc::channel(16);
    let watcher = FolderWatcher::start(
        vec![spec(dir.path(), true, WINDOW)],
        tx,
        CancellationToken::new(),
    )
    .expect("start");
    drop(watcher);
    let closed =
        tokio::time::timeout(PATIENCE, async { while events.recv().await.is_some() {} }).await;
    assert!(closed.is_ok(), "still running after drop");

    // Several folders in one watcher each get their state.
    let other = tempfile::tempdir().expect("tempdir");
    let mut both = Watch::start(vec![
        spec(dir.path(), true, WINDOW),
        spec(other.path(), false, WINDOW),
    ]);
    let mut watching = BTreeSet::new();
    while watching.len() < 2 {
        let folder = both
            .until("Watching", |e| match e {
                WatchEvent::Folder {
                    folder,
                    state: FolderState::Watching,
                } => Some(folder.clone()),
                _ => None,
            })
            .await;
        watching.insert(folder);
    }
    let expected: BTreeSet<PathBuf> = [dir.path().to_owned(), other.path().to_owned()].into();
    assert_eq!(watching, expected);
}

/// A shared drop folder is a way in for anyone who can write to it: a link planted there
/// (`clip.mp4 -> ~/.aws/credentials`) must never be reported, whether it is there when
/// watching starts or appears later, and neither may a file reached through a linked folder.
/// Each link is named in a `Refused` event, so the user hears why.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_refused_never_followed() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = outside.path().join("credentials");
    fs::write(
        &secret,
        b"[default]\naws_secret_access_key = not-for-upload\n",
    )
    .expect("write");
    let elsewhere = outside.path().join("videos");
    write(&elsewhere.join("far.mp4"), 1024);

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(&root.join("real.mp4"), 1024);
    symlink(&secret, root.join("clip.mp4")).expect("symlink");
    symlink(&elsewhere, root.join("linked.mp4")).expect("symlink to a folder");
    symlink(&elsewhere, root.join("more")).expect("symlink to a folder");

    let mut watch = Watch::watching(root, true, WINDOW).await;
    let (ready, refused) = watch.outcomes_until_quiet(WINDOW * 4).await;
    assert_eq!(ready, vec![root.join("real.mp4")], "{:#?}", watch.log);
    let refused_paths = sorted(refused.iter().map(|(p, _)| p.clone()).collect());
    assert_eq!(
        refused_paths,
        vec![root.join("clip.mp4"), root.join("linked.mp4")],
        "links found at start are named"
    );
    for (path, message) in &refused {
        assert!(
            message.contains("symbolic link") && message.contains("not uploaded"),
            "{}: {message}",
            path.display()
        );
    }
    assert!(
        refused[0].1.contains(&secret.display().to_string())
            || refused[1].1.contains(&secret.display().to_string()),
        "says where the link points: {refused:?}"
    );

    // Planted while watching, and a file written through the linked folder.
    symlink(&secret, root.join("later.mov")).expect("symlink");
    write(&elsewhere.join("new.mp4"), 1024);
    write(&root.join("real2.mp4"), 1024);
    let (ready, refused) = watch.outcomes_until_quiet(WINDOW * 4).await;
    assert_eq!(ready, vec![root.join("real2.mp4")], "{:#?}", watch.log);
    assert!(
        refused
            .iter()
            .any(|(p, m)| *p == root.join("later.mov") && m.contains("symbolic link")),
        "{refused:?}"
    );
    assert!(
        refused.iter().all(|(p, _)| p.starts_with(root)),
        "{refused:?}"
    );
}

/// A linked `uploaded/` (or a linked folder inside it) would carry finished files wherever
/// it points; the move is refused with a message naming the link, and the file stays.
#[cfg(unix)]
#[test]
fn a_linked_uploaded_folder_does_not_redirect_moves() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    symlink(outside.path(), root.join("uploaded")).expect("symlink");
    write(&root.join("take.mp4"), 1024);
    let err = move_to_uploaded(root, &root.join("take.mp4")).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains(&root.join("uploaded").display().to_string())
            && text.contains("symbolic link"),
        "{text}"
    );
    assert!(root.join("take.mp4").exists(), "the file stays");
    assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 0);

    // A real uploaded/ with a linked subfolder, for a file in a subfolder.
    fs::remove_file(root.join("uploaded")).expect("rm link");
    fs::create_dir(root.join("uploaded")).expect("mkdir");
    symlink(outside.path(), root.join("uploaded/day1")).expect("symlink");
    write(&root.join("day1/b.mp4"), 1024);
    let err = move_to_uploaded(root, &root.join("day1/b.mp4")).expect_err("refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(root.join("day1/b.mp4").exists());
    assert_eq!(fs::read_dir(outside.path()).expect("ls").count(), 0);

    // And with real folders, the move still works.
    fs::remove_file(root.join("uploaded/day1")).expect("rm link");
    let moved = move_to_uploaded(root, &root.join("day1/b.mp4")).expect("move");
    assert_eq!(moved, root.join("uploaded/day1/b.mp4"));
}
