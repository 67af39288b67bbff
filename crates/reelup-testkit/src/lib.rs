//! Test helpers for Reelup.
//!
//! [`FaultProxy`] is an HTTP proxy to put in front of an S3-compatible store (in tests, the
//! signature-checking store of `reelup_server::LocalStack`) so that uploads can be tried
//! against dropped connections, 5xx answers, slow or stalled responses, corrupted bytes and
//! a network that goes down and comes back.
//!
//! The proxy forwards every request as it came: method, path and query, all end-to-end
//! headers, the **Host header unchanged** (presigned URLs are signed for the proxy's address
//! and the store checks the signature against the Host it receives) and the body. Answers
//! come back unchanged (status, headers, streamed body) unless a queued [`Fault`] matches.
//!
//! ```no_run
//! use reelup_testkit::{Fault, FaultKind, FaultProxy, Match};
//! # async fn example(store: std::net::SocketAddr) -> std::io::Result<()> {
//! let proxy = FaultProxy::start(store).await?;
//! // Sign URLs for proxy.url(), then: the next part upload gets a 503 SlowDown.
//! proxy.inject(Fault::once(
//!     Match::PartUploads,
//!     FaultKind::Status { code: 503, s3_code: "SlowDown" },
//! ));
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bodies the proxy sends, upstream and back to the client.
type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// A fault-injecting HTTP proxy listening on `127.0.0.1`, forwarding to one upstream.
///
/// Dropping it stops everything it runs: the listener is closed, open connections are cut
/// and stalled or delayed requests are abandoned.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// A fault to apply to the next `times` requests that `matches`.
///
/// Faults are tried in the order they were injected; a request gets at most one, the first
/// that matches and has uses left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub matches: Match,
    /// How many requests it applies to; `usize::MAX` is, in practice, every one.
    pub times: usize,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault for the next request that matches only.
    pub fn once(matches: Match, kind: FaultKind) -> Self {
        Self::times(matches, kind, 1)
    }

    /// A fault for the next `times` requests that match.
    pub fn times(matches: Match, kind: FaultKind, times: usize) -> Self {
        Self {
            matches,
            times,
            kind,
        }
    }

    /// A fault for every request that matches, until [`FaultProxy::clear`].
    pub fn always(matches: Match, kind: FaultKind) -> Self {
        Self::times(matches, kind, usize::MAX)
    }
}

/// Which requests a [`Fault`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Any,
    Method(Method),
    /// The path (not the query) contains this.
    PathContains(String),
    /// Any UploadPart: a PUT with `partNumber` in the query.
    PartUploads,
    /// The UploadPart (a PUT) of this part number.
    PartNumber(u32),
    /// Any CompleteMultipartUpload: a POST with `uploadId` in the query.
    Completes,
}

impl Match {
    fn applies_to(&self, method: &Method, uri: &Uri) -> bool {
        match self {
            Match::Any => true,
            Match::Method(m) => m == method,
            Match::PathContains(s) => uri.path().contains(s.as_str()),
            Match::PartUploads => method == Method::PUT && part_number(uri).is_some(),
            Match::PartNumber(n) => method == Method::PUT && part_number(uri) == Some(*n),
            Match::Completes => {
                method == Method::POST
                    && uri
                        .query()
                        .is_some_and(|q| q.split('&').any(|p| p.starts_with("uploadId=")))
            }
        }
    }
}

/// The `partNumber` query parameter, when there is one and it is a number.
fn part_number(uri: &Uri) -> Option<u32> {
    uri.query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if name == "partNumber" {
            value.parse().ok()
        } else {
            None
        }
    })
}

/// What a [`Fault`] does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Read this many bytes of the request body (or a little more: the body arrives in
    /// chunks), then close the connection without answering.
    DropMidBody { after_bytes: usize },
    /// Read the request body, then answer this status with an S3 XML error carrying
    /// `s3_code` (e.g. 500 `InternalError`, 503 `SlowDown`), without forwarding.
    Status { code: u16, s3_code: &'static str },
    /// Like [`FaultKind::Status`] (e.g. 429 or 503) with a `Retry-After: seconds` header.
    RetryAfter { code: u16, seconds: u64 },
    /// Wait this long, then forward the request as usual.
    Delay(Duration),
    /// Read the request body, then never answer: the connection is held open until the
    /// proxy is dropped (or goes down with [`FaultProxy::set_down`]).
    Stall,
    /// Flip the lowest bit of the request body's byte at offset `at` and forward the
    /// corrupted body (buffered; the length is unchanged). A body of `at` bytes or fewer is
    /// forwarded untouched.
    FlipByte { at: usize },
    /// Read the request body, then answer 200 with an S3 `<Error>` XML body (S3 does this on
    /// CompleteMultipartUpload), without forwarding.
    OkWithErrorBody,
    /// Forward the request and read the store's whole answer, so the store has done the
    /// work, then never answer: the answer is lost on the way back, as when the client
    /// crashes or the network drops after the store acted. The store's status shows as
    /// [`Seen::upstream_status`].
    LoseAnswer,
    /// Forward the request, then hold the answer (the store has done what was asked; the
    /// client does not know yet) until [`FaultProxy::release_one`]. A test waits for it
    /// with [`FaultProxy::held`], acts in that window (changes a file the client will read
    /// next, say), then releases it: no timing involved.
    HoldAnswer,
}

/// A request the proxy saw, in [`FaultProxy::requests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    /// Request-body bytes received from the client so far.
    pub body_bytes: usize,
    /// The status answered, once the response head went back; `None` while the request is
    /// in flight and when it got no answer (dropped, stalled, connection cut).
    pub status: Option<u16>,
    /// The fault applied to it, if any.
    pub fault: Option<FaultKind>,
    /// The store's status for a request whose answer was then lost
    /// ([`FaultKind::LoseAnswer`]), once the store answered.
    pub upstream_status: Option<u16>,
}

struct Entry {
    seen: Seen,
    body_bytes: Arc<AtomicUsize>,
}

struct Shared {
    upstream: SocketAddr,
    client: Client<HttpConnector, ProxyBody>,
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<Entry>>,
    down: watch::Sender<bool>,
    /// Cancelled when the proxy is dropped.
    stop: CancellationToken,
    /// Requests between arrival and their answer's head (or their end without one) now,
    /// and the most there ever were at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// Answers held by [`FaultKind::HoldAnswer`] now.
    held: watch::Sender<usize>,
    /// One permit per held answer to let go.
    releases: tokio::sync::Semaphore,
}

/// Counts a request in flight until dropped (answered, failed or abandoned).
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Locks, ignoring poisoning: the data stays consistent because nothing panics while
/// holding these locks, and a test's panic elsewhere must not break the proxy.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` (a free port) forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            down: watch::Sender::new(false),
            stop: CancellationToken::new(),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            held: watch::Sender::new(0),
            releases: tokio::sync::Semaphore::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`, the endpoint to sign URLs for.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a fault, after those already queued. One with `times == 0` does nothing.
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.shared.faults).push(fault);
        }
    }

    /// Removes every queued fault; requests already being faulted carry on.
    pub fn clear(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Takes the network down (`true`) or brings it back (`false`). While it is down every
    /// new connection is closed as soon as it is accepted, and open ones are cut at once,
    /// mid-request or not; none of this shows in [`FaultProxy::requests`].
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    /// The most requests that were in flight through the proxy at once (from arrival to
    /// the head of their answer), since it started: how many uploads overlapped.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until an answer is held by [`FaultKind::HoldAnswer`].
    pub async fn held(&self) {
        let mut held = self.shared.held.subscribe();
        // The sender lives in `shared`, which `self` keeps: this cannot fail.
        let _ = held.wait_for(|n| *n > 0).await;
    }

    /// Lets one held answer (the oldest waiting, or the next to be held) go to the client.
    pub fn release_one(&self) {
        self.shared.releases.add_permits(1);
    }

    /// The requests seen so far, oldest first, including those still in flight.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.shared.log)
            .iter()
            .map(|e| Seen {
                body_bytes: e.body_bytes.load(Ordering::SeqCst),
                ..e.seen.clone()
            })
            .collect()
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("down", &*self.shared.down.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let socket = tokio::select! {
            res = listener.accept() => match res {
                Ok((socket, _)) => socket,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "fault proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = shared.stop.cancelled() => break,
        };
        if *shared.down.borrow() {
            drop(socket);
            continue;
        }
        tokio::spawn(serve_connection(http.clone(), socket, shared.clone()));
    }
}

async fn serve_connection(
    http: ConnBuilder<TokioExecutor>,
    socket: TcpStream,
    shared: Arc<Shared>,
) {
    let _ = socket.set_nodelay(true);
    // Cancelled by a fault that must cut this connection without answering.
    let cut = CancellationToken::new();
    let service = {
        let shared = shared.clone();
        let cut = cut.clone();
        service_fn(move |req| handle(shared.clone(), cut.clone(), req))
    };
    let conn = http.serve_connection(TokioIo::new(socket), service);
    let mut down = shared.down.subscribe();
    // Whichever comes first; dropping `conn` closes the socket.
    tokio::select! {
        res = conn => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "fault proxy: connection ended with an error");
            }
        }
        () = cut.cancelled() => {}
        () = shared.stop.cancelled() => {}
        _ = down.wait_for(|down| *down) => {}
    }
}

async fn handle(
    shared: Arc<Shared>,
    cut: CancellationToken,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let _in_flight = InFlight::enter(&shared);
    let (parts, body) = req.into_parts();
    let fault = shared.take_fault(&parts.method, &parts.uri);
    if let Some(fault) = &fault {
        tracing::debug!(method = %parts.method, uri = %parts.uri, ?fault, "fault proxy: applying");
    }
    let received = Arc::new(AtomicUsize::new(0));
    let index = shared.log_request(&parts.method, &parts.uri, fault.clone(), received.clone());
    let result = apply(&shared, &cut, fault, parts, body, &received, index).await;
    if let Ok(resp) = &result {
        shared.log_status(index, resp.status());
    }
    result
}

async fn apply(
    shared: &Shared,
    cut: &CancellationToken,
    fault: Option<FaultKind>,
    parts: http::request::Parts,
    mut body: Incoming,
    received: &Arc<AtomicUsize>,
    index: usize,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let Some(fault) = fault else {
        return Ok(forward(shared, parts, counted(body, received.clone())).await);
    };
    match fault {
        FaultKind::DropMidBody { after_bytes } => {
            while received.load(Ordering::SeqCst) < after_bytes {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            received.fetch_add(data.len(), Ordering::SeqCst);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
            cut.cancel();
            Err(std::io::Error::other("fault: connection dropped mid-body"))
        }
        FaultKind::Status { code, s3_code } => {
            read_all(body, received).await?;
            Ok(s3_error(
                status(code),
                s3_code,
                "Injected by the fault proxy",
                None,
            ))
        }
        FaultKind::RetryAfter { code, seconds } => {
            read_all(body, received).await?;
            let status = status(code);
            let s3_code = match status {
                StatusCode::SERVICE_UNAVAILABLE => "SlowDown",
                StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
                _ => "InternalError",
            };
            Ok(s3_error(
                status,
                s3_code,
                "Please reduce your request rate.",
                Some(seconds),
            ))
        }
        FaultKind::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Ok(forward(shared, parts, counted(body, received.clone())).await)
        }
        FaultKind::Stall => {
            read_all(body, received).await?;
            shared.stop.cancelled().await;
            Err(std::io::Error::other(
                "fault: stalled until the proxy stopped",
            ))
        }
        FaultKind::FlipByte { at } => {
            let mut bytes = read_all(body, received).await?;
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= 0x01;
            }
            let mut parts = parts;
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let body = Full::new(bytes.freeze())
                .map_err(|never| match never {})
                .boxed_unsync();
            Ok(forward(shared, parts, body).await)
        }
        FaultKind::LoseAnswer => {
            let answer = forward(shared, parts, counted(body, received.clone())).await;
            let status = answer.status();
            // The whole answer, so nothing upstream waits on this proxy to read it.
            let _ = answer.into_body().collect().await;
            shared.log_upstream_status(index, status);
            shared.stop.cancelled().await;
            Err(std::io::Error::other(
                "fault: the answer was lost until the proxy stopped",
            ))
        }
        FaultKind::HoldAnswer => {
            let answer = forward(shared, parts, counted(body, received.clone())).await;
            shared.held.send_modify(|n| *n += 1);
            let released = tokio::select! {
                permit = shared.releases.acquire() => permit.map(|p| p.forget()).is_ok(),
                () = shared.stop.cancelled() => false,
            };
            shared.held.send_modify(|n| *n -= 1);
            if released {
                Ok(answer)
            } else {
                Err(std::io::Error::other("fault: held until the proxy stopped"))
            }
        }
        FaultKind::OkWithErrorBody => {
            read_all(body, received).await?;
            Ok(s3_error(
                StatusCode::OK,
                "InternalError",
                "We encountered an internal error. Please try again.",
                None,
            ))
        }
    }
}

/// The request body as it streams through, counted into `received`.
fn counted(body: Incoming, received: Arc<AtomicUsize>) -> ProxyBody {
    body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            received.fetch_add(data.len(), Ordering::SeqCst);
        }
        frame
    })
    .boxed_unsync()
}

/// Reads the whole request body, counting it into `received`.
async fn read_all(mut body: Incoming, received: &AtomicUsize) -> Result<BytesMut, std::io::Error> {
    let mut all = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        if let Some(data) = frame.data_ref() {
            received.fetch_add(data.len(), Ordering::SeqCst);
            all.extend_from_slice(data);
        }
    }
    Ok(all)
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Headers that belong to one connection, not to the request or response: never forwarded.
/// `Expect` is answered by the proxy's own server.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sends the request on to the upstream with its Host header as it came, and its answer
/// back; the upstream unreachable or failing before an answer is a 502.
async fn forward(
    shared: &Shared,
    parts: http::request::Parts,
    body: ProxyBody,
) -> Response<ProxyBody> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri = match format!("http://{}{}", shared.upstream, path_and_query).parse::<Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            return s3_error(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                &format!("fault proxy: cannot forward {path_and_query}: {e}"),
                None,
            );
        }
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::EXPECT);
    if !headers.contains_key(header::HOST) {
        // HTTP/2 carries it as the :authority instead.
        if let Some(authority) = parts.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            headers.insert(header::HOST, host);
        }
    }
    let mut req = Request::new(body);
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    match shared.client.request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed_unsync())
        }
        Err(e) => {
            tracing::debug!(error = %e, "fault proxy: upstream failed");
            s3_error(
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                &format!("fault proxy: upstream {}: {e}", shared.upstream),
                None,
            )
        }
    }
}

/// An S3-style XML error answer.
fn s3_error(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response<ProxyBody> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        xml_escape(code),
        xml_escape(message)
    );
    let mut resp = Response::new(
        Full::new(Bytes::from(xml))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Some(seconds) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Shared {
    /// The first queued fault that matches, one use of it taken.
    fn take_fault(&self, method: &Method, uri: &Uri) -> Option<FaultKind> {
        let mut faults = lock(&self.faults);
        let i = faults
            .iter()
            .position(|f| f.times > 0 && f.matches.applies_to(method, uri))?;
        let fault = &mut faults[i];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            faults.remove(i);
        }
        Some(kind)
    }

    fn log_request(
        &self,
        method: &Method,
        uri: &Uri,
        fault: Option<FaultKind>,
        body_bytes: Arc<AtomicUsize>,
    ) -> usize {
        let mut log = lock(&self.log);
        log.push(Entry {
            seen: Seen {
                method: method.clone(),
                path: uri.path().to_owned(),
                query: uri.query().map(str::to_owned),
                body_bytes: 0,
                status: None,
                fault,
                upstream_status: None,
            },
            body_bytes,
        });
        log.len() - 1
    }

    fn log_upstream_status(&self, index: usize, status: StatusCode) {
        if let Some(entry) = lock(&self.log).get_mut(index) {
            entry.seen.upstream_status = Some(status.as_u16());
        }
    }

    fn log_status(&self, index: usize, status: StatusCode) {
        if let Some(entry) = lock(&self.log).get_mut(index) {
            entry.seen.status = Some(status.as_u16());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().expect("test uri")
    }

    #[test]
    fn matches_part_uploads_by_query() {
        let part = uri("/reelup/dev/x.mp4?partNumber=3&uploadId=abc");
        assert!(Match::PartUploads.applies_to(&Method::PUT, &part));
        assert!(!Match::PartUploads.applies_to(&Method::GET, &part));
        assert!(Match::PartNumber(3).applies_to(&Method::PUT, &part));
        assert!(!Match::PartNumber(2).applies_to(&Method::PUT, &part));
        let put = uri("/reelup/dev/x.mp4?uploadId=abc");
        assert!(!Match::PartUploads.applies_to(&Method::PUT, &put));
        assert!(Match::PathContains("dev/".into()).applies_to(&Method::PUT, &put));
        assert!(!Match::PathContains("uploadId".into()).applies_to(&Method::PUT, &put));
    }

    #[test]
    fn faults_are_used_up() {
        let shared = Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], 9)),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            faults: Mutex::new(vec![
                Fault::times(Match::Method(Method::PUT), FaultKind::Stall, 2),
                Fault::once(Match::Any, FaultKind::OkWithErrorBody),
            ]),
            log: Mutex::new(Vec::new()),
            down: watch::Sender::new(false),
            stop: CancellationToken::new(),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            held: watch::Sender::new(0),
            releases: tokio::sync::Semaphore::new(0),
        };
        let u = uri("/");
        assert_eq!(shared.take_fault(&Method::PUT, &u), Some(FaultKind::Stall));
        assert_eq!(
            shared.take_fault(&Method::GET, &u),
            Some(FaultKind::OkWithErrorBody)
        );
        assert_eq!(shared.take_fault(&Method::GET, &u), None);
        assert_eq!(shared.take_fault(&Method::PUT, &u), Some(FaultKind::Stall));
        assert_eq!(shared.take_fault(&Method::PUT, &u), None);
    }
}
