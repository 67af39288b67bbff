//! Poster frames for `reelup upload`. The CLI has no webview to draw a frame with, so it
//! asks ffmpeg when ffmpeg is on PATH; without it, uploads go on with no posters.

use std::collections::HashSet;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use reelup_core::QueueEvent;
use reelup_core::media::{Fingerprint, NotTheQueuedFile, open_unchanged};
use reelup_core::queue::poster::MAX_POSTER_SIZE;
use reelup_core::queue::store::ItemState;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::Queue;

/// The widest poster drawn; smaller videos keep their width.
pub const POSTER_WIDTH: u32 = 640;
/// Where the frame is taken: early enough for short clips, past a fade-in from black.
const POSTER_AT_SECS: f64 = 1.0;
/// ffmpeg decodes one frame; a file it chokes on should not hold the CLI up.
const FFMPEG_TIMEOUT: Duration = Duration::from_secs(30);

/// The demuxers ffmpeg may use for a poster: the containers of
/// [`VIDEO_EXTENSIONS`](reelup_core::VIDEO_EXTENSIONS) (mov covers MP4/M4V, matroska covers
/// WebM). ffmpeg picks a demuxer by content, not name, and some demuxers open other files
/// named inside the input: a "clip.mp4" that is really an HLS playlist or an ffconcat list
/// would have ffmpeg read any video on this machine and its frame uploaded as the poster.
/// The demuxers here open nothing but the input (mov's external references stay off, as
/// they are by default).
const POSTER_DEMUXERS: &str = "mov,matroska,avi,mxf";

/// Why no poster was made.
#[derive(Debug)]
pub enum PosterError {
    NoFfmpeg,
    Ffmpeg(String),
    /// The item's path no longer names the file that was queued (see `open_unchanged`).
    NotTheQueuedFile(NotTheQueuedFile),
}

impl std::fmt::Display for PosterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoFfmpeg => f.write_str("ffmpeg not found"),
            Self::Ffmpeg(why) => write!(f, "ffmpeg could not draw a frame ({why})"),
            Self::NotTheQueuedFile(why) => write!(f, "{why}"),
        }
    }
}

/// The file queued at `path`, opened if it is still that file (same fingerprint, not a
/// link); what a poster is drawn from. Before a poster, not at queue time: the file may
/// have been swapped since the upload read it.
pub async fn open_queued(path: &Path, queued: &Fingerprint) -> Result<std::fs::File, PosterError> {
    let (path, queued) = (path.to_owned(), queued.clone());
    // Pinned: on Windows ffmpeg is given the name (see `ffmpeg_input`).
    tokio::task::spawn_blocking(move || open_unchanged(&path, &queued, true))
        .await
        .map_err(|e| PosterError::NotTheQueuedFile(NotTheQueuedFile::Unreadable(e.into())))?
        .map_err(PosterError::NotTheQueuedFile)
}

/// One frame of `video` (the open file of `path`, from [`open_queued`]) as a JPEG at most
/// [`POSTER_WIDTH`] wide: at 1 s, or at the first frame for a video shorter than that.
pub async fn make_poster(path: &Path, video: &std::fs::File) -> Result<Vec<u8>, PosterError> {
    let at_one_second = frame_at(path, video, Some(POSTER_AT_SECS)).await?;
    if !at_one_second.is_empty() {
        return Ok(at_one_second);
    }
    let first = frame_at(path, video, None).await?;
    if first.is_empty() {
        return Err(PosterError::Ffmpeg("the file has no video frame".into()));
    }
    Ok(first)
}

/// ffmpeg's input: the open file itself, as its stdin, named so that ffmpeg opens it as a
/// seekable file (an MP4 with its index at the end needs seeking; `pipe:` cannot). The path
/// is never opened again, so a file swapped after [`open_queued`] checked it is not what
/// ffmpeg reads. On Windows, which has no such name, the path is given, and it still names
/// the checked file: `video` was opened with its name pinned (`open_unchanged`), so the
/// file can be neither replaced nor renamed until ffmpeg is done (untested here).
fn ffmpeg_input(
    path: &Path,
    video: &std::fs::File,
) -> Result<(std::ffi::OsString, Stdio), PosterError> {
    let unreadable = |e| PosterError::NotTheQueuedFile(NotTheQueuedFile::Unreadable(e));
    // `file:` so a name starting with a dash or naming a protocol is read as a file.
    let mut arg = std::ffi::OsString::from("file:");
    match reelup_core::platform::own_stdin_path() {
        Some(stdin) => {
            // Where ffmpeg starts reading when the open file is shared (macOS's /dev/fd).
            let mut shared: &std::fs::File = video;
            shared.seek(SeekFrom::Start(0)).map_err(unreadable)?;
            arg.push(stdin);
            Ok((arg, Stdio::from(video.try_clone().map_err(unreadable)?)))
        }
        None => {
            arg.push(path.as_os_str());
            Ok((arg, Stdio::null()))
        }
    }
}

async fn frame_at(
    path: &Path,
    video: &std::fs::File,
    at: Option<f64>,
) -> Result<Vec<u8>, PosterError> {
    let (input, stdin) = ffmpeg_input(path, video)?;
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-v", "error"]);
    // Only video containers, and only local files: see POSTER_DEMUXERS.
    cmd.args([
        "-format_whitelist",
        POSTER_DEMUXERS,
        "-protocol_whitelist",
        "file",
    ]);
    if let Some(at) = at {
        // Before -i: a fast seek to the nearest keyframe, then decoding up to `at`.
        cmd.arg("-ss").arg(format!("{at}"));
    }
    cmd.arg("-i").arg(input);
    cmd.args([
        "-frames:v",
        "1",
        "-an",
        "-vf",
        &format!("scale='min({POSTER_WIDTH},iw)':-2"),
        "-pix_fmt",
        "yuvj420p",
        "-q:v",
        "4",
        "-f",
        "image2pipe",
        "-c:v",
        "mjpeg",
        "pipe:1",
    ]);
    // -nostdin above: ffmpeg reads its stdin only as the input file, never as commands.
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PosterError::NoFfmpeg,
        _ => PosterError::Ffmpeg(e.to_string()),
    })?;
    let out = tokio::time::timeout(FFMPEG_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| PosterError::Ffmpeg(format!("no frame in {} s", FFMPEG_TIMEOUT.as_secs())))?
        .map_err(|e| PosterError::Ffmpeg(e.to_string()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        // ffmpeg's last line is the most telling, except after a refused demuxer, where it
        // is a bare "Invalid argument".
        if said.contains("not on whitelist") {
            return Err(PosterError::Ffmpeg(
                "the file's content is not MP4/MOV, Matroska/WebM, AVI or MXF, whatever its name"
                    .into(),
            ));
        }
        let said = said.lines().last().unwrap_or("no message").trim();
        return Err(PosterError::Ffmpeg(said.chars().take(200).collect()));
    }
    if out.stdout.len() > MAX_POSTER_SIZE {
        return Err(PosterError::Ffmpeg(format!(
            "the frame is {} bytes, more than a poster may be",
            out.stdout.len()
        )));
    }
    Ok(out.stdout)
}

/// Posters drawn at once: each is one ffmpeg process decoding a frame (CPU), then one
/// small upload; a folder of 1,000 clips one after the other would add minutes after the
/// last upload.
fn posters_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Whether ffmpeg is known to be missing. One run of `reelup upload` shares one, across
/// [`as_they_finish`] and [`add_posters`], so "ffmpeg not found" is said once however many
/// paths find it missing, and nothing more is tried once one has.
#[derive(Debug, Clone, Default)]
pub struct FfmpegMissing(Arc<AtomicBool>);

impl FfmpegMissing {
    fn known(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Records that ffmpeg is missing; says so the first time only.
    fn found(&self) {
        if !self.0.swap(true, Ordering::SeqCst) {
            eprintln!("reelup: no posters: ffmpeg not found");
        }
    }
}

/// Makes posters for items of `ids` as they finish, a few at once, while the rest are
/// still uploading (drawing a frame is CPU, uploading is mostly waiting on the link), until
/// `uploads_done`; then finishes those begun. Returns the ids it took on, so that
/// [`add_posters`] afterwards does only what it missed (an event lost to a burst).
pub async fn as_they_finish(
    queue: Arc<Queue>,
    mut events: broadcast::Receiver<QueueEvent>,
    ids: HashSet<i64>,
    uploads_done: CancellationToken,
    no_ffmpeg: FfmpegMissing,
) -> HashSet<i64> {
    let mut taken = HashSet::new();
    let mut drawing = FuturesUnordered::new();
    let limit = posters_at_once();
    loop {
        tokio::select! {
            Some(()) = drawing.next(), if !drawing.is_empty() => {}
            event = events.recv(), if drawing.len() < limit => match event {
                Ok(QueueEvent::Changed { item })
                    if item.state == ItemState::Done
                        && ids.contains(&item.id)
                        && taken.insert(item.id) =>
                {
                    drawing.push(poster_for(&queue, item.id, &no_ffmpeg));
                }
                Err(broadcast::error::RecvError::Closed) => break,
                _ => {}
            },
            () = uploads_done.cancelled() => break,
        }
    }
    while drawing.next().await.is_some() {}
    taken
}

/// Makes and uploads a poster for each finished item of `ids` that has none, a few at
/// once. Never fails the upload: a video with no poster is still a finished upload, so
/// problems are said on stderr. Without ffmpeg this says so once and stops.
pub async fn add_posters(queue: &Queue, ids: &[i64], no_ffmpeg: &FfmpegMissing) {
    futures::stream::iter(ids)
        .for_each_concurrent(posters_at_once(), |id| poster_for(queue, *id, no_ffmpeg))
        .await;
}

/// One item's poster, if it is finished and has none. Once ffmpeg is known to be missing
/// (`no_ffmpeg`), no more are tried, and that is said once.
async fn poster_for(queue: &Queue, id: i64, no_ffmpeg: &FfmpegMissing) {
    if no_ffmpeg.known() {
        return;
    }
    let Ok(item) = queue.get(id) else { return };
    if item.state != ItemState::Done || item.poster_url.is_some() {
        return;
    }
    let made = match open_queued(&item.path, &item.fingerprint).await {
        Ok(video) => make_poster(&item.path, &video).await,
        Err(e) => Err(e),
    };
    let jpeg = match made {
        Ok(jpeg) => jpeg,
        Err(PosterError::NoFfmpeg) => {
            no_ffmpeg.found();
            return;
        }
        Err(e) => {
            eprintln!("reelup: {}: no poster: {e}", item.path.display());
            // Kept on the item too, so `reelup queue` (and the app) say why later.
            if let Err(e) = queue.no_poster(id, &e.to_string()) {
                eprintln!("reelup: {}: {e}", item.path.display());
            }
            return;
        }
    };
    if let Err(e) = queue.upload_poster(id, jpeg).await {
        eprintln!("reelup: {}: no poster: {e}", item.path.display());
    }
}
