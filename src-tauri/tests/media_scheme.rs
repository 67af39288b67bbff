//! The `reelup-media:` scheme as the app answers it (`media_scheme::serve` on the app's own
//! queue): a queued clip swapped for a link to a private video, or its folder swapped for a
//! link to another folder, serves not one byte of the other file, and says why.

#![cfg(unix)]

use std::path::Path;
use std::sync::Arc;

use reelup_app::Shell;
use reelup_app::media_scheme::serve;
use tauri::http::{Request, Response, StatusCode, header};

mod support;
use support::MemoryKeyring;

/// The app's shell with a profile and its own queue under `dir` (never started: nothing
/// is uploaded; the scheme serves queued items whatever their state).
fn shell(dir: &Path) -> Shell {
    let config = dir.join("config/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &config,
        "[profiles.local]\nendpoint = \"http://127.0.0.1:9\"\n",
    )
    .expect("config");
    Shell::open_at(
        Arc::new(MemoryKeyring::default()),
        &config,
        Some(dir.join("data/queue.sqlite3")),
    )
}

/// Queues `video` as a drop does; its id.
fn queue(shell: &Shell, video: &Path) -> i64 {
    let added =
        serde_json::to_value(shell.add(vec![video.to_owned()]).expect("added")).expect("json");
    added["added"][0]["id"].as_i64().expect("queued")
}

/// What the webview's ranged fetch asks for: the file from its start.
fn fetch(shell: &Shell, id: i64) -> Response<Vec<u8>> {
    let request = Request::builder()
        .uri(format!("reelup-media://localhost/{id}"))
        .header(header::ORIGIN, "tauri://localhost")
        .header(header::RANGE, "bytes=0-")
        .body(Vec::new())
        .expect("request");
    serve(shell, &request)
}

/// Bytes no clip has: found anywhere in an answer, they came from the private video.
const PRIVATE_MARK: &[u8] = b"PRIVATE-VIDEO-BYTES";

fn video_bytes(mark: &[u8]) -> Vec<u8> {
    mark.iter().copied().cycle().take(300_000).collect()
}

fn assert_refused(response: &Response<Vec<u8>>, why: &str) {
    let body = response.body();
    assert!(
        !body.windows(PRIVATE_MARK.len()).any(|w| w == PRIVATE_MARK),
        "{why}: the private video was served"
    );
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "{why}: {}",
        String::from_utf8_lossy(body)
    );
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("since it was queued") && text.contains("no poster is drawn from it"),
        "{why}: the answer says why: {text}"
    );
}

#[test]
fn a_clip_swapped_for_a_link_to_a_private_video_serves_none_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shell = shell(dir.path());
    let private = dir.path().join("private/secret take.mp4");
    std::fs::create_dir_all(private.parent().expect("dir")).expect("mkdir");
    std::fs::write(&private, video_bytes(PRIVATE_MARK)).expect("private");
    let drop = dir.path().join("drop");
    std::fs::create_dir(&drop).expect("mkdir");
    let clip = drop.join("clip.mp4");
    let clip_bytes = video_bytes(b"clip ");
    std::fs::write(&clip, &clip_bytes).expect("clip");
    let id = queue(&shell, &clip);

    let served = fetch(&shell, id);
    assert_eq!(served.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(served.body(), &clip_bytes, "the clip itself is served");

    std::fs::remove_file(&clip).expect("rm");
    std::os::unix::fs::symlink(&private, &clip).expect("symlink");
    assert_refused(&fetch(&shell, id), "the clip swapped for a link");
    let item = shell.uploads.queue().expect("queue").get(id).expect("item");
    assert!(
        item.no_poster
            .as_deref()
            .is_some_and(|why| why.starts_with("the file is a symbolic link now")),
        "the item says why it has no poster: {:?}",
        item.no_poster
    );

    // The clip's folder swapped for a link to a folder whose clip.mp4 is the private
    // video: the folder is followed (a path's folders may be links on any machine), and
    // the file found there is not the one queued.
    let second = drop.join("second.mp4");
    std::fs::write(&second, &clip_bytes).expect("second");
    let second_id = queue(&shell, &second);
    std::fs::rename(&drop, dir.path().join("drop.old")).expect("mv");
    std::fs::copy(&private, dir.path().join("private/second.mp4")).expect("cp");
    std::os::unix::fs::symlink(dir.path().join("private"), &drop).expect("symlink");
    assert_refused(&fetch(&shell, second_id), "the folder swapped for a link");
    let item = shell
        .uploads
        .queue()
        .expect("queue")
        .get(second_id)
        .expect("item");
    assert!(
        item.no_poster
            .as_deref()
            .is_some_and(|why| why.contains("since it was queued")),
        "the item says why it has no poster: {:?}",
        item.no_poster
    );
}
