//! The HTTP edge every listener shares: one accept loop with a header-read timeout and a
//! connection cap (for `serve`, the local presign and CDN routes, and the local store), and
//! the layers that run before any route: a request timeout, a rate limit per client address
//! for requests without a valid token, and the local stack's `Host` check.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::DefaultKeyedRateLimiter;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use reelup_protocol::ErrorBody;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::users::Users;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What one listener lets a client hold and how fast an anonymous client may ask.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A client must send a whole request head within this time of connecting (or of its
    /// previous response): it closes slowloris connections and idle keep-alive ones.
    pub header_read_timeout: Duration,
    /// Time from the request head to the response head. It covers reading the JSON body
    /// and the server's calls to S3; a CDN stream is bounded only up to its first byte.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Requests per minute and burst per client address for requests that carry no valid
    /// token (`/health`, the CDN route, failed logins); `None` for no limit.
    pub anonymous_rate: Option<(u32, u32)>,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy on the same host); the
    /// header is ignored from anyone else, since any client can write it.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_connections: 512,
            anonymous_rate: Some((120, 30)),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Serves `handle` on every connection `listener` accepts until `shutdown` resolves, then
/// stops accepting and gives requests in flight up to `grace` to finish.
///
/// HTTP/1.1 only: HTTP/2 has no header-read timeout in hyper, so a client could hold a
/// connection open without ever sending a request; no Reelup client or S3 SDK needs h2c.
pub async fn serve<F, Fut, B, E>(
    listener: TcpListener,
    limits: &HttpLimits,
    handle: F,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    F: Fn(http::Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<http::Response<B>, E>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    let mut http = ConnBuilder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit first, then accept: connections over the cap wait in the kernel's
        // backlog, costing this process nothing, until a served one closes.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (socket, peer) = tokio::select! {
            res = listener.accept() => match res {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let handle = handle.clone();
        let service =
            hyper::service::service_fn(move |req: http::Request<Incoming>| handle(req, peer));
        let conn = graceful.watch(
            http.serve_connection(TokioIo::new(socket), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {} s; stopping anyway",
            grace.as_secs()
        );
    }
}

/// `serve` for an axum app; handlers can read the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve_app(
    listener: TcpListener,
    limits: &HttpLimits,
    app: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let handle = move |mut req: http::Request<Incoming>, peer: SocketAddr| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    };
    serve(listener, limits, handle, shutdown, grace).await;
}

/// The layers every app gets before its routes: the anonymous rate limit and the request
/// timeout. `users` tells a valid token from any other request.
pub fn harden(app: Router, users: Users, limits: &HttpLimits) -> Router {
    let timeout = limits.request_timeout;
    let app = app.layer(middleware::from_fn(move |req: Request, next: Next| {
        request_timeout(timeout, req, next)
    }));
    match limits.anonymous_rate {
        Some((per_minute, burst)) => {
            let Some(limiter) = crate::api::rate_limiter::<IpAddr>(per_minute, burst) else {
                return app;
            };
            let gate = Arc::new(AnonymousGate {
                users,
                limiter,
                trusted_proxies: limits.trusted_proxies.clone(),
                last_cleanup: AtomicU64::new(0),
                started: Instant::now(),
            });
            app.layer(middleware::from_fn_with_state(gate, limit_anonymous))
        }
        None => app,
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

/// A bound on the time to the response head, answered like every other error (JSON with a
/// code) so that clients report it in the same words.
async fn request_timeout(limit: Duration, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::info!(%method, %path, secs = limit.as_secs(), "request timed out");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took over {} s (a slow request body or a slow object store); try again",
                    limit.as_secs()
                ),
            )
        }
    }
}

struct AnonymousGate {
    users: Users,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
    /// Seconds since `started` of the last sweep of idle addresses.
    last_cleanup: AtomicU64,
    started: Instant,
}

/// The address a limit is kept for: IPv6 clients by their /64, since one host commonly
/// holds a whole /64 and could otherwise step around the limit.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not one (proxies append, so those on the left are
/// the client's own claims).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return ip,
            // Garbage in the chain: stop at the last address we can vouch for.
            Err(_) => break,
        }
    }
    peer
}

fn has_valid_token(users: &Users, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| users.authenticate(t).is_some())
}

async fn limit_anonymous(
    State(gate): State<Arc<AnonymousGate>>,
    req: Request,
    next: Next,
) -> Response {
    // Token holders have their own limit, per token, in the signed routes.
    if has_valid_token(&gate.users, req.headers()) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(peer) = peer else {
        // Only reachable when the app is served without `serve_app`, as in unit tests.
        return next.run(req).await;
    };
    let ip = limit_key(client_ip(peer, req.headers(), &gate.trusted_proxies));
    // Forget idle addresses now and then so a spread of sources cannot grow the map.
    let now = gate.started.elapsed().as_secs();
    let last = gate.last_cleanup.load(Ordering::Relaxed);
    if now >= last + 60
        && gate
            .last_cleanup
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        gate.limiter.retain_recent();
        gate.limiter.shrink_to_fit();
    }
    if let Err(not_until) = gate.limiter.check_key(&ip) {
        return crate::api::rate_limited(&not_until, "without a valid token from this address");
    }
    next.run(req).await
}

/// The names the local stack answers to. A web page can point a name it controls at
/// 127.0.0.1 (DNS rebinding) and then read the local stack's answers as its own origin; the
/// browser still sends that name as `Host`, so anything but a loopback name is refused.
#[derive(Debug, Clone, Copy)]
pub struct LoopbackHost {
    /// The port the `Host` must name, if it names one; `None` accepts any port (the store,
    /// which tests may reach through a proxy on another port).
    pub port: Option<u16>,
}

impl LoopbackHost {
    /// Why `host` (a `Host` header or URI authority) is refused, or `None` if it is fine.
    pub fn refusal(&self, host: Option<&str>) -> Option<String> {
        let Some(host) = host else {
            return Some("the request has no Host header; send Host: 127.0.0.1".into());
        };
        let parsed: Option<(&str, Option<&str>)> = if let Some(rest) = host.strip_prefix('[') {
            rest.split_once(']').and_then(|(name, after)| match after {
                "" => Some((name, None)),
                p => p.strip_prefix(':').map(|p| (name, Some(p))),
            })
        } else {
            match host.split_once(':') {
                Some((name, port)) => Some((name, Some(port))),
                None => Some((host, None)),
            }
        };
        let ok = parsed.is_some_and(|(name, port)| {
            let name_ok = name.eq_ignore_ascii_case("localhost")
                || name == "127.0.0.1"
                || name.eq_ignore_ascii_case("::1");
            let port_ok = match (port, self.port) {
                (None, _) => true,
                (Some(p), Some(want)) => p.parse::<u16>() == Ok(want),
                (Some(p), None) => p.parse::<u16>().is_ok(),
            };
            name_ok && port_ok
        });
        if ok {
            return None;
        }
        let want = match self.port {
            Some(p) => format!("127.0.0.1:{p}, localhost:{p} or [::1]:{p}"),
            None => "127.0.0.1, localhost or [::1]".into(),
        };
        Some(format!(
            "Host {host:?} is not this machine's loopback name: the local stack answers only \
             to {want}, so that web pages cannot reach it through a DNS name of their own"
        ))
    }

    /// The refusal for `req`, from its URI authority or else its `Host` header.
    pub fn check<B>(&self, req: &http::Request<B>) -> Option<String> {
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .map(|v| v.to_str().unwrap_or("(not text)").to_owned())
            });
        self.refusal(host.as_deref())
    }
}

/// Refuses requests whose `Host` is not a loopback name; 421 says the request reached a
/// server that does not serve that name.
pub fn loopback_only(app: Router, rule: LoopbackHost) -> Router {
    app.layer(middleware::from_fn(
        move |req: Request, next: Next| async move {
            match rule.check(&req) {
                None => next.run(req).await,
                Some(message) => {
                    tracing::warn!(%message, "refused a request for another host name");
                    error(StatusCode::MISDIRECTED_REQUEST, "wrong_host", message)
                }
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_the_right_port_or_none() {
        let rule = LoopbackHost { port: Some(7300) };
        for ok in [
            "127.0.0.1:7300",
            "localhost:7300",
            "LocalHost",
            "[::1]:7300",
            "[::1]",
            "127.0.0.1",
        ] {
            assert_eq!(rule.refusal(Some(ok)), None, "{ok}");
        }
        for bad in [
            "evil.example:7300",
            "evil.example",
            "127.0.0.1:7301",
            "localhost.evil.example:7300",
            "127.0.0.1.nip.io:7300",
            "[::1]x",
            "127.0.0.1:",
            "",
        ] {
            assert!(rule.refusal(Some(bad)).is_some(), "{bad}");
        }
        assert!(rule.refusal(None).is_some());
        let any_port = LoopbackHost { port: None };
        assert_eq!(any_port.refusal(Some("127.0.0.1:9")), None);
        assert!(any_port.refusal(Some("evil.example:9")).is_some());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let client: IpAddr = "203.0.113.7".parse().expect("ip");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7".parse().expect("v"),
        );
        assert_eq!(client_ip(proxy, &h, &[]), proxy, "untrusted by default");
        assert_eq!(client_ip(proxy, &h, &[proxy]), client, "the nearest hop");
        assert_eq!(client_ip(client, &h, &[proxy]), client);
        h.insert("x-forwarded-for", "nonsense".parse().expect("v"));
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(
            limit_key(v6),
            "2001:db8:1:2::".parse::<IpAddr>().expect("ip")
        );
    }
}
