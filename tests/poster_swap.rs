//! A poster is drawn only from the file that was queued. After `reelup upload` has sent a
//! clip, the clip is swapped for a symbolic link to a private video elsewhere on the
//! machine; no frame of the private video may be published as the clip's poster. Real
//! processes: the local stack (its store behind the fault proxy), `reelup`, real ffmpeg.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reelup_server::LocalOptions;
use reelup_testkit::{Fault, FaultKind, Match};
use reelup_tests::{reelup_command, sha256_hex, stack_behind_proxy};
use reqwest::Method;

/// Two seconds of one colour, H.264 in MP4, so a poster tells which video it came from.
fn colour_video(dir: &Path, name: &str, colour: &str) -> PathBuf {
    let path = dir.join(name);
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=c={colour}:size=320x240:rate=25:duration=2"))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-y"])
        .arg(&path)
        .output()
        .expect("ffmpeg (apt install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// The average colour of an image, as (red, green, blue).
fn average_rgb(jpeg: &[u8]) -> (u8, u8, u8) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("poster.jpg");
    std::fs::write(&file, jpeg).expect("write");
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args([
            "-vf",
            "scale=1:1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert_eq!(
        out.stdout.len(),
        3,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.stdout[0], out.stdout[1], out.stdout[2])
}

/// Replaces `clip` by a symbolic link to `private`, as someone with write access to the
/// clip's folder (a shared drop folder) could.
fn swap_for_link(clip: &Path, private: &Path) {
    std::fs::remove_file(clip).expect("remove the clip");
    std::os::unix::fs::symlink(private, clip).expect("symlink");
}

struct Run {
    stdout: String,
    stderr: String,
    line: serde_json::Value,
}

/// Asserts what every swap must end with: the clip itself went up, as it was, and no
/// poster of the private video was published. Returns the poster's bytes, if one was made.
async fn check_upload(run: &Run, clip_sha: &str) -> Option<Vec<u8>> {
    let url = run.line["url"].as_str().expect("the clip's URL");
    let body = reqwest::get(url)
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(sha256_hex(&body), clip_sha, "the clip went up as queued");
    let poster = run.line["poster"].as_str()?;
    let jpeg = reqwest::get(poster)
        .await
        .expect("GET poster")
        .bytes()
        .await
        .expect("poster")
        .to_vec();
    let (r, g, b) = average_rgb(&jpeg);
    assert!(
        b > 150 && r < 80,
        "the poster is not a frame of the blue clip (average {r},{g},{b}): a frame of the private red video was published"
    );
    Some(jpeg)
}

/// The swap lands after the clip was uploaded and before its poster is made: the store's
/// answer to the upload is held by the proxy (the object is stored; `reelup` does not know
/// yet), the clip is swapped, then the answer goes on. No timing: the window is held open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_swapped_for_a_link_after_its_upload_gets_no_poster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let private = colour_video(elsewhere.path(), "private.mp4", "red");
    let clips = dir.path().join("drop");
    std::fs::create_dir(&clips).expect("mkdir");
    let clip = colour_video(&clips, "clip.mp4", "blue");
    let clip_sha = sha256_hex(&std::fs::read(&clip).expect("read"));
    // The clip's upload is a single POST (far below the multipart threshold); the poster
    // would be a second.
    proxy.inject(Fault::once(
        Match::Method(Method::POST),
        FaultKind::HoldAnswer,
    ));

    let data = dir.path().join("data");
    let mut cmd = reelup_command(&data.join("config"), &data);
    // As it is: the clip's bytes are compared with the object's.
    cmd.args([
        "upload",
        clip.to_str().expect("utf8"),
        "--json",
        "--faststart=off",
    ])
    .env("REELUP_TOKEN", stack.token.expose())
    .env("REELUP_ENDPOINT", &stack.endpoint)
    .env("REELUP_CDN", &stack.cdn)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn reelup");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output());

    tokio::time::timeout(Duration::from_secs(120), proxy.held())
        .await
        .expect("the clip's upload reached the store");
    swap_for_link(&clip, &private);
    proxy.release_one();

    let out = output.await.expect("join").expect("reelup");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let run = Run {
        line: serde_json::from_str(stdout.trim()).expect("one JSON line"),
        stdout,
        stderr,
    };
    assert_eq!(
        run.line["file"],
        clip.to_str().expect("utf8"),
        "{}",
        run.stdout
    );
    let poster = check_upload(&run, &clip_sha).await;
    assert!(poster.is_none(), "a poster was made: {}", run.line);
    assert!(
        run.stderr.contains(&format!(
            "{}: no poster: the file is a symbolic link now (or was replaced by one since it was queued)",
            clip.display()
        )),
        "the reason is said: {}",
        run.stderr
    );
    // The item keeps the reason: in the run's line, and in `reelup queue` later.
    assert!(
        run.line["noPoster"]
            .as_str()
            .is_some_and(|why| why.starts_with("the file is a symbolic link now")),
        "the item says why it has no poster: {}",
        run.line
    );
    let listed = reelup_command(&data.join("config"), &data)
        .arg("queue")
        .output()
        .expect("reelup queue");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("\tno poster: the file is a symbolic link now"),
        "`reelup queue` says why: {listed}"
    );
    let posts = proxy
        .requests()
        .iter()
        .filter(|s| s.method == Method::POST)
        .count();
    assert_eq!(posts, 1, "only the clip was sent to the store");
}

/// The swap lands after the clip was checked, while ffmpeg starts: `ffmpeg` on PATH is a
/// wrapper that swaps the clip for a link to the private video, then runs the real ffmpeg
/// with the arguments it was given. ffmpeg must still read the clip it was handed, never
/// what the name leads to by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_swapped_while_ffmpeg_starts_still_gives_its_own_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stack, _proxy) = stack_behind_proxy(LocalOptions::new(dir.path().join("server"))).await;
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let private = colour_video(elsewhere.path(), "private.mp4", "red");
    let clip = colour_video(dir.path(), "clip.mp4", "blue");
    let clip_sha = sha256_hex(&std::fs::read(&clip).expect("read"));

    let real_ffmpeg = std::process::Command::new("sh")
        .args(["-c", "command -v ffmpeg"])
        .output()
        .expect("sh");
    let real_ffmpeg = String::from_utf8(real_ffmpeg.stdout).expect("utf8");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let wrapper = bin.join("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ ! -L '{clip}' ]; then rm '{clip}' && ln -s '{private}' '{clip}' || exit 99; fi\nexec '{real}' \"$@\"\n",
            clip = clip.display(),
            private = private.display(),
            real = real_ffmpeg.trim(),
        ),
    )
    .expect("write");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");

    let data = dir.path().join("data");
    let mut cmd = reelup_command(&data.join("config"), &data);
    // As it is: the clip's bytes are compared with the object's.
    cmd.args([
        "upload",
        clip.to_str().expect("utf8"),
        "--json",
        "--faststart=off",
    ])
    .env("REELUP_TOKEN", stack.token.expose())
    .env("REELUP_ENDPOINT", &stack.endpoint)
    .env("REELUP_CDN", &stack.cdn)
    // The wrapper first; the rest of PATH for what it runs (rm, ln).
    .env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").expect("PATH")),
    );
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("reelup");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}\n{stdout}");
    assert!(
        std::fs::symlink_metadata(&clip)
            .expect("clip")
            .file_type()
            .is_symlink(),
        "the wrapper ran and swapped the clip: {stderr}"
    );
    let run = Run {
        line: serde_json::from_str(stdout.trim()).expect("one JSON line"),
        stdout,
        stderr,
    };
    let poster = check_upload(&run, &clip_sha).await;
    assert!(
        poster.is_some(),
        "the clip checked before the swap gets its poster: {}\n{}",
        run.stdout,
        run.stderr
    );
}
