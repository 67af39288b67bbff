//! Attacks on the HTTP edge, as an outsider would make them: the real `reelup-server serve`
//! process and the local stack over real HTTP, with the signature-checking store behind
//! them. Each test performs the attack and checks that it now fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reelup_protocol::Secret;
use reelup_server::{LocalOptions, LocalStack};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_reelup-server");
const STORE_KEY: &str = "REELUPEDGETEST";
const STORE_SECRET: &str = "edge-test-store-secret-never-shown";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A local stack on its own runtime, so the test thread can make blocking requests.
struct Local {
    stack: Option<LocalStack>,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Local {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let mut opts = LocalOptions::new(dir.path().join("server"));
        opts.store_keys = Some((STORE_KEY.into(), Secret::new(STORE_SECRET)));
        let stack = rt.block_on(LocalStack::start(opts)).expect("local stack");
        Self {
            stack: Some(stack),
            rt,
            dir,
        }
    }

    fn stack(&self) -> &LocalStack {
        self.stack.as_ref().expect("running")
    }

    /// Uploads `bytes` as a small file through the presign route and the store; its key.
    fn upload(&self, bytes: &[u8]) -> String {
        let s = self.stack();
        let http = reqwest::blocking::Client::new();
        let params: Value = http
            .get(format!(
                "{}/s3/params?filename=clip.mp4&type=video/mp4",
                s.endpoint
            ))
            .bearer_auth(s.token.expose())
            .send()
            .expect("params")
            .json()
            .expect("json");
        let mut form = Form::new();
        for (k, v) in params["fields"].as_object().expect("fields") {
            form = form.text(k.clone(), v.as_str().expect("string").to_owned());
        }
        form = form.part("file", Part::bytes(bytes.to_vec()).file_name("clip.mp4"));
        let status = http
            .post(params["url"].as_str().expect("url"))
            .multipart(form)
            .send()
            .expect("POST")
            .status();
        assert!(status.is_success(), "upload: {status}");
        params["fields"]["key"].as_str().expect("key").to_owned()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            self.rt.block_on(stack.shutdown());
        }
    }
}

fn aws_env<'a>(cmd: &'a mut Command, key: &str, secret: &str) -> &'a mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

/// A `serve` config for the store at `endpoint` (bucket `reelup`, path style), plus `extra`.
fn write_config(dir: &Path, endpoint: &str, extra: &str) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nbucket = \"reelup\"\nregion = \"us-east-1\"\n\
             endpoint = \"{endpoint}\"\npath_style = true\n\
             cdn_base_url = \"https://cdn.example.com\"\nlog_format = \"json\"\n{extra}"
        ),
    )
    .expect("write config");
    path
}

fn add_token(config: &Path) -> String {
    let out = aws_env(&mut Command::new(SERVER), STORE_KEY, STORE_SECRET)
        .args(["token", "add", "alice", "--config"])
        .arg(config)
        .output()
        .expect("token add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// `reelup-server serve` signing with the store's keys; its endpoint and its stderr.
fn serve(config: &Path) -> (Proc, String, std::process::ChildStderr) {
    let mut child = aws_env(&mut Command::new(SERVER), STORE_KEY, STORE_SECRET)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reelup-server serve");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let Ok(ready) = serde_json::from_str::<Value>(&line) else {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        panic!("serve did not start: {line:?}\n{err}")
    };
    let endpoint = ready["endpoint"].as_str().expect("endpoint").to_owned();
    (Proc(child), endpoint, stderr)
}

/// SIGTERM, then everything the server logged.
fn stop(p: Proc, mut stderr: std::process::ChildStderr) -> String {
    Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .expect("kill");
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).expect("logs");
    drop(p);
    logs
}

/// A free loopback port with nothing listening on it.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn addr_of(endpoint: &str) -> String {
    endpoint
        .strip_prefix("http://")
        .expect("http endpoint")
        .to_owned()
}

/// Sends `raw` on a new connection and reads until the server closes it or `wait` passes.
/// Returns what was read and whether the server closed the connection.
fn raw_exchange(addr: &str, raw: &[u8], wait: Duration) -> (String, bool) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.write_all(raw).expect("write");
    read_until_close(&mut conn, wait)
}

fn read_until_close(conn: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        conn.set_read_timeout(Some(left)).expect("timeout");
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::from_utf8_lossy(&got).into_owned(), false);
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
}

/// A GET over a raw connection with the given `Host`; the whole response.
fn get_with_host(addr: &str, path: &str, host: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (resp, _) = raw_exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(10),
    );
    resp
}

fn status_of(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"))
}

/// Attack: a production server fetches any key from the private bucket for anyone, with
/// its own credentials. `serve` has no CDN route at all, even for a key that exists.
#[test]
fn serve_has_no_cdn_route() {
    let local = Local::start();
    let bytes = b"a private video".repeat(100);
    let key = local.upload(&bytes);
    let http = reqwest::blocking::Client::new();
    let via_local = http
        .get(format!("{}/{key}", local.stack().cdn))
        .send()
        .expect("GET");
    assert_eq!(via_local.status(), 200, "the object is there");

    let config = write_config(local.dir.path(), &local.stack().s3_endpoint, "");
    let (server, endpoint, stderr) = serve(&config);
    let addr = addr_of(&endpoint);
    // Raw requests: an HTTP client would resolve `%2E` away before sending it.
    for path in [
        format!("/cdn/{key}"),
        "/cdn/..%2F".into(),
        "/cdn/%2E".into(),
    ] {
        let resp = get_with_host(&addr, &path, &addr, None);
        assert_eq!(status_of(&resp), 404, "{path}: {resp}");
        assert!(
            !resp.contains("a private video") && !resp.contains("<List"),
            "{path} served the bucket: {resp}"
        );
    }
    stop(server, stderr);
}

/// Attack: keys such as `..%2F` or `%2E` make the CDN route's signed read list every bucket
/// or every user's keys, or read another bucket on the same store.
#[test]
fn local_cdn_serves_only_keys_the_server_hands_out() {
    let local = Local::start();
    let key = local.upload(b"someone's video");
    // Another bucket on the same store, with an object the CDN must never reach.
    let other = local.dir.path().join("server/s3/other-bucket");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("x"), b"other bucket's secret").expect("write");

    let http = reqwest::blocking::Client::new();
    let cdn = &local.stack().cdn;
    let addr = addr_of(&local.stack().endpoint);
    let good = http.get(format!("{cdn}/{key}")).send().expect("GET");
    assert_eq!(good.status(), 200);
    assert_eq!(good.headers()["x-content-type-options"], "nosniff");
    assert_eq!(good.bytes().expect("body").as_ref(), b"someone's video");

    let id = key.split_once('/').expect("prefix").1;
    for attack in [
        "..%2F".to_owned(),
        "%2E".to_owned(),
        "%2e%2e/".to_owned(),
        ".%2F".to_owned(),
        "..%2F..%2F".to_owned(),
        "dev/..%2F..%2Fother-bucket/x".to_owned(),
        "..%2Fother-bucket%2Fx".to_owned(),
        "dev%2F..%2F..%2Fother-bucket%2Fx".to_owned(),
        format!("dev/{id}%3Flist-type=2"),
        format!("dev/..%2F{id}"),
        "dev/".to_owned(),
        String::new(),
    ] {
        // Raw requests: an HTTP client would resolve `%2E` and `%2e%2e` before sending.
        let resp = get_with_host(&addr, &format!("/cdn/{attack}"), &addr, None);
        assert_eq!(status_of(&resp), 404, "/cdn/{attack}: {resp}");
        assert!(
            !resp.contains("<List")
                && !resp.contains("<Bucket")
                && !resp.contains("other bucket's secret")
                && !resp.contains(id),
            "/cdn/{attack} leaked: {resp}"
        );
        if !attack.is_empty() {
            assert!(
                resp.to_ascii_lowercase()
                    .contains("x-content-type-options: nosniff"),
                "/cdn/{attack}: {resp}"
            );
        }
    }
}

/// Attack: DNS rebinding. A web page whose name now resolves to 127.0.0.1 reads videos and
/// signs uploads through the local stack; the browser sends the page's name as `Host`.
#[test]
fn local_stack_refuses_other_host_names() {
    let local = Local::start();
    let key = local.upload(b"video");
    let s = local.stack();
    let addr = addr_of(&s.endpoint);
    let port = addr.rsplit_once(':').expect("port").1.to_owned();
    let token = s.token.expose().to_owned();

    for path in [
        "/health".to_owned(),
        format!("/cdn/{key}"),
        "/s3/params?filename=a.mp4&type=video/mp4".to_owned(),
        "/whoami".to_owned(),
    ] {
        for host in [
            format!("evil.example:{port}"),
            "evil.example".to_owned(),
            format!("localhost.evil.example:{port}"),
            "127.0.0.1:1".to_owned(),
        ] {
            let resp = get_with_host(&addr, &path, &host, Some(&token));
            assert_eq!(status_of(&resp), 421, "{host} {path}: {resp}");
            assert!(
                resp.contains("loopback") && !resp.contains("X-Amz-") && !resp.contains("video"),
                "{host} {path}: {resp}"
            );
        }
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ] {
            let resp = get_with_host(&addr, &path, &host, Some(&token));
            assert_eq!(status_of(&resp), 200, "{host} {path}: {resp}");
        }
    }
    // The store is reached only with signatures, but it refuses foreign names too.
    let store = addr_of(&s.s3_endpoint);
    let resp = get_with_host(&store, &format!("/reelup/{key}"), "evil.example", None);
    assert_eq!(status_of(&resp), 421, "{resp}");
}

/// Attack: a store error quotes the presigned URL it failed on, signature and all, into the
/// 502 a client sees (and keeps in its queue) and into the server's log.
#[test]
fn store_errors_carry_no_presigned_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let config = write_config(dir.path(), &endpoint, "");
    let token = add_token(&config);
    let (server, api, stderr) = serve(&config);
    let resp = reqwest::blocking::Client::new()
        .post(format!("{api}/s3/multipart"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"filename": "a.mp4", "type": "video/mp4"}))
        .send()
        .expect("POST");
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().expect("json");
    assert_eq!(body["error"], "storage_error", "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("could not be reached") && message.contains("refused"),
        "says what is wrong: {message}"
    );
    let logs = stop(server, stderr);
    assert!(
        logs.contains("could not be reached"),
        "the failure is logged: {logs}"
    );
    for (what, text) in [("502 body", message), ("log", logs.as_str())] {
        for secret in [
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "?uploads",
            STORE_SECRET,
        ] {
            assert!(!text.contains(secret), "{what} contains {secret}: {text}");
        }
        assert!(!text.contains(&endpoint), "{what} quotes the URL: {text}");
    }
}

/// Attack: slowloris. A client sends half a request head and stalls, holding a
/// connection (and a task) for as long as it likes.
#[test]
fn clients_that_stall_in_the_headers_are_disconnected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:1",
        "[limits]\nheader_read_timeout_secs = 1\n",
    );
    let (server, api, stderr) = serve(&config);
    let addr = addr_of(&api);
    for (what, raw) in [
        ("half a request line", &b"GET /heal"[..]),
        (
            "half the headers",
            &b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1"[..],
        ),
        ("nothing at all", &b""[..]),
    ] {
        let started = Instant::now();
        let (resp, closed) = raw_exchange(&addr, raw, Duration::from_secs(6));
        assert!(
            closed,
            "{what}: still connected after {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{what}: closed only after {:?}",
            started.elapsed()
        );
        assert!(!resp.contains("200 OK"), "{what}: {resp}");
    }
    stop(server, stderr);
}

/// Attack: a request body sent a byte at a time (or not at all) holds a signing request
/// open; the request timeout answers it.
#[test]
fn slow_request_bodies_time_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:1",
        "[limits]\nrequest_timeout_secs = 1\n",
    );
    let token = add_token(&config);
    let (server, api, stderr) = serve(&config);
    let (resp, _) = raw_exchange(
        &addr_of(&api),
        format!(
            "POST /s3/multipart HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"filename\":"
        )
        .as_bytes(),
        Duration::from_secs(3),
    );
    assert!(
        resp.starts_with("HTTP/1.1 503") && resp.contains("\"timeout\""),
        "answered within 3 s: {resp:?}"
    );
    stop(server, stderr);
}

/// Attack: opening more connections than the server can hold. Over the cap, a connection
/// waits unserved until a served one closes.
#[test]
fn connections_over_the_cap_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:1",
        "[limits]\nmax_connections = 2\nheader_read_timeout_secs = 30\n",
    );
    let (server, api, stderr) = serve(&config);
    let addr = addr_of(&api);
    let health = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(&addr).expect("connect");
        conn.write_all(health).expect("write");
        let (resp, closed) = read_until_close(&mut conn, Duration::from_millis(1500));
        assert!(resp.starts_with("HTTP/1.1 200") && !closed, "{resp}");
        held.push(conn);
    }
    let mut third = TcpStream::connect(&addr).expect("the kernel queues it");
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let (resp, _) = read_until_close(&mut third, Duration::from_millis(1000));
    assert!(resp.is_empty(), "a third connection was served: {resp}");

    drop(held.pop());
    let (resp, _) = read_until_close(&mut third, Duration::from_secs(5));
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "served once a slot frees: {resp:?}"
    );
    drop((held, third));
    stop(server, stderr);
}

/// Attack: an anonymous client hammering the routes before authentication: `/health`, and
/// guessing tokens. It gets 429 with Retry-After; a valid token still works.
#[test]
fn anonymous_clients_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:1",
        "[limits]\nanonymous_requests_per_minute = 1\nanonymous_burst = 3\n",
    );
    let token = add_token(&config);
    let (server, api, stderr) = serve(&config);
    let http = reqwest::blocking::Client::new();
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..8 {
        let mut req = http.get(format!(
            "{api}/{}",
            if i % 2 == 0 { "health" } else { "whoami" }
        ));
        if i % 2 == 1 {
            req = req.bearer_auth(format!("rlp_guess_{i}"));
        }
        // A client cannot step around the limit by naming another address.
        req = req.header("X-Forwarded-For", format!("198.51.100.{i}"));
        let resp = req.send().expect("GET");
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            limited = Some((
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok()),
                resp.json::<Value>().expect("json"),
            ));
        }
    }
    assert_eq!(&statuses[..3], &[200, 401, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let (retry_after, body) = limited.expect("limited");
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "Retry-After: {retry_after:?}"
    );
    assert_eq!(body["error"], "rate_limited", "{body}");

    let whoami = http
        .get(format!("{api}/whoami"))
        .bearer_auth(&token)
        .send()
        .expect("GET");
    assert_eq!(whoami.status(), 200, "a valid token is not held back");
    stop(server, stderr);
}
