//! `reelup login --invite` end to end: the invite link of a real `reelup-server --local`
//! (its ready line), the real `reelup` binary, and a real Secret Service (gnome-keyring on a
//! private D-Bus) for the token.

use std::path::Path;
use std::process::{Output, Stdio};

use reelup_tests::{
    HttpSpy, KeyringSession, LocalServer, fetch_sha256, files_containing, http, random_file,
    reelup_command,
};

fn reelup_in(dirs: &Path, keyring: &KeyringSession, args: &[&str]) -> Output {
    reelup_with(dirs, Some(keyring), args)
}

/// `reelup` with this keyring, or (None) on a bus nobody listens on: no Secret Service.
fn reelup_with(dirs: &Path, keyring: Option<&KeyringSession>, args: &[&str]) -> Output {
    let mut cmd = reelup_command(&dirs.join("config"), &dirs.join("data"));
    cmd.args(args)
        .env("REELUP_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    KeyringSession::apply(keyring, &mut cmd);
    cmd.output().expect("run reelup")
}

/// `reelup` with this keyring, `stdin` as its input and `env` added.
fn reelup_full(
    dirs: &Path,
    keyring: &KeyringSession,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut cmd = reelup_command(&dirs.join("config"), &dirs.join("data"));
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    KeyringSession::apply(Some(keyring), &mut cmd);
    let mut child = cmd.spawn().expect("run reelup");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    child.wait_with_output().expect("reelup output")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_invite_link_sets_up_a_profile_that_uploads_and_works_once() {
    let server_dir = tempfile::tempdir().expect("server data dir");
    let server = LocalServer::start_in(server_dir.path());
    let link = server.invite.clone().expect("the ready line has an invite");
    assert!(link.starts_with("reelup://connect?"), "{link}");
    assert!(!link.contains(&server.token), "the link holds no token");
    let keyring = KeyringSession::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();

    // Not a link at all: refused before anything is asked of the server.
    let out = reelup_in(
        dirs,
        &keyring,
        &["login", "--invite", "https://example.com/x"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a Reelup invite link"),
        "{}",
        text(&out)
    );
    assert!(!dirs.join("config/config.toml").exists());
    // An existing profile of that name keeps its own settings; only where it points changes.
    let out = reelup_in(
        dirs,
        &keyring,
        &[
            "profile",
            "add",
            "local",
            "--endpoint",
            "https://old.example.com",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = reelup_in(
        dirs,
        &keyring,
        &["profile", "set", "local", "--parts-in-flight", "7"],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Without a keyring to store the token in, the code is not spent.
    let before = std::fs::read_to_string(dirs.join("config/config.toml")).expect("config");
    let out = reelup_with(dirs, None, &["login", "--invite", &link]);
    assert!(!out.status.success());
    assert!(text(&out).contains("REELUP_TOKEN"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dirs.join("config/config.toml")).expect("config"),
        before
    );

    let out = reelup_in(dirs, &keyring, &["login", "--invite", &link]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("added profile \"local\"") && said.contains("as dev"),
        "{said}"
    );
    let token = keyring.stored_token("local").expect("token in the keyring");
    assert_ne!(token, server.token, "a token of its own, not the dev token");
    let config_path = dirs.join("config/config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config.toml");
    assert!(config.contains("default = \"local\""), "{config}");
    assert!(config.contains(&server.endpoint) && config.contains(&server.cdn));
    assert!(!config.contains("old.example.com"), "{config}");
    assert!(config.contains("parts-in-flight = 7"), "{config}");

    // The stored token uploads.
    let (file, sha) = random_file(dirs, "clip.mp4", 3 << 20);
    let out = reelup_in(
        dirs,
        &keyring,
        &["upload", file.to_str().expect("utf8"), "--json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json line");
    assert_eq!(fetch_sha256(line["url"].as_str().expect("url")), sha);

    // The same link again: used, and nothing changes.
    let out = reelup_in(
        dirs,
        &keyring,
        &["login", "--invite", &link, "--profile", "again"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already been used") && text(&out).contains("new invite link"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config.toml"),
        config
    );
    assert_eq!(keyring.stored_token("again"), None);
    assert_eq!(keyring.stored_token("local"), Some(token.clone()));

    // On another machine (fresh config dir), the used link writes nothing at all.
    let other = tempfile::tempdir().expect("tempdir");
    let out = reelup_in(other.path(), &keyring, &["login", "--invite", &link]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already been used"), "{}", text(&out));
    assert!(!other.path().join("config/config.toml").exists());

    // A restart of the stack (a new invite in its ready line) keeps the invited device.
    drop(server);
    let server = LocalServer::start_in(server_dir.path());
    assert_ne!(server.invite.as_deref(), Some(link.as_str()));
    // (It listens on a new port, so the token is checked there directly.)
    let who: serde_json::Value = http()
        .get(format!("{}/whoami", server.endpoint))
        .bearer_auth(&token)
        .send()
        .expect("GET /whoami")
        .json()
        .expect("json");
    assert_eq!(who["user"], "dev");

    // The token is nowhere on disk.
    let on_disk = files_containing(dirs, &token);
    assert!(on_disk.is_empty(), "token found in {on_disk:?}");
}

const CODE: &str = "AQAAAABpZXNhbHQxMjM0NTY3OGFsaWNlX3NpZ25hdHVyZQ";

/// A link naming `endpoint` (and its /cdn) with a well-formed code, for profile `name`.
fn link_to(endpoint: &str, name: &str) -> String {
    let enc = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    format!(
        "reelup://connect?endpoint={}&cdn={}&code={CODE}&name={name}",
        enc(endpoint),
        enc(&format!("{endpoint}/cdn"))
    )
}

/// A hostile endpoint: it "redeems" any code for `token`, and refuses everything else
/// while recording what was sent to it.
fn hostile_redeeming(token: String) -> HttpSpy {
    HttpSpy::start(move |method, path| {
        if method == "POST" && path == "/invites/redeem" {
            (
                200,
                serde_json::json!({ "token": token, "user": "studio" }).to_string(),
            )
        } else {
            (
                401,
                r#"{"error":"unauthorized","message":"who are you"}"#.to_owned(),
            )
        }
    })
}

/// A profile `studio` on a real server, logged in with the server's token.
fn studio_profile(dirs: &Path, keyring: &KeyringSession, server: &LocalServer) {
    let out = reelup_in(
        dirs,
        keyring,
        &[
            "profile",
            "add",
            "studio",
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = reelup_full(
        dirs,
        keyring,
        &["login", "--profile", "studio"],
        &format!("{}\n", server.token),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
}

/// Uploads a small file with the default profile; `Ok` with the URL, or the failure text.
fn upload_one(
    dirs: &Path,
    keyring: &KeyringSession,
    env: &[(&str, &str)],
) -> Result<String, String> {
    let (file, sha) = random_file(dirs, "clip.mp4", 256 << 10);
    let out = reelup_full(
        dirs,
        keyring,
        &["upload", file.to_str().expect("utf8"), "--json"],
        "",
        env,
    );
    if !out.status.success() {
        return Err(text(&out));
    }
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json line");
    let url = line["url"].as_str().expect("url").to_owned();
    assert_eq!(fetch_sha256(&url), sha);
    Ok(url)
}

/// The attack of issue 22: a hostile server answers the redeem with a token far longer than
/// the Windows Credential Manager takes (2,560 bytes), so that the keyring write fails after
/// the profile was re-pointed. Such a token is refused outright, before anything is
/// written; the profile keeps its endpoint and token, and uploads still go to the studio.
#[test]
fn a_hostile_redeem_answer_is_refused_and_nothing_is_written() {
    let server = LocalServer::start();
    let keyring = KeyringSession::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    studio_profile(dirs, &keyring, &server);
    let config_path = dirs.join("config/config.toml");
    let before = std::fs::read_to_string(&config_path).expect("config");
    let hostile = hostile_redeeming(format!("rlp_{}", "a".repeat(2996)));

    let out = reelup_in(
        dirs,
        &keyring,
        &["login", "--invite", &link_to(&hostile.url, "studio")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not what a reelup-server gives out"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        before
    );
    assert_eq!(keyring.stored_token("studio"), Some(server.token.clone()));

    upload_one(dirs, &keyring, &[]).expect("the studio profile still uploads to the studio");
    assert!(!hostile.saw(&server.token), "{:?}", hostile.requests());
    assert_eq!(hostile.requests().len(), 1, "only the redeem reached it");
}

/// The other half of the attack: the keyring refuses the write (a locked collection here;
/// the unlock prompt cannot be shown). The studio's token is the headless one,
/// REELUP_TOKEN, which a locked keyring does not stop. Before the fix the profile was saved
/// first, so it was left pointing at the hostile server, and the next upload sent it the
/// studio's token. Now the token is written first: its refusal leaves the profile as it was.
#[test]
fn a_keyring_that_refuses_the_write_leaves_the_profile_where_it_was() {
    let server = LocalServer::start();
    let keyring = KeyringSession::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let out = reelup_in(
        dirs,
        &keyring,
        &[
            "profile",
            "add",
            "studio",
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let config_path = dirs.join("config/config.toml");
    let before = std::fs::read_to_string(&config_path).expect("config");
    let env = [("REELUP_TOKEN", server.token.as_str())];
    upload_one(dirs, &keyring, &env).expect("REELUP_TOKEN uploads to the studio");
    let hostile = hostile_redeeming(format!("rlp_{}", "b".repeat(64)));
    keyring.lock();

    let out = reelup_full(
        dirs,
        &keyring,
        &["login", "--invite", &link_to(&hostile.url, "studio")],
        "",
        &env,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("keyring"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        before,
        "the profile is not re-pointed when its token cannot be stored"
    );

    upload_one(dirs, &keyring, &env).expect("the profile still uploads to the studio");
    assert!(!hostile.saw(&server.token), "{:?}", hostile.requests());
}

/// A stored token is bound to the endpoint it was stored for: a profile re-pointed by any
/// means (here by editing config.toml) does not take the token along. A bare token stored
/// by an older version is bound to the profile's endpoint at its first use.
#[test]
fn a_stored_token_never_follows_its_profile_to_another_endpoint() {
    let server = LocalServer::start();
    let keyring = KeyringSession::start();
    let hostile = hostile_redeeming(format!("rlp_{}", "c".repeat(64)));
    let move_profile = |dirs: &Path| {
        let path = dirs.join("config/config.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        assert!(text.contains(&server.endpoint), "{text}");
        std::fs::write(&path, text.replace(&server.endpoint, &hostile.url)).expect("edit");
    };

    // Logged in now: the entry names the endpoint.
    let dir = tempfile::tempdir().expect("tempdir");
    studio_profile(dir.path(), &keyring, &server);
    move_profile(dir.path());
    let refused = upload_one(dir.path(), &keyring, &[]).expect_err("no token for the new host");
    assert!(!hostile.saw(&server.token), "{:?}", hostile.requests());
    assert!(
        refused.contains("reelup login --profile studio"),
        "{refused}"
    );
    let entry = keyring.stored_entry("studio").expect("entry");
    assert!(entry.contains(&server.endpoint), "bound: {entry}");

    // Stored bare by an older Reelup: bound at its first use, then it stays.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = reelup_in(
        dir.path(),
        &keyring,
        &[
            "profile",
            "add",
            "old",
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    keyring.store_entry("old", &server.token);
    upload_one(dir.path(), &keyring, &[]).expect("a bare token still uploads");
    move_profile(dir.path());
    upload_one(dir.path(), &keyring, &[]).expect_err("no token for the new host");
    assert!(!hostile.saw(&server.token), "{:?}", hostile.requests());
    let entry = keyring.stored_entry("old").expect("entry");
    assert!(
        entry.contains(&server.endpoint),
        "bound at first use: {entry}"
    );
    assert_eq!(keyring.stored_token("old"), Some(server.token.clone()));
}
