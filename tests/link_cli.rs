//! `reelup link` end to end: the real `reelup-server --local` (which signs with its own key
//! and whose CDN route checks CloudFront-style signatures) and the real `reelup` binary.
//! An upload's queue ID or key gets a signed link that streams the same bytes; a custom
//! policy's address range is enforced; a Companion profile cannot sign.

use std::path::Path;
use std::process::{Output, Stdio};

use reelup_tests::{KeyringSession, LocalServer, fetch_sha256, http, random_file, reelup_command};

fn reelup(dirs: &Path, token: &str, args: &[&str]) -> Output {
    let mut cmd = reelup_command(&dirs.join("config"), &dirs.join("data"));
    cmd.args(args)
        .env("REELUP_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // No Secret Service: the token comes from REELUP_TOKEN.
    KeyringSession::apply(None, &mut cmd);
    cmd.output().expect("run reelup")
}

fn ok(out: &Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn reelup_link_signs_links_that_stream_and_refuses_what_it_cannot() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let (clip, sha) = random_file(dirs, "clip.mp4", 200 * 1024);
    let t = server.token.as_str();
    ok(&reelup(
        dirs,
        t,
        &[
            "profile",
            "add",
            "local",
            "--endpoint",
            &server.endpoint,
            "--default",
        ],
    ));
    ok(&reelup(dirs, t, &["upload", clip.to_str().expect("utf-8")]));
    let (queue, _) = ok(&reelup(dirs, t, &["queue", "--json"]));
    let item: serde_json::Value =
        serde_json::from_str(queue.lines().next().expect("one item")).expect("json");
    let id = item["id"].as_i64().expect("id").to_string();
    let key = item["key"].as_str().expect("key").to_owned();

    // By queue ID: the URL alone on stdout, its expiry on stderr.
    let (stdout, stderr) = ok(&reelup(dirs, t, &["link", &id, "--expires", "2h"]));
    let url = stdout.trim();
    assert!(
        url.starts_with(&format!("{}/{key}?Expires=", server.cdn)),
        "{url}"
    );
    assert!(
        url.contains("&Signature=") && url.contains("&Key-Pair-Id="),
        "{url}"
    );
    assert!(
        stderr.contains("expires ") && stderr.contains("(in 2 hours)"),
        "{stderr}"
    );
    assert_eq!(fetch_sha256(url), sha);
    // An edited link is refused by the CDN route.
    let edited = url.replace("Expires=", "Expires=9");
    assert_eq!(http().get(&edited).send().expect("GET").status(), 403);

    // By key, custom policy with an address range: this machine is inside 127.0.0.0/8.
    let (stdout, _) = ok(&reelup(
        dirs,
        t,
        &["link", &key, "--ip", "127.0.0.0/8", "--json"],
    ));
    let link: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    let custom = link["url"].as_str().expect("url");
    assert!(custom.contains("?Policy="), "{custom}");
    assert!(link["expiresAt"].as_u64().is_some(), "{link}");
    assert_eq!(fetch_sha256(custom), sha);
    let (stdout, _) = ok(&reelup(dirs, t, &["link", &key, "--ip", "203.0.113.0/24"]));
    let far = http().get(stdout.trim()).send().expect("GET");
    assert_eq!(far.status(), 403);
    assert!(far.text().expect("text").contains("network address"));

    // What cannot be signed: a lifetime out of bounds, a key that holds nothing, another
    // prefix's key, a canned policy with an address range.
    let out = reelup(dirs, t, &["link", &id, "--expires", "5s"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("60s to 366d"));
    for (what, says) in [
        ("dev/00000000-0000-4000-8000-000000000000.mp4", "no object"),
        (
            "bob/00000000-0000-4000-8000-000000000000.mp4",
            "not one of yours",
        ),
    ] {
        let out = reelup(dirs, t, &["link", what]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{what}: {stderr}"
        );
    }
    let out = reelup(
        dirs,
        t,
        &["link", &id, "--policy", "canned", "--ip", "10.0.0.0/8"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ip needs a custom policy"));

    // A Companion profile: a clear code, and nothing is asked of the endpoint.
    ok(&reelup(
        dirs,
        t,
        &[
            "profile",
            "set",
            "local",
            "--flavour",
            "companion",
            "--cdn",
            &server.cdn,
        ],
    ));
    let out = reelup(dirs, t, &["link", &id, "--json"]);
    assert!(!out.status.success());
    let answer: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    assert_eq!(answer["error"], "links_unavailable", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .expect("message")
            .contains("cannot sign links")
    );
}

/// A profile that asks for signed links gets one from `reelup upload` itself (text and
/// `--json`, with when it expires), and it streams the uploaded bytes; the queue keeps the
/// plain link, which `reelup link` signs again later.
#[test]
fn upload_prints_a_signed_link_when_the_profile_asks_for_one() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = dir.path();
    let (clip, sha) = random_file(dirs, "clip.mp4", 200 * 1024);
    let t = server.token.as_str();
    ok(&reelup(
        dirs,
        t,
        &[
            "profile",
            "add",
            "local",
            "--endpoint",
            &server.endpoint,
            "--default",
        ],
    ));
    ok(&reelup(
        dirs,
        t,
        &["profile", "set", "local", "--link-lifetime", "2h"],
    ));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (stdout, _) = ok(&reelup(
        dirs,
        t,
        &["upload", "--json", clip.to_str().expect("utf-8")],
    ));
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    let url = out["url"].as_str().expect("url");
    assert!(
        url.contains("?Expires=") && url.contains("&Signature=") && url.contains("&Key-Pair-Id="),
        "{url}"
    );
    let expires = out["expiresAt"].as_u64().expect("expiresAt");
    assert!(
        (before + 7200..=before + 7200 + 120).contains(&expires),
        "{expires}"
    );
    assert_eq!(fetch_sha256(url), sha);
    // The queue keeps the plain link (a signed one would expire in the history).
    let (queue, _) = ok(&reelup(dirs, t, &["queue", "--json"]));
    let item: serde_json::Value =
        serde_json::from_str(queue.lines().next().expect("one item")).expect("json");
    assert!(
        !item["url"].as_str().expect("url").contains("Signature="),
        "{item}"
    );

    // A profile without it prints the plain link.
    ok(&reelup(
        dirs,
        t,
        &["profile", "set", "local", "--no-link-lifetime"],
    ));
    let (clip2, _) = random_file(dirs, "clip2.mp4", 100 * 1024);
    let (stdout, _) = ok(&reelup(
        dirs,
        t,
        &["upload", "--json", clip2.to_str().expect("utf-8")],
    ));
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert!(out["expiresAt"].is_null(), "{out}");
    assert!(
        !out["url"].as_str().expect("url").contains("Signature="),
        "{out}"
    );
}
