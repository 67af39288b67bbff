//! Invite links end to end: `reelup-server token add|invite` as an operator runs them, real
//! `reelup-server serve` replicas redeeming codes over HTTP, and a real `--local` process
//! whose embedded store is the bucket they share (and whose files show what was written).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use reelup_server::invite::{self, Invite};
use reelup_server::secret::ServerSecret;
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_reelup-server");
const STORE_KEY: &str = "REELUPINVITETEST";
const STORE_SECRET: &str = "invite-test-store-secret-never-shown";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_ACCESS_KEY_ID", STORE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", STORE_SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

/// The ready line of a server process, or a panic with what it logged.
fn ready_line(child: &mut Child) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    serde_json::from_str(&line).unwrap_or_else(|_| {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("the server did not start: {line:?}\n{err}")
    })
}

/// A bucket (the `--local` process's store) and a `serve` config signing for it.
struct Setup {
    _local: Proc,
    /// The local process's own API and CDN route, and its dev token.
    local_endpoint: String,
    local_cdn: String,
    local_token: String,
    /// Where the local store keeps bucket `reelup`'s objects as files.
    bucket_dir: PathBuf,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("local");
        let mut child = Command::new(SERVER)
            .args(["--local", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("REELUP_LOCAL_S3_ACCESS_KEY", STORE_KEY)
            .env("REELUP_LOCAL_S3_SECRET_KEY", STORE_SECRET)
            .env("REELUP_LOG", "warn,s3s=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start reelup-server --local");
        let ready = ready_line(&mut child);
        let field = |k: &str| ready[k].as_str().expect(k).to_owned();
        let config = dir.path().join("server.toml");
        std::fs::write(
            &config,
            format!(
                "# replicas behind one load balancer\n\
                 listen = \"127.0.0.1:0\"\nbucket = \"reelup\"\nregion = \"us-east-1\"\n\
                 endpoint = \"{}\"\npath_style = true\n\
                 cdn_base_url = \"https://cdn.example.com\"\n\
                 public_url = \"https://uploads.example.com\"\nlog_format = \"json\"\n\n\
                 [limits]\nanonymous_requests_per_minute = 100000\nanonymous_burst = 100000\n",
                field("s3")
            ),
        )
        .expect("write config");
        Self {
            _local: Proc(child),
            local_endpoint: field("endpoint"),
            local_cdn: field("cdn"),
            local_token: field("token"),
            bucket_dir: data.join("s3").join("reelup"),
            config,
            dir,
        }
    }

    /// `reelup-server token ARGS... --config <this config>`; stdout, or a panic.
    fn token(&self, args: &[&str]) -> String {
        let out = aws_env(&mut Command::new(SERVER))
            .arg("token")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("reelup-server token");
        assert!(
            out.status.success(),
            "token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// The secret `token add` made beside the config.
    fn secret(&self) -> ServerSecret {
        ServerSecret::load(&self.config.with_extension("secret")).expect("server secret")
    }

    /// A `serve` replica on this config; its endpoint.
    fn serve(&self) -> (Proc, String) {
        let mut child = aws_env(&mut Command::new(SERVER))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("REELUP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start reelup-server serve");
        let ready = ready_line(&mut child);
        (
            Proc(child),
            ready["endpoint"].as_str().expect("endpoint").to_owned(),
        )
    }

    /// Objects under the reserved invite prefix, as files in the store.
    fn markers(&self) -> Vec<String> {
        let dir = self.bucket_dir.join(".reelup").join("invites");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect()
    }
}

/// The code of an invite link, checked against the fixed format on the way.
fn code_of(link: &str) -> String {
    let url = url::Url::parse(link.trim()).expect("the link is a URL");
    assert_eq!(url.scheme(), "reelup");
    assert_eq!(url.host_str(), Some("connect"));
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing from {link}"))
    };
    assert_eq!(get("endpoint"), "https://uploads.example.com");
    assert_eq!(get("cdn"), "https://cdn.example.com");
    get("code")
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn redeem(endpoint: &str, code: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{endpoint}/invites/redeem"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .expect("POST /invites/redeem");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn whoami(endpoint: &str, token: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{endpoint}/whoami"))
        .bearer_auth(token)
        .send()
        .expect("GET /whoami");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

#[test]
fn an_invite_redeems_once_for_a_working_token() {
    let s = Setup::start();
    let link = s.token(&["add", "alice"]);
    assert_eq!(link.lines().count(), 1, "no QR code off a terminal: {link}");
    let code = code_of(&link);
    // Another device, with the QR code asked for: the link stays the first line.
    let second = s.token(&[
        "invite",
        "alice",
        "--expires",
        "2h",
        "--qr",
        "--profile-name",
        "studio b",
    ]);
    assert!(
        second
            .lines()
            .next()
            .is_some_and(|l| l.ends_with("&name=studio+b")),
        "{second}"
    );
    let mut lines = second.lines();
    let second_code = code_of(lines.next().expect("link line"));
    assert!(
        lines.any(|l| l.contains('█') || l.contains('▀') || l.contains('▄')),
        "a QR code follows: {second}"
    );
    let listed = s.token(&["list"]);
    assert!(listed.contains("alice\talice/\t2 devices"), "{listed}");
    let config = std::fs::read_to_string(&s.config).expect("config");
    assert!(config.starts_with("# replicas behind one load balancer\n"));

    let (_server, endpoint) = s.serve();
    let (status, body) = redeem(&endpoint, &code);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "alice");
    let token = body["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("rlp_") && token.len() == 68, "{token}");
    assert!(
        !link.contains(&token[4..]),
        "the link never carries the token"
    );
    assert!(
        !config.contains(&token[4..]),
        "the config keeps only hashes"
    );
    let (status, who) = whoami(&endpoint, &token);
    assert_eq!((status, who["user"].as_str()), (200, Some("alice")));
    assert_eq!(s.markers().len(), 1);

    let (status, body) = redeem(&endpoint, &code);
    assert_eq!((status, body["error"].as_str()), (410, Some("invite_used")));
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ask for a new invite link")),
        "{body}"
    );

    // The other device's link is its own, with its own token.
    let (status, body) = redeem(&endpoint, &second_code);
    assert_eq!(status, 200, "{body}");
    let token2 = body["token"].as_str().expect("token");
    assert_ne!(token2, token);
    assert_eq!(whoami(&endpoint, token2).0, 200);
    assert_eq!(s.markers().len(), 2);

    // `token invite` needs a public URL for its link: without one it names the setting.
    let bare = s.dir.path().join("bare.toml");
    let text = config.replace("public_url = \"https://uploads.example.com\"\n", "");
    std::fs::write(&bare, text).expect("write");
    std::fs::copy(
        s.config.with_extension("secret"),
        bare.with_extension("secret"),
    )
    .expect("secret");
    let out = aws_env(&mut Command::new(SERVER))
        .args(["token", "invite", "alice", "--config"])
        .arg(&bare)
        .output()
        .expect("token invite");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("public_url") && err.contains("--endpoint"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&bare).expect("read"),
        config.replace("public_url = \"https://uploads.example.com\"\n", ""),
        "nothing added without a link to show for it"
    );
}

#[test]
fn expired_forged_and_orphaned_codes_are_refused_and_write_nothing() {
    let s = Setup::start();
    s.token(&["add", "alice"]);
    let secret = s.secret();
    let now = SystemTime::now();
    // Issued two days ago for a day, through the library with its clock set back.
    let expired = invite::issue(
        &secret,
        "alice",
        now - Duration::from_secs(2 * 86400),
        invite::DEFAULT_VALID_FOR,
    );
    reelup_server::tokens::add_device(&s.config, "alice", &expired.token).expect("device");
    let good = invite::issue(&secret, "alice", now, invite::DEFAULT_VALID_FOR);
    reelup_server::tokens::add_device(&s.config, "alice", &good.token).expect("device");
    // For a user who is not (or no longer) in the config, and for a device never added.
    let nobody = invite::issue(&secret, "bob", now, invite::DEFAULT_VALID_FOR);
    let unlisted = invite::issue(&secret, "alice", now, invite::DEFAULT_VALID_FOR);
    let foreign = invite::issue(
        &ServerSecret::from_bytes([9; 32]),
        "alice",
        now,
        invite::DEFAULT_VALID_FOR,
    );
    let (_server, endpoint) = s.serve();

    let (status, body) = redeem(&endpoint, &expired.code);
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("invite_expired"))
    );

    let mut edited = good.code.clone().into_bytes();
    edited[12] = if edited[12] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("ascii");
    for forged in [
        edited.as_str(),
        &foreign.code,
        &good.code[..good.code.len() - 2],
        "",
        "not-a-code",
        &"A".repeat(300),
    ] {
        let (status, body) = redeem(&endpoint, forged);
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invite_invalid")),
            "{forged}: {body}"
        );
    }
    let (status, body) = redeem(&endpoint, &nobody.code);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invite_user_removed"))
    );
    let (status, body) = redeem(&endpoint, &unlisted.code);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invite_revoked"))
    );

    // Bodies that are not the shape, or far too big.
    let r = http()
        .post(format!("{endpoint}/invites/redeem"))
        .header("content-type", "application/json")
        .body("{\"code\": 1}")
        .send()
        .expect("POST");
    assert_eq!(r.status(), 400);
    let r = http()
        .post(format!("{endpoint}/invites/redeem"))
        .header("content-type", "application/json")
        .body(format!("{{\"code\": \"{}\"}}", "A".repeat(64 * 1024)))
        .send()
        .expect("POST");
    assert_eq!(r.status(), 413);

    assert_eq!(s.markers(), Vec::<String>::new(), "refusals write nothing");
    // The good code still works after all that.
    assert_eq!(redeem(&endpoint, &good.code).0, 200);
    assert_eq!(s.markers().len(), 1);
}

#[test]
fn two_replicas_sharing_a_bucket_let_each_code_work_once() {
    const PAIRS: usize = 20;
    let s = Setup::start();
    s.token(&["add", "alice"]);
    let secret = s.secret();
    let codes: Vec<String> = (0..PAIRS)
        .map(|_| {
            let i = invite::issue(
                &secret,
                "alice",
                SystemTime::now(),
                invite::DEFAULT_VALID_FOR,
            );
            reelup_server::tokens::add_device(&s.config, "alice", &i.token).expect("device");
            i.code
        })
        .collect();
    let (_a, a) = s.serve();
    let (_b, b) = s.serve();
    for code in codes {
        let barrier = Arc::new(Barrier::new(2));
        let racers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|endpoint| {
                let (barrier, code) = (barrier.clone(), code.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    redeem(&endpoint, &code)
                })
            })
            .collect();
        let mut results: Vec<(u16, Value)> = racers
            .into_iter()
            .map(|t| t.join().expect("racer"))
            .collect();
        results.sort_by_key(|(status, _)| *status);
        assert_eq!(results[0].0, 200, "{results:?}");
        assert_eq!(
            (results[1].0, results[1].1["error"].as_str()),
            (410, Some("invite_used")),
            "{results:?}"
        );
    }
    assert_eq!(s.markers().len(), PAIRS);
}

#[test]
fn used_invite_markers_are_out_of_every_users_reach() {
    let s = Setup::start();
    let code = code_of(&s.token(&["add", "alice"]));
    let marker = Invite::open(&s.secret(), &code, SystemTime::now())
        .expect("opens")
        .marker_key();
    let (_server, endpoint) = s.serve();
    let (status, body) = redeem(&endpoint, &code);
    assert_eq!(status, 200);
    let alice = body["token"].as_str().expect("token").to_owned();
    assert_eq!(s.markers().len(), 1, "the marker {marker} is in the bucket");

    // The CDN route (the local stack's) serves only keys of issued shape.
    let encoded = marker.replace('/', "%2F").replace('.', "%2E");
    for path in [marker.clone(), encoded, format!("dev/../{marker}")] {
        let r = http()
            .get(format!("{}/{path}", s.local_cdn))
            .send()
            .expect("GET cdn");
        assert_eq!(r.status(), 404, "{path}");
    }
    // No user can have the marker's key signed: not alice on a replica, not the dev user.
    for (endpoint, token) in [
        (endpoint.as_str(), alice.as_str()),
        (s.local_endpoint.as_str(), s.local_token.as_str()),
    ] {
        let key = url::form_urlencoded::byte_serialize(marker.as_bytes()).collect::<String>();
        let client = http();
        for req in [
            client.get(format!("{endpoint}/s3/multipart/x~--0/1?key={key}")),
            client.get(format!("{endpoint}/s3/multipart/x~--0?key={key}")),
            client.delete(format!("{endpoint}/s3/multipart/x~--0?key={key}")),
            client
                .post(format!("{endpoint}/s3/multipart/x~--0/complete?key={key}"))
                .json(&serde_json::json!({"parts": [{"PartNumber": 1, "ETag": "x"}]})),
        ] {
            let r = req.bearer_auth(token).send().expect("request");
            let status = r.status().as_u16();
            let body: Value = r.json().unwrap_or(Value::Null);
            assert_eq!(
                (status, body["error"].as_str()),
                (403, Some("forbidden")),
                "{body}"
            );
        }
        // Creating uploads names keys the server picks, under the user's prefix.
        let r = client
            .post(format!("{endpoint}/s3/multipart"))
            .bearer_auth(token)
            .json(&serde_json::json!({"filename": marker, "type": "video/mp4"}))
            .send()
            .expect("create");
        let body: Value = r.json().unwrap_or(Value::Null);
        if let Some(k) = body["key"].as_str() {
            assert!(!k.starts_with(".reelup"), "{k}");
        }
    }
}

#[test]
fn redeeming_is_under_the_anonymous_rate_limit() {
    let s = Setup::start();
    let code = code_of(&s.token(&["add", "alice"]));
    let text = std::fs::read_to_string(&s.config).expect("config");
    let strict = text.replace(
        "anonymous_requests_per_minute = 100000\nanonymous_burst = 100000",
        "anonymous_requests_per_minute = 1\nanonymous_burst = 3",
    );
    assert_ne!(strict, text);
    std::fs::write(&s.config, strict).expect("write");
    let (_server, endpoint) = s.serve();
    // Guessing codes: the burst, then 429 with Retry-After, before any code is looked at.
    for _ in 0..3 {
        assert_eq!(redeem(&endpoint, "guess-guess-guess-guess").0, 400);
    }
    let r = http()
        .post(format!("{endpoint}/invites/redeem"))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .expect("POST");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert!(s.markers().is_empty(), "the limited request wrote nothing");
}
