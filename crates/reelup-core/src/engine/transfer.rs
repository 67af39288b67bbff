//! Sending bytes to the object store with a presigned request, and reading what it says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

use crate::endpoint::root_cause;
use crate::engine::buffers::BufferPool;
use crate::engine::checksum::{Crc64Nvme, etag_is_md5, is_md5_etag};
use crate::engine::pacing::BandwidthLimit;
use crate::engine::source::{Piece, Source};
use crate::{FileMeta, PostPolicy, Progress, ProgressFn, UploadError};
use reelup_protocol::{CRC64NVME_HEADER, s3_xml};

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

/// Bytes read from disk, and handed to hyper, at a time: memory per streamed transfer stays
/// at a few of these, whatever the part size.
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

/// `len` bytes of the stream at `start`, read once into memory, with their CRC-64/NVME
/// computed from that same buffer while it is still in the cache. What is sent is this
/// buffer, so the checksum is of exactly the bytes sent.
pub(crate) async fn read_range(
    source: &Source,
    start: u64,
    len: u64,
    buffers: &Arc<BufferPool>,
) -> Result<(Bytes, Crc64Nvme), UploadError> {
    let (source, buffers) = (source.clone(), buffers.clone());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek};
        let path = source.path();
        let unreadable = |e| UploadError::FileUnreadable {
            path: path.to_owned(),
            source: e,
        };
        let mut buffer = buffers.take(len as usize).map_err(unreadable)?;
        let buf = buffer.as_mut();
        let mut file: Option<std::fs::File> = None;
        let end = start + len;
        let mut filled = 0usize;
        while (filled as u64) < len {
            let at = start + filled as u64;
            let piece = source
                .piece(at, end - at)
                .ok_or_else(|| UploadError::FileChanged {
                    path: path.to_owned(),
                })?;
            filled += match piece {
                Piece::Memory(bytes, range) => {
                    let n = range.len();
                    buf[filled..filled + n].copy_from_slice(&bytes[range]);
                    n
                }
                Piece::File { start, len } => {
                    let f = match &mut file {
                        Some(f) => f,
                        None => file
                            .insert(std::fs::File::open(path).map_err(|e| open_failure(path, e))?),
                    };
                    f.seek(std::io::SeekFrom::Start(start))
                        .map_err(|e| read_failure(path, e))?;
                    let n = len as usize;
                    // A file that became shorter ends the read early: FileChanged.
                    f.read_exact(&mut buf[filled..filled + n])
                        .map_err(|e| read_failure(path, e))?;
                    n
                }
            };
        }
        let crc = Crc64Nvme::of(buf);
        Ok((buffer.into_bytes(), crc))
    })
    .await
    .map_err(|e| UploadError::FileUnreadable {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?
}

/// Bytes already in memory as a body, in chunks, paced by the bandwidth limit.
fn memory_body(
    bytes: Bytes,
    pacing: &Pacing,
    activity: &Activity,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (limit, activity) = (pacing.limit.clone(), activity.clone());
    futures::stream::unfold(bytes, move |mut rest| {
        let (limit, activity) = (limit.clone(), activity.clone());
        async move {
            if rest.is_empty() {
                activity.moved();
                return None;
            }
            activity.producing();
            let chunk = rest.split_to(rest.len().min(CHUNK));
            if let Some(limit) = &limit {
                limit.take(chunk.len() as u64).await;
            }
            activity.moved();
            Some((Ok(chunk), rest))
        }
    })
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

/// How a part's bytes are checked on their way to the store.
pub(crate) enum PartCheck {
    /// The part, read into memory, whose CRC-64/NVME is signed into the URL: sent with
    /// that header, and the store refuses the part unless its bytes match.
    Crc64(Bytes, Crc64Nvme),
    /// The part streamed from disk, its MD5 computed from the chunks as they are sent and
    /// compared with the ETag the store answers.
    Md5,
}

/// PUTs `len` bytes of the stream at `start` to a presigned part URL. Returns the ETag,
/// and whether it was compared with the MD5 of the bytes sent (false when the CRC did the
/// checking, or the store's ETag is not an MD5).
/// Hears how many bytes of a part's body just went out (handed to the connection), so
/// progress moves as they go rather than a whole part at a time.
pub(crate) type OnWire = Arc<dyn Fn(u64) + Send + Sync>;

pub(crate) async fn put_part(
    http: &reqwest::Client,
    url: &str,
    source: &Source,
    (start, len): (u64, u64),
    check: &PartCheck,
    pacing: &Pacing,
    on_wire: OnWire,
) -> Result<(String, bool), UploadError> {
    let activity = Activity::new();
    let failure = BodyFailure::default();
    let md5 = Arc::new(Mutex::new(Md5::new()));
    let request = http
        .put(url)
        // A stream has no length of its own: with this header hyper sends a fixed-length
        // body rather than a chunked one, which S3 refuses for UploadPart.
        .header(reqwest::header::CONTENT_LENGTH, len);
    let request = match check {
        PartCheck::Crc64(bytes, crc) => {
            let body = memory_body(bytes.clone(), pacing, &activity)
                .inspect_ok(move |chunk| on_wire(chunk.len() as u64));
            request
                .header(CRC64NVME_HEADER, crc.to_base64())
                .body(reqwest::Body::wrap_stream(body))
        }
        PartCheck::Md5 => {
            let hashing = md5.clone();
            let body = range_body(source, start, len, pacing, &activity, &failure).inspect_ok(
                move |chunk| {
                    hashing
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .update(chunk);
                    on_wire(chunk.len() as u64);
                },
            );
            request.body(reqwest::Body::wrap_stream(body))
        }
    };
    let resp = watched(request.send(), &activity, pacing.stall_timeout)
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
    if matches!(check, PartCheck::Crc64(..)) {
        return Ok((etag, false));
    }
    let sent: [u8; 16] = std::mem::take(&mut *md5.lock().unwrap_or_else(|e| e.into_inner()))
        .finalize()
        .into();
    // An ETag that is an MD5 must be ours: a mismatch means the store holds other bytes
    // than were sent, and the part goes again (Integrity is retried). Stores with SSE-KMS
    // send other ETags, which cannot be checked this way.
    if !is_md5_etag(&etag) {
        return Ok((etag, false));
    }
    if !etag_is_md5(&etag, &sent) {
        return Err(UploadError::Integrity {
            expected: md5_etag(&sent),
            got: etag,
        });
    }
    Ok((etag, true))
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

/// Sends a whole stream, already in memory, with a presigned POST policy: every field,
/// then the bytes, with the same pacing and stall watch as parts. Returns the ETag the
/// store answered (its `ETag` header, or the `<ETag>` of a 201's XML body), if any.
pub(crate) async fn post_object(
    http: &reqwest::Client,
    policy: &PostPolicy,
    bytes: Bytes,
    meta: &FileMeta,
    on_progress: &ProgressFn,
    pacing: &Pacing,
) -> Result<Option<String>, UploadError> {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in &policy.fields {
        form = form.text(name.clone(), value.clone());
    }
    let total = bytes.len() as u64;
    let sent = Arc::new(AtomicU64::new(0));
    let activity = Activity::new();
    let body = {
        let (sent, report) = (sent.clone(), on_progress.clone());
        memory_body(bytes, pacing, &activity).inspect_ok(move |chunk| {
            let now = sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            report(Progress { sent: now, total });
        })
    };
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), total)
            .file_name(meta.filename.clone())
            .mime_str(&meta.content_type)
            .map_err(storage_unreachable)?;
    // S3 ignores every field after `file`, so it goes last.
    form = form.part("file", part);
    let request = http.post(&policy.url).multipart(form).send();
    let resp = watched(request, &activity, pacing.stall_timeout)
        .await?
        .map_err(storage_unreachable)?;
    if !resp.status().is_success() {
        return Err(failure_within(resp, pacing.stall_timeout).await);
    }
    let header = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if header.is_some() {
        return Ok(header);
    }
    let body = tokio::time::timeout(pacing.stall_timeout, resp.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(s3_xml::text_of(&body, "ETag").map(|e| e.replace("&quot;", "\"")))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::engine::source::Segment;

    /// What a one-request HTTP server received: the request head, lower-cased, and the body.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    /// Answers one request like S3's UploadPart (ETag = MD5 of the body), but only a
    /// fixed-length body: S3 refuses chunked part uploads, so this server cannot read one.
    /// With `damage`, it stores (and answers the MD5 of) the body with one byte flipped.
    async fn one_part_store(damage: bool) -> (String, tokio::task::JoinHandle<Received>) {
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
            let mut stored = body.clone();
            if damage {
                stored[len / 2] ^= 0x01;
            }
            let etag = md5_etag(&Md5::digest(&stored));
            let answer = format!("HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n");
            conn.write_all(answer.as_bytes()).await.expect("write");
            Received { head, body }
        });
        (url, server)
    }

    fn test_file(dir: &tempfile::TempDir) -> (PathBuf, Vec<u8>) {
        let path = dir.path().join("video.mp4");
        // Not a multiple of the chunk size, so the last chunk is short.
        let bytes: Vec<u8> = (0..3 * CHUNK + 1234).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        (path, bytes)
    }

    #[tokio::test]
    async fn an_md5_part_is_streamed_with_a_fixed_length_and_its_etag_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, bytes) = test_file(&dir);
        let (start, len) = (1000u64, (2 * CHUNK + 17) as u64);
        let (url, server) = one_part_store(false).await;

        let gone_out = Arc::new(AtomicU64::new(0));
        let counting = gone_out.clone();
        let (etag, md5_checked) = put_part(
            &reqwest::Client::new(),
            &url,
            &Source::file(&path, bytes.len() as u64),
            (start, len),
            &PartCheck::Md5,
            &Pacing::default(),
            Arc::new(move |n| {
                counting.fetch_add(n, Ordering::Relaxed);
            }),
        )
        .await
        .expect("put_part");
        // Every byte of the part was told as it went out, and no more.
        assert_eq!(gone_out.load(Ordering::Relaxed), len);

        let got = server.await.expect("server");
        let sent = &bytes[start as usize..(start + len) as usize];
        assert_eq!(got.body, sent);
        assert!(
            got.head.contains(&format!("content-length: {len}\r\n")),
            "{}",
            got.head
        );
        assert!(!got.head.contains("transfer-encoding"), "{}", got.head);
        // The MD5 is taken while sending, so it cannot be announced first.
        assert!(!got.head.contains("content-md5"), "{}", got.head);
        assert_eq!(etag, md5_etag(&Md5::digest(sent)));
        assert!(md5_checked);
    }

    #[tokio::test]
    async fn a_part_the_store_holds_with_one_byte_damaged_fails_its_md5_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, bytes) = test_file(&dir);
        let (url, server) = one_part_store(true).await;
        let err = put_part(
            &reqwest::Client::new(),
            &url,
            &Source::file(&path, bytes.len() as u64),
            (0, bytes.len() as u64),
            &PartCheck::Md5,
            &Pacing::default(),
            Arc::new(|_| {}),
        )
        .await
        .expect_err("the ETag is of other bytes");
        server.await.expect("server");
        assert!(matches!(err, UploadError::Integrity { .. }), "{err:?}");
        // Integrity failures are retried: the part is sent again.
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_checksummed_part_is_sent_from_the_buffer_its_crc_was_taken_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, bytes) = test_file(&dir);
        // A re-laid stream: memory between two ranges of the file, as faststart makes.
        let source = Source::from_segments(
            &path,
            vec![
                Segment::File {
                    start: 100,
                    len: 5000,
                },
                Segment::Memory(Bytes::from_static(b"moov bytes in memory")),
                Segment::File {
                    start: 20_000,
                    len: CHUNK as u64 + 3,
                },
            ],
        );
        let mut expected = bytes[100..5100].to_vec();
        expected.extend_from_slice(b"moov bytes in memory");
        expected.extend_from_slice(&bytes[20_000..20_000 + CHUNK + 3]);
        let (start, len) = (7u64, expected.len() as u64 - 7);
        let (read, crc) = read_range(&source, start, len, &BufferPool::new(1))
            .await
            .expect("read");
        assert_eq!(&read[..], &expected[7..]);
        assert_eq!(crc, Crc64Nvme::of(&expected[7..]));

        let (url, server) = one_part_store(false).await;
        put_part(
            &reqwest::Client::new(),
            &url,
            &source,
            (start, len),
            &PartCheck::Crc64(read, crc),
            &Pacing::default(),
            Arc::new(|_| {}),
        )
        .await
        .expect("put_part");
        let got = server.await.expect("server");
        assert_eq!(got.body, &expected[7..]);
        assert!(
            got.head.contains(&format!(
                "x-amz-checksum-crc64nvme: {}\r\n",
                Crc64Nvme::of(&expected[7..]).to_base64().to_lowercase()
            )),
            "{}",
            got.head
        );
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_part_has_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("video.mp4");
        std::fs::write(&path, vec![1u8; 1000]).expect("write");
        let source = Source::file(&path, 1500);
        let err = read_range(&source, 500, 1000, &BufferPool::new(1))
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
