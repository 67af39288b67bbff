//! `scripts/package_config.py` checks REELUP_UPDATE_FEED before it is compiled into the app.
//! The app reads that URL with the `url` crate (Tauri's updater); the script, with Python's
//! urllib. Where the two disagree, a feed the script allowed as loopback http could be
//! another host to the app: `http://evil\@localhost/` is `localhost` to urllib and `evil`
//! to WHATWG. The script is run here as `./dev package` runs it.

use std::process::Command;

fn root() -> std::path::PathBuf {
    reelup_tests::manifest_dir()
        .parent()
        .expect("repo root")
        .to_owned()
}

/// `package_config.py CLI` with REELUP_UPDATE_FEED=`feed`: Ok(the overlay's feed list), or
/// Err(what it said).
fn overlay_with_feed(feed: &str) -> Result<serde_json::Value, String> {
    let cli = std::env::current_exe().expect("a file to pass as the CLI");
    let out = Command::new("python3")
        .arg(root().join("scripts/package_config.py"))
        .arg(cli)
        .env("REELUP_UPDATE_FEED", feed)
        .env("REELUP_UPDATE_PUBKEY", "test-public-key")
        .output()
        .expect("python3 must be installed");
    if out.status.success() {
        let overlay: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        Ok(overlay["plugins"]["updater"]["endpoints"].clone())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn feeds_the_app_would_read_differently_are_refused_with_the_reason() {
    for (feed, says) in [
        // Loopback to urllib, host `evil` to the app: plain http to a remote host.
        ("http://evil\\@localhost/latest.json", "backslash"),
        ("https://updates.example.com\\@evil.example/", "backslash"),
        // User info hides the host from whoever reads the setting.
        ("https://a@b/", "user name or password"),
        (
            "https://updates.example.com@evil.example/latest.json",
            "user name or password",
        ),
        (
            "http://user:pw@127.0.0.1:9/latest.json",
            "user name or password",
        ),
        // Escapes and spaces are read differently too (WHATWG drops tabs and newlines).
        ("http://evil%40localhost/", "plain host"),
        ("http://local\thost/", "spaces, control"),
        ("https://bücher.example/", "non-ASCII"),
        ("http://updates.example.com/", "must be https"),
        ("ftp://updates.example.com/", "must start with https://"),
    ] {
        let said = overlay_with_feed(feed).expect_err(feed);
        assert!(
            said.contains("REELUP_UPDATE_FEED") && said.contains(says),
            "{feed}: {said}"
        );
    }
}

#[test]
fn feeds_it_takes_mean_the_same_host_to_the_app() {
    for feed in [
        "https://updates.example.com/latest.json",
        "https://xn--bcher-kva.example:8443/reelup/latest.json?channel=stable",
        "http://127.0.0.1:8123/latest.json",
        "http://localhost:8123/latest.json",
        "http://[::1]:8123/latest.json",
    ] {
        let endpoints = overlay_with_feed(feed).expect(feed);
        assert_eq!(endpoints, serde_json::json!([feed]));
        // What the app's parser makes of it: plain http only where it is loopback to both.
        let url = reqwest::Url::parse(feed).expect(feed);
        assert!(
            url.scheme() == "https" || reelup_core::config::is_loopback(&url),
            "{feed}"
        );
        assert!(url.username().is_empty() && url.password().is_none());
    }
}
