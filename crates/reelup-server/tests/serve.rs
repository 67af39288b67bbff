//! `reelup-server serve|check|token` as operators run them: the real binary, a config file,
//! and STS AssumeRole against moto's STS on loopback. moto checks no signatures, so these
//! tests assert on what the server asks for and what it signs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use reelup_server::secret::{Declared, ServerSecret};
use reelup_server::users::hash_token;
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_reelup-server");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto's server on a free loopback port, from the test venv (`./dev test` sets it up).
fn moto() -> (Proc, String) {
    let python = std::env::var("REELUP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("REELUP_TEST_PYTHON is not set: run `./dev test`, which installs moto in its venv")
    });
    let port = free_port();
    let child = Proc(
        Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto"),
    );
    let url = format!("http://127.0.0.1:{port}");
    // Ready when it answers HTTP, not when something accepts on the port: a connect alone
    // once passed while the server that then asked it for credentials was refused.
    for _ in 0..400 {
        if answers_http(port) {
            return (child, url);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto did not start on {url}");
}

fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 8];
    conn.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && conn.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

/// Environment with base credentials and no way to reach a real AWS or an instance role.
fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_ACCESS_KEY_ID", "AKIDBASEEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "base-secret-never-logged")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\nbucket = \"videos\"\nregion = \"eu-west-1\"\n\
             endpoint = \"http://127.0.0.1:1\"\npath_style = true\n\
             cdn_base_url = \"https://cdn.example.com\"\nlog_format = \"json\"\n{extra}"
        ),
    )
    .expect("write config");
    path
}

/// Starts `serve`; returns the process, its endpoint and a reader of its stderr.
fn serve(config: &Path) -> (Proc, String, std::process::ChildStderr) {
    let mut child = aws_env(&mut Command::new(SERVER))
        .args(["serve", "--config"])
        .arg(config)
        .env("REELUP_LOG", "debug")
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

fn get(endpoint: &str, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(format!("{endpoint}{path}"))
        .bearer_auth(token)
        .send()
        .expect("GET");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn add_token(config: &Path, name: &str) -> String {
    let out = aws_env(&mut Command::new(SERVER))
        .args(["token", "add", name, "--config"])
        .arg(config)
        .output()
        .expect("token add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let text = std::fs::read_to_string(config).expect("read");
    assert!(!text.contains(&token), "the config keeps only the hash");
    token
}

/// SIGTERM, as systemd stops it; the server must exit cleanly.
fn terminate(mut p: Proc) -> std::process::ExitStatus {
    let pid = p.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    for _ in 0..100 {
        if let Some(status) = p.0.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("reelup-server did not stop within 5 s of SIGTERM");
}

#[test]
fn assumed_role_credentials_sign_everything_and_reach_clients_via_sts() {
    let (_moto, sts) = moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[credentials]\nrole_arn = \"arn:aws:iam::123456789012:role/reelup-signer\"\n\
             sts_endpoint = \"{sts}\"\nsession_duration_secs = 3600\n[sts]\nenabled = true\n"
        ),
    );
    let token = add_token(&config, "alice");

    let check = aws_env(&mut Command::new(SERVER))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        said.contains("OK") && said.contains("(temporary credentials)"),
        "{said}"
    );
    assert!(said.contains("GET /s3/sts is on"), "{said}");

    let (server, endpoint, mut stderr) = serve(&config);
    let (status, params) = get(
        &endpoint,
        &token,
        "/s3/params?filename=a.mp4&type=video/mp4",
    );
    assert_eq!(status, 200, "{params}");
    let fields = &params["fields"];
    let credential = fields["X-Amz-Credential"].as_str().expect("credential");
    let session_token = fields["X-Amz-Security-Token"]
        .as_str()
        .expect("temporary credentials add a token");
    assert!(!session_token.is_empty());
    assert!(
        !credential.starts_with("AKIDBASEEXAMPLE"),
        "signed with the assumed role, not the base keys: {credential}"
    );
    assert!(
        credential.ends_with("/eu-west-1/s3/aws4_request"),
        "{credential}"
    );
    let policy = base64::engine::general_purpose::STANDARD
        .decode(fields["Policy"].as_str().expect("policy"))
        .expect("base64");
    let policy: Value = serde_json::from_slice(&policy).expect("json");
    assert!(
        policy["conditions"]
            .as_array()
            .expect("conditions")
            .contains(&serde_json::json!({"X-Amz-Security-Token": session_token})),
        "the token is pinned in the policy"
    );

    // Part URLs carry the same temporary credentials. (The store is unreachable here, so
    // the uploadId is sealed as the server would, with the secret it made beside the config.)
    let key = "alice/0d9c6a36-8f43-4c51-9a6e-2f8f2a6f7a11.mp4";
    let upload_id = ServerSecret::load(&dir.path().join("server.secret"))
        .expect("the server made its secret")
        .seal_upload_id("alice", key, "s3-upload-1", Declared::default());
    let (status, part) = get(
        &endpoint,
        &token,
        &format!("/s3/multipart/{upload_id}/3?key={key}"),
    );
    assert_eq!(status, 200, "{part}");
    let url = url::Url::parse(part["url"].as_str().expect("url")).expect("url");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["X-Amz-Security-Token"], session_token);
    assert_eq!(query["partNumber"], "3");
    assert_eq!(query["uploadId"], "s3-upload-1", "S3 sees its own uploadId");
    assert!(url.path().ends_with(key), "{url}");

    // Companion's /s3/sts: credentials for the client, from a second AssumeRole.
    let (status, sts_body) = get(&endpoint, &token, "/s3/sts");
    assert_eq!(status, 200, "{sts_body}");
    let c = &sts_body["credentials"];
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            c[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} in {sts_body}"
        );
    }
    assert_eq!(sts_body["bucket"], "videos");
    assert_eq!(sts_body["region"], "eu-west-1");

    let (status, _) = get(&endpoint, "rlp_wrong", "/whoami");
    assert_eq!(status, 401);

    assert!(terminate(server).success(), "clean exit on SIGTERM");
    let mut logs = String::new();
    stderr.read_to_string(&mut logs).expect("logs");
    assert!(!logs.is_empty());
    for line in logs.lines() {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
    }
    for secret in [
        token.as_str(),
        "base-secret-never-logged",
        session_token,
        c["SecretAccessKey"].as_str().expect("secret"),
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(
        logs.contains("request refused"),
        "refusals are logged: {logs}"
    );
}

#[test]
fn check_explains_problems_and_bad_configs_do_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "bucket = \"Bad_Bucket\"\ncdn_base_url = \"http://cdn.example.com\"\n",
    )
    .expect("write");
    for cmd in ["check", "serve"] {
        let out = aws_env(&mut Command::new(SERVER))
            .args([cmd, "--config"])
            .arg(&config)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml:1: bucket:"), "{cmd}: {err}");
        assert!(
            err.contains("bad.toml:2: cdn_base_url:") && err.contains("https"),
            "{cmd}: {err}"
        );
    }
    let missing = aws_env(&mut Command::new(SERVER))
        .args(["check", "--config", "/nonexistent/server.toml"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no such file") && err.contains("reelup-server.example.toml"),
        "{err}"
    );
}

#[test]
fn a_cloudfront_key_is_checked_and_signs_the_served_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("cf-key.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .expect("openssl");
    assert!(made.status.success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = write_config(
        dir.path(),
        "[cloudfront]\nkey_pair_id = \"K2JCJMDEHXQW5F\"\nprivate_key_file = \"cf-key.pem\"\n\
         require_signed_links = true\n",
    );
    let check = || {
        aws_env(&mut Command::new(SERVER))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("check")
    };
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = check();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("signed as K2JCJMDEHXQW5F (RSA-2048), always"),
        "{said}"
    );
    assert!(
        said.contains("BEGIN PUBLIC KEY") && !said.contains("PRIVATE"),
        "{said}"
    );

    let alice = add_token(&config, "alice");
    let (server, endpoint, mut stderr) = serve(&config);
    let (_, params) = get(
        &endpoint,
        &alice,
        "/s3/params?filename=a.mp4&type=video/mp4",
    );
    let url = params["streamingUrl"].as_str().expect("streamingUrl");
    assert!(url.starts_with("https://cdn.example.com/alice/"), "{url}");
    assert!(
        url.contains("?Expires=") && url.ends_with("&Key-Pair-Id=K2JCJMDEHXQW5F"),
        "{url}"
    );
    assert!(
        params["streamingUrlExpiresAt"].as_u64().is_some(),
        "{params}"
    );
    drop(server);
    let mut log = String::new();
    let _ = stderr.read_to_string(&mut log);
    let pem = std::fs::read_to_string(&key).expect("key");
    let line = pem.lines().nth(1).expect("a base64 line");
    assert!(!log.contains(line), "the private key reached the log");
}

#[test]
fn static_credentials_and_token_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let alice = add_token(&config, "alice");
    let bob = add_token(&config, "bob");
    let (server, endpoint, _stderr) = serve(&config);
    assert_eq!(
        get(&endpoint, &alice, "/whoami"),
        (200, serde_json::json!({"user": "alice", "prefix": "alice"}))
    );
    assert_eq!(get(&endpoint, &bob, "/whoami").1["prefix"], "bob");
    let (_, params) = get(
        &endpoint,
        &alice,
        "/s3/params?filename=a.mp4&type=video/mp4",
    );
    assert!(
        params["fields"]["X-Amz-Credential"]
            .as_str()
            .expect("cred")
            .starts_with("AKIDBASEEXAMPLE/")
    );
    assert!(
        params["fields"].get("X-Amz-Security-Token").is_none(),
        "static keys carry no token"
    );
    assert_eq!(params["url"], "http://127.0.0.1:1/videos/");
    let (status, body) = get(&endpoint, &alice, "/s3/sts");
    assert_eq!(
        (status, body["error"].as_str()),
        (501, Some("sts_unavailable"))
    );
    // Without a [cloudfront] key, links are plain and /reelup/link says why.
    assert!(params.get("streamingUrlExpiresAt").is_none(), "{params}");
    let key = params["fields"]["key"].as_str().expect("key");
    let r = reqwest::blocking::Client::new()
        .post(format!("{endpoint}/reelup/link"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({ "key": key }))
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 501);
    let body: Value = r.json().expect("json");
    assert_eq!(body["error"], "links_unavailable", "{body}");
    drop(server);

    let out = aws_env(&mut Command::new(SERVER))
        .args(["token", "remove", "alice", "--config"])
        .arg(&config)
        .output()
        .expect("remove");
    assert!(out.status.success());
    let (_server, endpoint, _stderr) = serve(&config);
    assert_eq!(
        get(&endpoint, &alice, "/whoami").0,
        401,
        "a removed user's token stops working"
    );
    assert_eq!(get(&endpoint, &bob, "/whoami").0, 200);
}

/// A role to sign with is not a switch for `/s3/sts`: its credentials ignore the type and
/// size rules and can overwrite the user's objects, so only `[sts] enabled` hands them out.
#[test]
fn a_role_alone_does_not_turn_on_sts() {
    let (_moto, sts) = moto();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[credentials]\nrole_arn = \"arn:aws:iam::123456789012:role/reelup-signer\"\n\
             sts_endpoint = \"{sts}\"\nsession_duration_secs = 3600\n"
        ),
    );
    let token = add_token(&config, "alice");
    let (server, endpoint, _stderr) = serve(&config);
    let (status, body) = get(&endpoint, &token, "/s3/sts");
    assert_eq!(status, 501, "role_arn alone handed out credentials: {body}");
    assert_eq!(body["error"], "sts_unavailable");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("[sts] enabled = true"),
        "{body}"
    );
    // Signing still uses the role.
    let (status, params) = get(
        &endpoint,
        &token,
        "/s3/params?filename=a.mp4&type=video/mp4",
    );
    assert_eq!(status, 200, "{params}");
    assert!(params["fields"]["X-Amz-Security-Token"].is_string());
    assert!(terminate(server).success());

    // And the switch without a role is a config problem, named with its line.
    let bad = write_config(dir.path(), "[sts]\nenabled = true\n");
    let out = aws_env(&mut Command::new(SERVER))
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.toml:9: enabled:") && err.contains("credentials.role_arn"),
        "{err}"
    );
}

/// The uploadId secret: made at first start beside the config (mode 0600), the same after
/// a restart, and a clear refusal to start when it is unusable.
#[test]
fn the_server_secret_is_made_once_kept_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    let alice = add_token(&config, "alice");
    let secret_file = dir.path().join("server.secret");
    assert!(!secret_file.exists());

    let (server, endpoint, _stderr) = serve(&config);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .expect("made at start")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let key = "alice/0d9c6a36-8f43-4c51-9a6e-2f8f2a6f7a11.mp4";
    let sealed = ServerSecret::load(&secret_file)
        .expect("secret")
        .seal_upload_id("alice", key, "s3-upload-1", Declared::default());
    let sign = |endpoint: &str, id: &str| {
        get(endpoint, &alice, &format!("/s3/multipart/{id}/1?key={key}")).0
    };
    assert_eq!(sign(&endpoint, &sealed), 200);
    // Keyed the old way, with what the user knows: refused.
    let token_keyed = ServerSecret::from_bytes(hash_token(&alice)).seal_upload_id(
        "alice",
        key,
        "s3-upload-1",
        Declared::default(),
    );
    assert_eq!(sign(&endpoint, &token_keyed), 403);
    let before = std::fs::read(&secret_file).expect("secret");
    assert!(terminate(server).success());

    let (server, endpoint, _stderr) = serve(&config);
    assert_eq!(std::fs::read(&secret_file).expect("secret"), before);
    assert_eq!(sign(&endpoint, &sealed), 200, "uploadIds survive a restart");
    assert!(terminate(server).success());

    let start_fails = |what: &str| {
        let out = aws_env(&mut Command::new(SERVER))
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .expect("serve");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "started with {what}: {err}");
        assert!(
            err.contains(&secret_file.display().to_string()),
            "{what}: {err}"
        );
        err
    };
    std::fs::write(&secret_file, "0123abcd\n").expect("write");
    let err = start_fails("a short secret");
    assert!(
        err.contains("not 64 hex characters") && err.contains("8 hex characters"),
        "{err}"
    );
    std::fs::remove_file(&secret_file).expect("remove");
    std::fs::create_dir(&secret_file).expect("a directory in its place");
    let err = start_fails("an unreadable secret");
    assert!(err.contains("cannot read the server secret"), "{err}");
    std::fs::remove_dir(&secret_file).expect("remove");

    // secret_file moves it; `check` makes it when missing and says so.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).expect("read").replacen(
            "bucket =",
            "secret_file = \"keys/upload.secret\"\nbucket =",
            1,
        ),
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("keys")).expect("mkdir");
    let out = aws_env(&mut Command::new(SERVER))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("check");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("upload.secret (created, mode 0600)"),
        "{said}"
    );
    assert!(dir.path().join("keys/upload.secret").exists());
    assert!(!secret_file.exists());
}

/// A launcher may stop the server the moment it reads the ready line: SIGTERM then must be
/// a clean shutdown, not the default action killing the process, in serve and local mode.
#[test]
fn a_sigterm_right_after_the_ready_line_is_a_clean_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "");
    add_token(&config, "alice");
    for _ in 0..5 {
        let (server, _endpoint, _stderr) = serve(&config);
        let status = terminate(server);
        assert!(status.success(), "serve: {status:?}");
    }
    for _ in 0..5 {
        let mut child = Command::new(SERVER)
            .args(["--local", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("local"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start reelup-server --local");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        assert!(line.contains("\"endpoint\""), "{line}");
        let status = terminate(Proc(child));
        assert!(status.success(), "--local: {status:?}");
    }
}
