//! Sending bytes to the object store with a presigned request, and reading what it says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::TryStreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use crate::endpoint::root_cause;
use crate::engine::pacing::BandwidthLimit;
use crate::engine::source::{Piece, Source};
use crate::{FileMeta, PostPolicy, Progress, ProgressFn, UploadError};
use reelup_protocol::s3_xml;

pub(crate) fn storage_unreachable(e: reqwest::Error) -> UploadError {
    // A connection refused, a name that does not resolve, or a connect that timed out: the
    // store was never reached. Anything else (a reset, a cut, a body that failed) happened on
    // a connection that was made.
    let connected = !e.is_connect();
    // The URL is presigned: reqwest's text would carry its signature.
    let e = e.without_url();
    UploadError::StorageUnreachable {
        reason: if e.is_timeout() {
            "no answer in time".into()
        } else {
            crate::redact_urls(&root_cause(&e))
        },
        connected,
    }
}

pub(crate) async fn storage_failure(resp: reqwest::Response) -> UploadError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = resp.text().await.unwrap_or_default();
    let (code, message) = s3_xml::error(&body)
        .unwrap_or_else(|| ("Unknown".into(), body.chars().take(200).collect()));
    UploadError::Storage {
        status,
        code,
        // Stores and proxies may quote the request's URL, signature and all.
        message: crate::redact_urls(&message),
        retry_after,
    }
}

fn open_failure(path: &Path, e: std::io::Error) -> UploadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => UploadError::FileNotFound {
            path: path.to_owned(),
        },
        _ => UploadError::FileUnreadable {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// A read that ran out of bytes means the file became shorter: it changed.
fn read_failure(path: &Path, e: std::io::Error) -> UploadError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        UploadError::FileChanged {
            path: path.to_owned(),
        }
    } else {
        UploadError::FileUnreadable {
            path: path.to_owned(),
            source: e,
        }
    }
}

pub(crate) async fn open(path: &Path) -> Result<tokio::fs::File, UploadError> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| open_failure(path, e))
}

/// Bytes read from disk at a time, for a part's MD5 and for its body alike: memory per
/// transfer stays at a few of these, whatever the part size.
const CHUNK: usize = 256 * 1024;

/// How transfers are paced and watched.
#[derive(Debug, Clone)]
pub(crate) struct Pacing {
    /// A transfer that neither takes more of its body nor gets an answer for this long is
    /// cut (and retried): a stalled connection, not a slow one, which keeps moving.
    pub stall_timeout: Duration,
    /// Shared by every transfer made with this pacing.
    pub limit: Option<Arc<BandwidthLimit>>,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            limit: None,
        }
    }
}

pub(crate) const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// When a transfer last moved: hyper asked for more of the body, or the body ended.
/// Time spent reading the disk or waiting for the bandwidth limit is ours, not the
/// network's, so it never counts as a stall.
#[derive(Clone)]
struct Activity(Arc<Mutex<(Instant, bool)>>);

impl Activity {
    fn new() -> Self {
        Self(Arc::new(Mutex::new((Instant::now(), false))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Instant, bool)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn producing(&self) {
        self.lock().1 = true;
    }

    fn moved(&self) {
        *self.lock() = (Instant::now(), false);
    }

    /// When the transfer counts as stalled unless it moves first; `None` while a chunk is
    /// being produced.
    fn deadline(&self, stall_timeout: Duration) -> Option<Instant> {
        let (last, producing) = *self.lock();
        (!producing).then(|| last + stall_timeout)
    }
}

/// Runs a request while watching its activity; cuts it (by dropping it) once it has not
/// moved for `stall_timeout`.
async fn watched<T>(
    request: impl std::future::Future<Output = T>,
    activity: &Activity,
    stall_timeout: Duration,
) -> Result<T, UploadError> {
    tokio::pin!(request);
    loop {
        let deadline = activity.deadline(stall_timeout);
        tokio::select! {
            out = &mut request => return Ok(out),
            () = tokio::time::sleep_until(deadline.unwrap_or_else(|| Instant::now() + stall_timeout)) => {
                if activity.deadline(stall_timeout).is_some_and(|d| d <= Instant::now()) {
                    return Err(UploadError::StorageUnreachable {
                        reason: format!("no progress for {} s", stall_timeout.as_secs_f64()),
                        // The connect timeout is shorter than any stall timeout: a stall is on
                        // a connection that was made.
                        connected: true,
                    });
                }
            }
        }
    }
}

/// The MD5 of `len` bytes of the stream at `start`, read a chunk at a time into one
/// buffer (bytes held in memory are hashed where they are).
async fn range_md5(source: &Source, start: u64, len: u64) -> Result<[u8; 16], UploadError> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek};
        let path = source.path();
        let mut file: Option<(std::fs::File, u64)> = None;
        let mut md5 = Md5::new();
        let mut buf = vec![0; CHUNK];
        let mut at = start;
        let end = start + len;
        while at < end {
            let piece = source
                .piece(at, (end - at).min(CHUNK as u64))
                .ok_or_else(|| UploadError::FileChanged {
                    path: path.to_owned(),
                })?;
            let n = match piece {
                Piece::Memory(bytes, range) => {
                    md5.update(&bytes[range.clone()]);
                    range.len()
                }
                Piece::File { start, len } => {
                    let (f, pos) = match &mut file {
                        Some(open) => open,
                        None => file.insert((
                            std::fs::File::open(path).map_err(|e| open_failure(path, e))?,
                            u64::MAX,
                        )),
                    };
                    if *pos != start {
                        f.seek(std::io::SeekFrom::Start(start))
                            .map_err(|e| read_failure(path, e))?;
                    }
                    let n = len as usize;
                    f.read_exact(&mut buf[..n])
                        .map_err(|e| read_failure(path, e))?;
                    *pos = start + len;
                    md5.update(&buf[..n]);
                    n
                }
            };
            at += n as u64;
        }
        Ok(md5.finalize().into())
    })
    .await
    .map_err(|e| UploadError::FileUnreadable {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?
}

/// Why a body stream failed, kept for the caller: hyper only passes on that it did.
type BodyFailure = Arc<Mutex<Option<UploadError>>>;

/// The file as a body stream reads it: open once, and where its next read would start.
struct OpenFile {
    file: tokio::fs::File,
    pos: u64,
}

/// `len` bytes of the stream at `start`, read as hyper asks for them (from disk, or from
/// memory for a rewritten index), paced by the bandwidth limit. A file that became shorter
/// ends the stream with `FileChanged` in `failure`.
fn range_body(
    source: &Source,
    start: u64,
    len: u64,
    pacing: &Pacing,
    activity: &Activity,
    failure: &BodyFailure,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (source, limit) = (source.clone(), pacing.limit.clone());
    let (activity, failure) = (activity.clone(), failure.clone());
    futures::stream::try_unfold((None::<OpenFile>, 0u64), move |(file, sent)| {
        let (source, limit) = (source.clone(), limit.clone());
        let (activity, failure) = (activity.clone(), failure.clone());
        async move {
            if sent == len {
                activity.moved();
                return Ok(None);
            }
            activity.producing();
            let chunk = async {
                let path = source.path();
                let piece = source
                    .piece(start + sent, (len - sent).min(CHUNK as u64))
                    .ok_or_else(|| UploadError::FileChanged {
                        path: path.to_owned(),
                    })?;
                let (bytes, file) = match piece {
                    Piece::Memory(bytes, range) => (bytes.slice(range), file),
                    Piece::File { start, len } => {
                        let mut open = match file {
                            Some(f) => f,
                            None => OpenFile {
                                file: open(path).await?,
                                pos: u64::MAX,
                            },
                        };
                        if open.pos != start {
                            open.file
                                .seek(std::io::SeekFrom::Start(start))
                                .await
                                .map_err(|e| read_failure(path, e))?;
                        }
                        let mut buf = vec![0; len as usize];
                        open.file
                            .read_exact(&mut buf)
                            .await
                            .map_err(|e| read_failure(path, e))?;
                        open.pos = start + len;
                        (Bytes::from(buf), Some(open))
                    }
                };
                if let Some(limit) = &limit {
                    limit.take(bytes.len() as u64).await;
                }
                Ok::<_, UploadError>((bytes, file))
            }
            .await;
            activity.moved();
            match chunk {
                Ok((bytes, file)) => {
                    let sent = sent + bytes.len() as u64;
                    Ok(Some((bytes, (file, sent))))
                }
                Err(e) => {
                    let io = std::io::Error::other(e.to_string());
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    Err(io)
                }
            }
        }
    })
}

/// What failed a request: the body's own reason (the file changed) before the network's.
fn send_failure(failure: &BodyFailure, e: reqwest::Error) -> UploadError {
    failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| storage_unreachable(e))
}

/// S3's ETag for bytes it stored in one piece: their MD5, quoted.
pub(crate) fn md5_etag(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode(md5))
}

/// PUTs `len` bytes of the stream at `start` to a presigned part URL, streamed from disk so
/// memory does not grow with the part size. The MD5 is read first, for Content-MD5, so
/// the store refuses bytes that changed on the way (BadDigest); the ETag it answers is
/// checked against the same MD5. Returns the ETag.
pub(crate) async fn put_part(
    http: &reqwest::Client,
    url: &str,
    source: &Source,
    start: u64,
    len: u64,
    pacing: &Pacing,
) -> Result<String, UploadError> {
    let md5 = range_md5(source, start, len).await?;
    let activity = Activity::new();
    let failure = BodyFailure::default();
    let body = range_body(source, start, len, pacing, &activity, &failure);
    let request = http
        .put(url)
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(md5),
        )
        // A stream has no length of its own: with this header hyper sends a fixed-length
        // body rather than a chunked one, which S3 refuses for UploadPart.
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let resp = watched(request, &activity, pacing.stall_timeout)
        .await?
        .map_err(|e| send_failure(&failure, e))?;
    if !resp.status().is_success() {
        return Err(failure_within(resp, pacing.stall_timeout).await);
    }
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| UploadError::Storage {
            status: resp.status().as_u16(),
            code: "MissingETag".into(),
            message: "the store accepted a part but sent no ETag; if it is behind a proxy or \
                      CORS, expose the ETag header"
                .into(),
            retry_after: None,
        })?;
    let expected = md5_etag(&md5);
    // An ETag that is an MD5 must be ours; stores with SSE-KMS send other ETags, which
    // cannot be checked this way (Content-MD5 still guards the transfer).
    let looks_like_md5 = etag.trim_matches('"').len() == 32
        && etag
            .trim_matches('"')
            .chars()
            .all(|c| c.is_ascii_hexdigit());
    if looks_like_md5 && !etag.eq_ignore_ascii_case(&expected) {
        return Err(UploadError::Integrity {
            expected,
            got: etag,
        });
    }
    Ok(etag)
}

/// The store's error, read with the same patience as the transfer: an error body that
/// never ends is a stall too.
async fn failure_within(resp: reqwest::Response, stall_timeout: Duration) -> UploadError {
    tokio::time::timeout(stall_timeout, storage_failure(resp))
        .await
        .unwrap_or_else(|_| UploadError::StorageUnreachable {
            reason: format!("no progress for {} s", stall_timeout.as_secs_f64()),
            connected: true,
        })
}

/// Sends a whole stream with a presigned POST policy: every field, then the bytes,
/// streamed from disk with the same pacing and stall watch as parts.
pub(crate) async fn post_object(
    http: &reqwest::Client,
    policy: &PostPolicy,
    source: &Source,
    meta: &FileMeta,
    on_progress: &ProgressFn,
    pacing: &Pacing,
) -> Result<(), UploadError> {
    let path = source.path();
    // A missing or unreadable file is said before any request.
    drop(open(path).await?);
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in &policy.fields {
        form = form.text(name.clone(), value.clone());
    }
    let total = meta.size;
    let sent = Arc::new(AtomicU64::new(0));
    let activity = Activity::new();
    let failure = BodyFailure::default();
    let body = {
        let (sent, report) = (sent.clone(), on_progress.clone());
        range_body(source, 0, meta.size, pacing, &activity, &failure).inspect_ok(move |chunk| {
            let now = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            report(Progress { sent: now, total });
        })
    };
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), meta.size)
            .file_name(meta.filename.clone())
            .mime_str(&meta.content_type)
            .map_err(storage_unreachable)?;
    // S3 ignores every field after `file`, so it goes last.
    form = form.part("file", part);
    let request = http.post(&policy.url).multipart(form).send();
    let resp = watched(request, &activity, pacing.stall_timeout)
        .await?
        .map_err(|e| send_failure(&failure, e))?;
    if !resp.status().is_success() {
        return Err(failure_within(resp, pacing.stall_timeout).await);
    }
    if sent.load(Ordering::Relaxed) != meta.size {
        return Err(UploadError::FileChanged {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// What a one-request HTTP server received: the request head, lower-cased, and the body.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    /// Answers one request like S3's UploadPart (ETag = MD5 of the body), but only a
    /// fixed-length body: S3 refuses chunked part uploads, so this server cannot read one.
    async fn one_part_store() -> (String, tokio::task::JoinHandle<Received>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/bucket/key?partNumber=1",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut data = Vec::new();
            let head_end = loop {
                let mut buf = [0; 4096];
                let n = conn.read(&mut buf).await.expect("read");
                assert!(n > 0, "the request ended before its head");
                data.extend_from_slice(&buf[..n]);
                if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .expect("a Content-Length")
                .trim()
                .parse()
                .expect("a number");
            let mut body = data[head_end..].to_vec();
            while body.len() < len {
                let mut buf = vec![0; 64 * 1024];
                let n = conn.read(&mut buf).await.expect("read");
                assert!(n > 0, "the body ended early");
                body.extend_from_slice(&buf[..n]);
            }
            let etag = md5_etag(&Md5::digest(&body));
            let answer = format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.expect("write");
            Received { head, body }
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_part_is_streamed_with_a_fixed_length_and_its_md5() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("video.mp4");
        // Not a multiple of the chunk size, so the last chunk is short.
        let bytes: Vec<u8> = (0..3 * CHUNK + 1234).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let (start, len) = (1000u64, (2 * CHUNK + 17) as u64);
        let (url, server) = one_part_store().await;

        let etag = put_part(
            &reqwest::Client::new(),
            &url,
            &Source::file(&path, bytes.len() as u64),
            start,
            len,
            &Pacing::default(),
        )
        .await
        .expect("put_part");

        let got = server.await.expect("server");
        let sent = &bytes[start as usize..(start + len) as usize];
        assert_eq!(got.body, sent);
        assert!(
            got.head.contains(&format!("content-length: {len}\r\n")),
            "{}",
            got.head
        );
        assert!(!got.head.contains("transfer-encoding"), "{}", got.head);
        let md5 = Md5::digest(sent);
        let content_md5 = base64::engine::general_purpose::STANDARD.encode(md5);
        assert!(
            got.head
                .contains(&format!("content-md5: {}", content_md5.to_lowercase())),
            "{}",
            got.head
        );
        assert_eq!(etag, md5_etag(&md5));
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_part_has_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("video.mp4");
        std::fs::write(&path, vec![1u8; 1000]).expect("write");
        let err = put_part(
            &reqwest::Client::new(),
            "http://127.0.0.1:9/never",
            &Source::file(&path, 1500),
            500,
            1000,
            &Pacing::default(),
        )
        .await
        .expect_err("the file is too short");
        assert!(matches!(err, UploadError::FileChanged { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_body_that_runs_short_reports_the_file_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("video.mp4");
        std::fs::write(&path, vec![1u8; 1000]).expect("write");
        let (activity, failure) = (Activity::new(), BodyFailure::default());
        // As if the file shrank after its MD5 was read: the body asks for more than is left.
        let chunks: Vec<_> = range_body(
            &Source::file(&path, 2000),
            0,
            2000,
            &Pacing::default(),
            &activity,
            &failure,
        )
        .collect()
        .await;
        assert!(chunks.last().expect("chunks").is_err());
        assert!(matches!(
            failure.lock().unwrap().take(),
            Some(UploadError::FileChanged { .. })
        ));
    }
}
