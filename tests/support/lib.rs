//! Helpers for the end-to-end tests: the real binaries, run as users run them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A binary of this workspace, built next to the test executable, or taken from
/// `REELUP_TEST_BIN_DIR` when set (several checkouts that share one build dir overwrite each
/// other's binaries there: copy yours aside and point this at them).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = match std::env::var_os("REELUP_TEST_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in target/<profile>/deps")
            .to_owned(),
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (./dev test does)",
        path.display()
    );
    path
}

/// `reelup-server --local` on free loopback ports with its own data dir; killed on drop.
pub struct LocalServer {
    child: Child,
    pub endpoint: String,
    pub cdn: String,
    pub token: String,
    /// The one-time invite link for the dev user from the ready line.
    pub invite: Option<String>,
    pub data_dir: PathBuf,
    _owned_dir: Option<tempfile::TempDir>,
}

impl LocalServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Self::start_in(dir.path());
        server._owned_dir = Some(dir);
        server
    }

    /// Starts on an existing data dir, e.g. to restart on what an earlier run left.
    pub fn start_in(data_dir: &Path) -> Self {
        Self::launch(data_dir, &[]).0
    }

    /// Starts the binary with `env` added; returns the server and its whole ready line.
    fn launch(data_dir: &Path, env: &[(&str, &str)]) -> (Self, serde_json::Value) {
        let mut cmd = Command::new(bin("reelup-server"));
        cmd.args(["--local", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            // s3s logs every refused request at ERROR; the tests refuse some on purpose.
            .env("REELUP_LOG", "warn,s3s=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn reelup-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the ready line");
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line {line:?} is not JSON: {e}"));
        let field = |k: &str| {
            ready[k]
                .as_str()
                .unwrap_or_else(|| panic!("ready line lacks {k}: {line}"))
                .to_owned()
        };
        let server = Self {
            endpoint: field("endpoint"),
            cdn: field("cdn"),
            token: field("token"),
            invite: ready["invite"].as_str().map(str::to_owned),
            child,
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
        };
        (server, ready)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file of `size` random bytes; returns its path and SHA-256.
pub fn random_file(dir: &Path, name: &str, size: usize) -> (PathBuf, String) {
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    let path = dir.join(name);
    std::fs::write(&path, &data).expect("write test file");
    (path, sha256_hex(&data))
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

/// Fetches a URL and returns its body's SHA-256.
pub fn fetch_sha256(url: &str) -> String {
    let mut resp = http().get(url).send().expect("GET streaming URL");
    assert_eq!(resp.status(), 200, "GET {url}");
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = resp.read(&mut buf).expect("read body");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex::encode(hasher.finalize())
}

/// The `reelup` CLI with the given config and data dirs (never the user's) and none of the
/// REELUP_* variables of the environment the tests run in; callers add their own.
pub fn reelup_command(config_dir: &Path, data_dir: &Path) -> Command {
    let mut cmd = Command::new(bin("reelup"));
    cmd.env_remove("REELUP_TOKEN")
        .env_remove("REELUP_ENDPOINT")
        .env_remove("REELUP_CDN")
        .env_remove("REELUP_PROFILE")
        .env("REELUP_CONFIG_DIR", config_dir)
        .env("REELUP_DATA_DIR", data_dir);
    cmd
}

/// Runs the `reelup` CLI with a clean environment plus `env`. Unless `env` names a
/// REELUP_DATA_DIR, each run gets a queue of its own, never the user's.
pub fn reelup(args: &[&str], env: &[(&str, &str)]) -> Output {
    let own_queue = tempfile::tempdir().expect("temp data dir");
    let mut cmd = reelup_command(&own_queue.path().join("config"), own_queue.path());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run reelup")
}

/// Keys the embedded store of [`LocalServer::start_with_store_keys`] accepts, so another
/// signer (a real Uppy Companion) can sign for the same store.
#[derive(Clone, Debug)]
pub struct StoreKeys {
    /// The store's base URL (path-style, region us-east-1).
    pub s3: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl StoreKeys {
    /// A presigned GET of `key` straight from the store. The local CDN route serves only
    /// keys of the shape reelup-server hands out, so objects another signer named (Uppy
    /// Companion's `<uuid>-<filename>`) are read back from the store itself.
    pub fn object_url(&self, key: &str) -> String {
        let store = reelup_server::store::ObjectStore::new(
            self.s3.parse().expect("store URL"),
            &self.bucket,
            "us-east-1",
            reelup_server::credentials::SigningKeys::fixed(&self.access_key, &self.secret_key),
            true,
            Duration::from_secs(300),
        )
        .expect("store");
        store.get_url(key).to_string()
    }
}

impl LocalServer {
    /// `reelup-server --local` whose embedded store uses fresh fixed keys
    /// (`REELUP_LOCAL_S3_ACCESS_KEY`/`_SECRET_KEY`); returns the server and the store.
    pub fn start_with_store_keys() -> (Self, StoreKeys) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut secret = [0u8; 24];
        rand::rng().fill_bytes(&mut secret);
        let access_key = format!("TESTKEY{:08X}", rand::random::<u32>());
        let secret_key = hex::encode(secret);
        let (mut server, ready) = Self::launch(
            dir.path(),
            &[
                ("REELUP_LOCAL_S3_ACCESS_KEY", &access_key),
                ("REELUP_LOCAL_S3_SECRET_KEY", &secret_key),
            ],
        );
        server._owned_dir = Some(dir);
        let field = |k: &str| ready[k].as_str().expect("ready line field").to_owned();
        let keys = StoreKeys {
            s3: field("s3"),
            bucket: field("bucket"),
            access_key,
            secret_key,
        };
        (server, keys)
    }
}

/// A real Uppy Companion (tests/companion/start.mjs) on a free loopback port, signing for
/// `store`; killed on drop. Panics with "run ./dev test" when Node.js or Companion's
/// packages are missing.
pub struct Companion {
    child: Child,
    pub endpoint: String,
    pub version: String,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _data_dir: tempfile::TempDir,
}

impl Companion {
    /// Where start.mjs and its package.json live.
    pub fn dir() -> PathBuf {
        manifest_dir().join("companion")
    }

    pub fn start(store: &StoreKeys) -> Self {
        let dir = Self::dir();
        let node_ok = Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            node_ok,
            "Node.js (`node`) is not installed or not on PATH; the Companion tests need it: \
             install Node.js 20+, then run ./dev test"
        );
        let installed = dir.join("node_modules/@uppy/companion/package.json");
        assert!(
            installed.exists(),
            "{} is missing: run ./dev test (it runs `npm install` in {})",
            installed.display(),
            dir.display()
        );
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new("node")
            .arg(dir.join("start.mjs"))
            .arg("0")
            .current_dir(&dir)
            .env("COMPANION_AWS_ENDPOINT", &store.s3)
            .env("COMPANION_AWS_BUCKET", &store.bucket)
            .env("COMPANION_AWS_KEY", &store.access_key)
            .env("COMPANION_AWS_SECRET", &store.secret_key)
            .env("COMPANION_DATADIR", data_dir.path())
            .env_remove("NODE_ENV")
            .env_remove("COMPANION_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node tests/companion/start.mjs");

        // Companion logs one line per request to stderr: keep the last lines for messages.
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut logs = sink.lock().expect("logs");
                if logs.len() >= 200 {
                    logs.remove(0);
                }
                logs.push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Drain whatever else comes so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let mut companion = Self {
            child,
            endpoint: String::new(),
            version: String::new(),
            logs,
            _data_dir: data_dir,
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => {
                // Give the stderr reader a moment to collect the reason.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "Companion did not start ({other:?}); its output:\n{}",
                    companion.logs()
                )
            }
        };
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("Companion's ready line {line:?} is not JSON: {e}"));
        companion.endpoint = ready["endpoint"].as_str().expect("endpoint").to_owned();
        companion.version = ready["version"].as_str().expect("version").to_owned();
        companion
    }

    /// The last lines Companion logged.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private D-Bus session with a real Secret Service (gnome-keyring-daemon, unlocked) and
/// a HOME of its own: tests store tokens in a real keyring, never in the user's. Both
/// daemons are ended by PID on drop.
pub struct KeyringSession {
    dbus: Child,
    keyring: Child,
    pub bus_address: String,
    pub home: tempfile::TempDir,
}

impl KeyringSession {
    pub fn start() -> Self {
        let home = tempfile::tempdir().expect("keyring home");
        // No display for the daemons: a locked collection then fails at once instead of
        // waiting on an unlock prompt (gcr-prompter) that nobody will answer.
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (apt: dbus) must be installed; `./dev test` installs it");
        let mut address = String::new();
        BufReader::new(dbus.stdout.take().expect("stdout"))
            .read_line(&mut address)
            .expect("bus address");
        let bus_address = address.trim().to_owned();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus_address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (apt: gnome-keyring) must be installed");
        {
            use std::io::Write;
            let mut stdin = keyring.stdin.take().expect("stdin");
            stdin
                .write_all(b"test-keyring-password")
                .expect("unlock password");
        }
        let session = Self {
            dbus,
            keyring,
            bus_address,
            home,
        };
        // Ready once the Secret Service answers on the bus.
        for _ in 0..100 {
            let out = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &session.bus_address)
                .output()
                .expect("dbus-send");
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return session;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the Secret Service did not come up on the private bus");
    }

    /// Environment for a child that should use this keyring.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address.clone()),
            ("HOME", self.home.path().display().to_string()),
        ]
    }

    /// Points `cmd` at `keyring`, or (None) at a bus nobody listens on: a machine without
    /// a Secret Service.
    pub fn apply(keyring: Option<&Self>, cmd: &mut Command) {
        match keyring {
            Some(k) => {
                cmd.envs(k.env());
            }
            None => {
                cmd.env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
            }
        }
    }

    /// Runs `secret-tool` (apt: libsecret-tools) against this keyring.
    pub fn secret_tool(&self, args: &[&str]) -> Output {
        Command::new("secret-tool")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .output()
            .expect("secret-tool (apt: libsecret-tools) must be installed")
    }

    /// The token stored for a Reelup profile, read straight from the Secret Service (the
    /// token of a bound entry, or a bare token as older versions stored it).
    pub fn stored_token(&self, profile: &str) -> Option<String> {
        let entry = self.stored_entry(profile)?;
        match serde_json::from_str::<serde_json::Value>(&entry) {
            Ok(v) if v.get("reelup-token").is_some() => v["token"].as_str().map(str::to_owned),
            _ => Some(entry),
        }
    }

    /// A Reelup profile's keyring entry as stored, read straight from the Secret Service.
    pub fn stored_entry(&self, profile: &str) -> Option<String> {
        let out = self.secret_tool(&[
            "lookup",
            "service",
            "dev.reelup.Reelup",
            "username",
            profile,
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

impl KeyringSession {
    /// Stores `secret` as a Reelup profile's entry, as the `keyring` crate files it.
    pub fn store_entry(&self, profile: &str, secret: &str) {
        use std::io::Write;
        let mut child = Command::new("secret-tool")
            .args([
                "store",
                "--label=reelup test",
                "service",
                "dev.reelup.Reelup",
                "username",
                profile,
                "target",
                "default",
                "application",
                "rust-keyring",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .stdin(Stdio::piped())
            .spawn()
            .expect("secret-tool (apt: libsecret-tools) must be installed");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(secret.as_bytes())
            .expect("write the secret");
        assert!(child.wait().expect("secret-tool").success());
    }

    /// Locks the login collection, as a screen lock or `secret-tool lock` does: reading a
    /// stored secret or storing a new one then needs an unlock prompt, which fails here
    /// (no display), so the keyring refuses.
    pub fn lock(&self) {
        let out = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .output()
            .expect("dbus-send");
        assert!(out.status.success(), "{out:?}");
    }
}

/// `(method, path, authorization)` of one request an [`HttpSpy`] saw.
pub type SeenRequest = (String, String, Option<String>);

/// A plain HTTP server on loopback that answers every request with `answer(method, path)`
/// and records each request's `Authorization` header: a hostile endpoint, to show what a
/// client sends it. Runs until the test process ends.
pub struct HttpSpy {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<SeenRequest>>>,
}

impl HttpSpy {
    pub fn start(answer: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, answer) = (seen.clone(), std::sync::Arc::new(answer));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || serve_one(conn, &log, answer.as_ref()));
            }
        });
        Self { url, seen }
    }

    /// `(method, path, authorization)` of every request so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any request carried `secret` in its Authorization header.
    pub fn saw(&self, secret: &str) -> bool {
        self.requests()
            .iter()
            .any(|(_, _, auth)| auth.as_deref().is_some_and(|a| a.contains(secret)))
    }
}

fn serve_one(
    conn: std::net::TcpStream,
    log: &std::sync::Mutex<Vec<SeenRequest>>,
    answer: &(dyn Fn(&str, &str) -> (u16, String) + Send + Sync),
) {
    use std::io::Write;
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut conn = conn;
    // One request per connection (the answer says `Connection: close`).
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (mut auth, mut length) = (None, 0usize);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(value.trim().to_owned()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((method.clone(), path.clone(), auth));
    let (status, text) = answer(&method, &path);
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                found.push(p);
            }
        }
    }
    found
}

/// A loopback address nothing listens on yet (the port is free when this returns).
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

/// The local stack of `opts`, with its store behind a fault-injecting proxy: URLs are
/// signed for the proxy's address, so every upload goes through it.
///
/// The store's port is picked free, then bound by the stack: another process (a second test
/// run at once) may take it in between, so a port found taken is picked again.
pub async fn stack_behind_proxy(
    opts: reelup_server::LocalOptions,
) -> (reelup_server::LocalStack, reelup_testkit::FaultProxy) {
    let mut tries = 0;
    loop {
        let store_addr = free_addr();
        let proxy = reelup_testkit::FaultProxy::start(store_addr)
            .await
            .expect("proxy");
        let mut opts = opts.clone();
        opts.s3_listen = store_addr;
        opts.store_public_endpoint = Some(proxy.url());
        match reelup_server::LocalStack::start(opts).await {
            Ok(stack) => return (stack, proxy),
            Err(e) if tries < 5 => {
                tries += 1;
                eprintln!("the store's port was taken meanwhile ({e:#}); another");
            }
            Err(e) => panic!("stack: {e:#}"),
        }
    }
}

/// The tests' folder (`tests/`), as cargo gives it when it runs the test. Read at run time:
/// with the build folder shared between clones (as ./dev and CI do), a test binary built
/// in one clone may run from another, and a path baked in at compile time would point at
/// the wrong, or a deleted, checkout.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The SHA-256 (hex) of what `url` serves: how a test checks a streaming link is
/// byte-identical to the file.
pub async fn served_sha256(url: &str) -> String {
    let body = reqwest::get(url)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    sha256_hex(&body)
}
