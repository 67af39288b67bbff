//! `reelup-media://localhost/<queue id>` (`http://reelup-media.localhost/<id>` on Windows):
//! the local file of one existing queue item, for the webview's `<video>` that draws the
//! item's poster frame. Tauri's asset protocol would open whole folders to the webview;
//! this serves exactly the files the user queued, named by id, and nothing else: no path
//! ever comes from the request.
//!
//! Byte ranges (`Range: bytes=a-b`) are answered with 206, each answer capped at
//! [`MAX_CHUNK`], so a video of several GB is never read into memory at once. WebKitGTK's
//! media player cannot read a custom scheme itself (WebKit bug 146351: GStreamer has no
//! source for it), so the UI fetches the ranges (CORS, for the app's origin only) into a
//! blob and draws from that.
//!
//! Every answer is read from the file the item was queued with, and only from it: opened
//! without following a link, its fingerprint (taken at queue time) checked on the open
//! handle, then the bytes read from that handle. A clip swapped since for a link to, or a
//! copy of, another video is refused with 409 and a reason; nothing of it is served.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use reelup_core::media::{Fingerprint, NotTheQueuedFile, open_unchanged};
use tauri::http::{Method, Request, Response, StatusCode, header};

use crate::Shell;

pub const SCHEME: &str = "reelup-media";

/// The most bytes one answer carries.
pub const MAX_CHUNK: u64 = 4 * 1024 * 1024;

/// The pages that may read the media (the canvas it is drawn on must not be tainted): the
/// app's own origin on each platform.
const APP_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// The queue id a request names: the whole path is one positive decimal number, nothing
/// else (no sign, no dots, no slashes, no percent-escapes).
fn item_id(path: &str) -> Option<i64> {
    let digits = path.strip_prefix('/')?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` within a file of `size` bytes, as an inclusive
/// range; None when it cannot be satisfied (or names several ranges, which no media stack
/// asks for here).
fn byte_range(value: &str, size: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// The request's Origin, when it is the app's own page.
fn app_origin(request: &Request<Vec<u8>>) -> Option<&str> {
    request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| APP_ORIGINS.contains(o))
}

fn plain(status: StatusCode, text: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(text.as_bytes().to_vec())
        .expect("a valid response")
}

/// Answers one request for the app's queue: what the scheme's handler runs (off the
/// webview's thread: it reads the disk).
pub fn serve(shell: &Shell, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
    respond(
        request,
        |id| {
            let item = shell.uploads.queue().ok()?.get(id).ok()?;
            Some((item.path, item.fingerprint))
        },
        // Kept on the item, so History says why this video has no poster.
        |id, why| {
            if let Ok(queue) = shell.uploads.queue()
                && let Err(e) = queue.no_poster(id, &why.to_string())
            {
                tracing::warn!(id, error = %e, "cannot record why there is no poster");
            }
        },
    )
}

/// Answers one request. `file_of` gives the file of a queue item by id, with the
/// fingerprint it was queued with (None: no such item); `refused` hears of an item whose
/// path no longer names the file queued (a link, another file), which gets no poster.
pub fn respond(
    request: &Request<Vec<u8>>,
    file_of: impl Fn(i64) -> Option<(PathBuf, Fingerprint)>,
    refused: impl Fn(i64, &NotTheQueuedFile),
) -> Response<Vec<u8>> {
    if request.method() == Method::OPTIONS {
        // The CORS preflight of a ranged fetch.
        let mut response = Response::builder().status(StatusCode::NO_CONTENT);
        if let Some(origin) = app_origin(request) {
            response = response
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
                .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD")
                .header(header::ACCESS_CONTROL_ALLOW_HEADERS, "Range")
                .header(header::VARY, "Origin");
        }
        return response.body(Vec::new()).expect("a valid response");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
    }
    let Some(id) = item_id(request.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "not a queue item");
    };
    let Some((path, queued)) = file_of(id) else {
        return plain(StatusCode::NOT_FOUND, "no such queue item");
    };
    // The queue holds only videos; this keeps it so whatever wrote the queue.
    if !reelup_core::is_video(&path) {
        return plain(StatusCode::NOT_FOUND, "not a video");
    }
    // Not pinned: the bytes come from the handle, and a watch folder's move into
    // `uploaded/` must not fail because a poster is being drawn.
    let file = match open_unchanged(&path, &queued, false) {
        Ok(file) => file,
        Err(e @ (NotTheQueuedFile::Link | NotTheQueuedFile::Changed)) => {
            tracing::warn!(id, path = %path.display(), error = %e, "not serving the video for its poster");
            refused(id, &e);
            return plain(
                StatusCode::CONFLICT,
                &format!("{e}; no poster is drawn from it"),
            );
        }
        Err(e) => {
            tracing::info!(id, error = %e, "cannot serve the video for its poster");
            return plain(StatusCode::NOT_FOUND, &e.to_string());
        }
    };
    match serve_file(request, &path, file) {
        Ok(response) => {
            tracing::debug!(
                id,
                range = ?request.headers().get(header::RANGE),
                status = response.status().as_u16(),
                "served a poster's video"
            );
            response
        }
        Err(e) => {
            tracing::info!(id, error = %e, "cannot serve the video for its poster");
            plain(StatusCode::NOT_FOUND, "the file cannot be read")
        }
    }
}

/// Answers from `file`, the checked open file of `path` (whose name gives only the type).
fn serve_file(
    request: &Request<Vec<u8>>,
    path: &Path,
    mut file: std::fs::File,
) -> std::io::Result<Response<Vec<u8>>> {
    let size = file.metadata()?.len();
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, reelup_core::content_type_for(path))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(origin) = app_origin(request) {
        response = response
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin)
            .header(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                "Content-Range, Content-Length",
            )
            .header(header::VARY, "Origin");
    }
    let range = match request.headers().get(header::RANGE) {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|v| byte_range(v, size)) {
            Some(range) => Some(range),
            None => {
                return Ok(response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Vec::new())
                    .expect("a valid response"));
            }
        },
    };
    let (status, start, end) = match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end.min(start + MAX_CHUNK - 1),
        ),
        // No range asked for: a small file whole; of a large one its first chunk, as a
        // partial answer saying so (media stacks always ask by range anyway).
        None if size <= MAX_CHUNK => (StatusCode::OK, 0, size.saturating_sub(1)),
        None => (StatusCode::PARTIAL_CONTENT, 0, MAX_CHUNK - 1),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
    }
    let mut body = Vec::new();
    if request.method() == Method::GET && len > 0 {
        file.seek(SeekFrom::Start(start))?;
        body.reserve(len as usize);
        file.take(len).read_to_end(&mut body)?;
    }
    Ok(response
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .expect("a valid response"))
}

/// Lets the app's page read this scheme's media across origins (CORS), so a frame drawn
/// from it leaves the canvas readable. WebKitGTK allows CORS only on schemes registered so.
pub fn allow_cross_origin<R: tauri::Runtime>(window: &tauri::WebviewWindow<R>) {
    #[cfg(target_os = "linux")]
    {
        let done = window.with_webview(|webview| {
            use webkit2gtk::{SecurityManagerExt, WebContextExt, WebViewExt};
            if let Some(manager) = webview.inner().context().and_then(|c| c.security_manager()) {
                manager.register_uri_scheme_as_cors_enabled(SCHEME);
            }
        });
        if let Err(e) = done {
            tracing::warn!(error = %e, "cannot enable CORS for poster frames; videos get no poster");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str, range: Option<&str>) -> Request<Vec<u8>> {
        let mut r = Request::builder()
            .uri(uri)
            .header(header::ORIGIN, "tauri://localhost");
        if let Some(range) = range {
            r = r.header(header::RANGE, range);
        }
        r.body(Vec::new()).expect("request")
    }

    /// A file as the queue holds it: its path and the fingerprint taken then.
    fn queued(path: &Path) -> (PathBuf, Fingerprint) {
        (path.to_owned(), Fingerprint::of(path).expect("fingerprint"))
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        video: PathBuf,
        other: PathBuf,
        bytes: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let video = dir.path().join("clip.mp4");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&video, &bytes).expect("write");
        let other = dir.path().join("secret.txt");
        std::fs::write(&other, b"not for the webview").expect("write");
        Fixture {
            _dir: dir,
            video,
            other,
            bytes,
        }
    }

    #[test]
    fn serves_ranges_of_a_queued_video_only() {
        let f = fixture();
        let file_of = |id| (id == 7).then(|| queued(&f.video));
        let r = respond(
            &get("reelup-media://localhost/7", Some("bytes=100-199")),
            file_of,
            |_, _| {},
        );
        assert_eq!(r.status(), 206);
        assert_eq!(r.body(), &f.bytes[100..200]);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 100-199/10000");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "video/mp4");
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "100");
        assert_eq!(
            r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "tauri://localhost"
        );
        let r = respond(
            &get("reelup-media://localhost/7", Some("bytes=9990-")),
            file_of,
            |_, _| {},
        );
        assert_eq!(r.body(), &f.bytes[9990..]);
        let r = respond(
            &get("reelup-media://localhost/7", Some("bytes=-10")),
            file_of,
            |_, _| {},
        );
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 9990-9999/10000");
        let r = respond(
            &get("http://reelup-media.localhost/7", None),
            file_of,
            |_, _| {},
        );
        assert_eq!((r.status(), r.body().len()), (StatusCode::OK, 10_000));
        for bad in [
            "bytes=10000-",
            "bytes=5-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-0",
        ] {
            let r = respond(
                &get("reelup-media://localhost/7", Some(bad)),
                file_of,
                |_, _| {},
            );
            assert_eq!(r.status(), 416, "{bad}");
            assert!(r.body().is_empty());
        }
    }

    #[test]
    fn refuses_anything_but_an_existing_item_by_id() {
        let f = fixture();
        let other = f.other.clone();
        // Item 8 is (somehow) not a video: refused as well.
        let file_of = |id| match id {
            7 => Some(queued(&f.video)),
            8 => Some(queued(&other)),
            _ => None,
        };
        for uri in [
            "reelup-media://localhost/8",
            "reelup-media://localhost/9",
            "reelup-media://localhost/0",
            "reelup-media://localhost/-7",
            "reelup-media://localhost/+7",
            "reelup-media://localhost/7a",
            "reelup-media://localhost/abc",
            "reelup-media://localhost/7/../8",
            "reelup-media://localhost/../7",
            "reelup-media://localhost/%37",
            "reelup-media://localhost/99999999999999999999",
            "reelup-media://localhost/",
        ] {
            let r = respond(&get(uri, None), file_of, |_, _| {});
            assert_eq!(r.status(), 404, "{uri}");
            assert_ne!(r.body(), b"not for the webview", "{uri}");
        }
        let path = format!("reelup-media://localhost{}", f.video.display());
        assert_eq!(
            respond(&get(&path, None), file_of, |_, _| {}).status(),
            404,
            "{path}"
        );
        let post = Request::builder()
            .method(Method::POST)
            .uri("reelup-media://localhost/7")
            .body(Vec::new())
            .expect("request");
        assert_eq!(respond(&post, file_of, |_, _| {}).status(), 405);
        // The preflight of a ranged fetch: granted to the app's page only.
        let preflight = |origin: &str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("reelup-media://localhost/7")
                .header(header::ORIGIN, origin)
                .body(Vec::new())
                .expect("request")
        };
        let r = respond(&preflight("tauri://localhost"), file_of, |_, _| {});
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "Range");
        let r = respond(&preflight("https://evil.example"), file_of, |_, _| {});
        assert!(
            !r.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        // Another origin gets no CORS grant.
        let foreign = Request::builder()
            .uri("reelup-media://localhost/7")
            .header(header::ORIGIN, "https://evil.example")
            .body(Vec::new())
            .expect("request");
        let r = respond(&foreign, file_of, |_, _| {});
        assert!(
            !r.headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
    }

    #[test]
    fn a_large_file_goes_in_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let video = dir.path().join("big.mov");
        let file = std::fs::File::create(&video).expect("create");
        file.set_len(MAX_CHUNK * 2 + 5).expect("size");
        let file_of = |_| Some(queued(&video));
        let r = respond(
            &get("reelup-media://localhost/1", Some("bytes=0-")),
            file_of,
            |_, _| {},
        );
        assert_eq!(r.status(), 206);
        assert_eq!(r.body().len() as u64, MAX_CHUNK);
        assert_eq!(
            r.headers()[header::CONTENT_RANGE],
            format!("bytes 0-{}/{}", MAX_CHUNK - 1, MAX_CHUNK * 2 + 5)
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], "video/quicktime");
        let r = respond(&get("reelup-media://localhost/1", None), file_of, |_, _| {});
        assert_eq!(r.status(), 206);
        assert_eq!(r.body().len() as u64, MAX_CHUNK);
    }
}
