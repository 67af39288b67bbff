//! Profiles and tokens through the real `reelup` binary: the config file in the config dir,
//! tokens in a real Secret Service (gnome-keyring on a private D-Bus), and a local
//! reelup-server that checks them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use reelup_tests::{
    KeyringSession, LocalServer, bin, fetch_sha256, files_containing, random_file, reelup_command,
};

/// Runs `reelup` with its own config and data dirs, this keyring, and `stdin` piped in.
fn reelup_in(dirs: &Path, keyring: Option<&KeyringSession>, args: &[&str], stdin: &str) -> Output {
    let mut cmd = reelup_command(&dirs.join("config"), &dirs.join("data"));
    cmd.args(args)
        // Everything the engine logs, so the log can be searched for the token.
        .env("REELUP_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    KeyringSession::apply(keyring, &mut cmd);
    let mut child = cmd.spawn().expect("spawn reelup");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
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
fn login_stores_the_token_only_in_the_keyring_and_uploads_use_it() {
    let server = LocalServer::start();
    let keyring = KeyringSession::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let k = Some(&keyring);

    let out = reelup_in(
        dirs,
        k,
        &[
            "profile",
            "add",
            "local",
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));

    // A wrong token is refused by the endpoint and never stored.
    let out = reelup_in(dirs, k, &["login"], "not-the-token\n");
    assert!(!out.status.success());
    assert!(text(&out).contains("refused the token"), "{}", text(&out));
    assert_eq!(keyring.stored_token("local"), None);

    // The right one is checked against /whoami and lands in the Secret Service.
    let out = reelup_in(
        dirs,
        k,
        &["login", "--profile", "local"],
        &format!("{}\n", server.token),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("as dev"),
        "whoami's user is reported: {}",
        text(&out)
    );
    assert_eq!(
        keyring.stored_token("local").as_deref(),
        Some(server.token.as_str())
    );

    // An upload with no REELUP_TOKEN takes the token from the keyring.
    let (file, sha) = random_file(dirs, "clip.mp4", 3 << 20);
    let mut logs = String::new();
    let out = reelup_in(
        dirs,
        k,
        &["upload", file.to_str().expect("utf8"), "--json"],
        "",
    );
    logs.push_str(&text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json line");
    assert_eq!(fetch_sha256(line["url"].as_str().expect("url")), sha);

    let out = reelup_in(dirs, k, &["profile", "show"], "");
    logs.push_str(&text(&out));
    assert!(
        text(&out).contains("token:           in the OS keyring"),
        "{}",
        text(&out)
    );

    // The token is nowhere on disk (config, queue) and in no log line.
    let on_disk = files_containing(dirs, &server.token);
    assert!(on_disk.is_empty(), "token found in {on_disk:?}");
    assert!(!logs.contains(&server.token), "token in the logs");

    // Logout removes it from the Secret Service.
    let out = reelup_in(dirs, k, &["logout"], "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(keyring.stored_token("local"), None);
}

#[test]
fn without_a_keyring_login_names_the_fix_and_reelup_token_works() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let out = reelup_in(
        dirs,
        None,
        &["profile", "add", "nas", "--endpoint", &server.endpoint],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = reelup_in(dirs, None, &["login"], &format!("{}\n", server.token));
    assert!(!out.status.success());
    let message = text(&out);
    assert!(message.contains("no OS keyring is available"), "{message}");
    assert!(message.contains("REELUP_TOKEN"), "{message}");

    // The headless way: REELUP_TOKEN, with the profile's endpoint and its default /cdn.
    let (file, sha) = random_file(dirs, "nas clip.mkv", 1 << 20);
    let out = Command::new(bin("reelup"))
        .args(["upload", file.to_str().expect("utf8"), "--json"])
        .env_remove("REELUP_ENDPOINT")
        .env_remove("REELUP_CDN")
        .env("REELUP_CONFIG_DIR", dirs.join("config"))
        .env("REELUP_DATA_DIR", dirs.join("data"))
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("REELUP_TOKEN", &server.token)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json line");
    assert_eq!(fetch_sha256(line["url"].as_str().expect("url")), sha);
}

#[test]
fn profiles_are_listed_defaulted_removed_and_bad_input_is_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let run = |args: &[&str]| reelup_in(dirs, None, args, "");

    // Plain http is for this machine only.
    let out = run(&[
        "profile",
        "add",
        "lan",
        "--endpoint",
        "http://192.168.1.20:8765",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("use https://"), "{}", text(&out));
    // The CLI's own words for where the value came from (core names the config key).
    assert!(
        text(&out).contains("(given with --endpoint)"),
        "{}",
        text(&out)
    );

    assert!(
        run(&[
            "profile",
            "add",
            "own",
            "--endpoint",
            "https://up.example.com"
        ])
        .status
        .success()
    );
    let out = run(&[
        "profile",
        "add",
        "client",
        "--endpoint",
        "https://up.client.example",
        "--flavour",
        "companion",
        "--cdn",
        "https://d111.cloudfront.net",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // The first profile became the default.
    let out = run(&["profile", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains("* own\thttps://up.example.com\treelup-server"),
        "{listed}"
    );
    assert!(
        listed.contains("  client\thttps://up.client.example\tcompanion"),
        "{listed}"
    );

    assert!(run(&["profile", "default", "client"]).status.success());
    let out = run(&["profile", "show"]);
    assert!(
        text(&out).contains("https://d111.cloudfront.net"),
        "{}",
        text(&out)
    );
    // Adding a name twice needs --force.
    let out = run(&[
        "profile",
        "add",
        "own",
        "--endpoint",
        "https://other.example.com",
    ]);
    assert!(text(&out).contains("--force"), "{}", text(&out));

    // `profile set` changes what it is given and keeps the rest, watch folders included.
    let watched = dirs.join("Recordings");
    std::fs::create_dir_all(&watched).expect("mkdir");
    let out = run(&[
        "profile",
        "add",
        "nas",
        "--endpoint",
        "https://nas.example.com",
        "--watch",
        watched.to_str().expect("utf-8"),
        "--limit-rate",
        "5MB",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "profile",
        "set",
        "nas",
        "--endpoint",
        "https://nas2.example.com",
        "--parts-in-flight",
        "2",
        "--no-limit-rate",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&run(&["profile", "show", "nas"]).stdout).into_owned();
    assert!(shown.contains("https://nas2.example.com"), "{shown}");
    assert!(shown.contains(watched.to_str().expect("utf-8")), "{shown}");
    assert!(shown.contains("bandwidth limit: none"), "{shown}");
    let config_text = std::fs::read_to_string(dirs.join("config/config.toml")).expect("config");
    assert!(config_text.contains("parts-in-flight = 2"), "{config_text}");
    let out = run(&["profile", "set", "nope", "--cdn", "https://c.example.com"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("reelup profile add nope"),
        "{}",
        text(&out)
    );
    assert!(run(&["profile", "remove", "nas"]).status.success());

    let out = run(&["profile", "remove", "client"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["profile", "show", "client"]);
    assert!(
        text(&out).contains("the profiles are: own"),
        "{}",
        text(&out)
    );

    // A hand-edited mistake is reported with file, line and fix, and the file is kept.
    let config = dirs.join("config/config.toml");
    let mut body = std::fs::read_to_string(&config).expect("config");
    body.push_str(
        "\n[profiles.typo]\nendpoint = \"https://x.example.com\"\nparts-in-flight = 64\n",
    );
    std::fs::write(&config, &body).expect("write");
    let line = body
        .lines()
        .position(|l| l == "[profiles.typo]")
        .expect("header")
        + 1;
    let out = run(&["profile", "list"]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains(&format!("{}:{line}:", config.display())),
        "{message}"
    );
    assert!(message.contains("1 to 32"), "{message}");
    let out = run(&["profile", "add", "x", "--endpoint", "https://x.example.com"]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        body,
        "a broken file is left as it was"
    );
}
