//! `reelup login --invite` end to end: the invite link of a real `reelup-server --local`
//! (its ready line), the real `reelup` binary, and a real Secret Service (gnome-keyring on a
//! private D-Bus) for the token.

use std::path::Path;
use std::process::{Output, Stdio};

use reelup_tests::{
    KeyringSession, LocalServer, fetch_sha256, files_containing, http, random_file, reelup_command,
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
