//! Helpers for the end-to-end tests: the real binaries, run as users run them.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A binary of this workspace, built next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
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
        let mut child = Command::new(bin("reelup-server"))
            .args(["--local", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            // s3s logs every refused request at ERROR; the tests refuse some on purpose.
            .env("REELUP_LOG", "warn,s3s=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn reelup-server");
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
        Self {
            endpoint: field("endpoint"),
            cdn: field("cdn"),
            token: field("token"),
            child,
            data_dir: data_dir.to_owned(),
            _owned_dir: None,
        }
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

/// Runs the `reelup` CLI with a clean environment plus `env`.
pub fn reelup(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin("reelup"));
    cmd.args(args)
        .env_remove("REELUP_TOKEN")
        .env_remove("REELUP_ENDPOINT")
        .env_remove("REELUP_CDN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run reelup")
}
