//! What Reelup treats as a video, the content type it declares, the fingerprint that
//! tells a file already queued from a new one, the details read from its container
//! (`details`), and where an MP4/MOV keeps its index, with the faststart layout that puts it
//! first (`faststart`).

pub mod details;
pub mod faststart;
mod fingerprint;

pub use details::{VideoDetails, details_line, details_metadata, read_details};
pub use fingerprint::{Fingerprint, NotTheQueuedFile, open_unchanged};

use std::path::{Path, PathBuf};

/// Extensions Reelup treats as video. Lower-case, without the dot.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "m4v", "mkv", "webm", "avi", "mxf"];

pub fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The Content-Type sent to the presign endpoint and stored with the object, so that the
/// CDN serves it with a type a `<video>` element can play.
pub fn content_type_for(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        // mime_guess has no entry for these, or a non-video one.
        Some("mkv") => "video/x-matroska".into(),
        Some("mxf") => "application/mxf".into(),
        Some("m4v") => "video/x-m4v".into(),
        _ => mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned(),
    }
}

/// A path the user offered that is not going up, and why, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub reason: String,
}

/// Turns what the user dropped into the videos to upload: files are taken if they are
/// videos, folders contribute the videos inside them (recursively, skipping hidden
/// entries). Everything else comes back as [`Rejected`] so the UI can say so.
///
/// Links: a path the user names itself is taken as named, link or not (the user chose that
/// file or folder). Inside a folder nothing is followed: a link to a file is not uploaded
/// and a link to a folder is not walked (so `loop -> .` ends), and each is named in
/// [`Rejected`], because a folder may hold links its owner never looked at (a shared drop
/// folder, a downloaded archive) that point at anything on this machine.
pub fn collect_videos(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Rejected>) {
    let mut videos = Vec::new();
    let mut rejected = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = videos.len();
            let rejected_before = rejected.len();
            walk_dir(path, &mut videos, &mut rejected);
            if videos.len() == before && rejected.len() == rejected_before {
                rejected.push(Rejected {
                    path: path.clone(),
                    reason: format!("the folder has no videos ({})", VIDEO_EXTENSIONS.join(", ")),
                });
            }
        } else if !path.exists() {
            rejected.push(Rejected {
                path: path.clone(),
                reason: "no such file".into(),
            });
        } else if is_video(path) {
            videos.push(path.clone());
        } else {
            rejected.push(Rejected {
                path: path.clone(),
                reason: format!(
                    "not a video; Reelup uploads {}",
                    VIDEO_EXTENSIONS.join(", ")
                ),
            });
        }
    }
    (videos, rejected)
}

/// Walks `dir` without following links: `DirEntry::file_type` is the entry's own type (a
/// link is a link), never its target's.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>, rejected: &mut Vec<Rejected>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries
        .flatten()
        .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if kind.is_symlink() {
            // Said only where it matters: a link that looks like a video or leads to a
            // folder (where videos might have been).
            if is_video(&path) || path.is_dir() {
                rejected.push(Rejected {
                    path: path.clone(),
                    reason: "a symbolic link inside the folder; links are not followed when a folder is added, so it was skipped. Add the file or folder it points to itself".into(),
                });
            }
        } else if kind.is_dir() {
            walk_dir(&path, out, rejected);
        } else if kind.is_file() && is_video(&path) {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_contribute_their_videos_and_the_rest_is_explained() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("day1/.cache")).expect("mkdir");
        for f in [
            "a.mp4",
            "day1/b.MOV",
            "day1/notes.txt",
            "day1/.cache/c.mp4",
            ".d.mp4",
        ] {
            std::fs::write(root.join(f), b"x").expect("write");
        }
        std::fs::write(root.join("doc.pdf"), b"x").expect("write");
        std::fs::create_dir(root.join("empty")).expect("mkdir");

        let (videos, rejected) = collect_videos(&[
            root.join("day1"),
            root.join("a.mp4"),
            root.join("doc.pdf"),
            root.join("empty"),
            root.join("gone.mp4"),
        ]);
        assert_eq!(videos, vec![root.join("day1/b.MOV"), root.join("a.mp4")]);
        let reasons: Vec<_> = rejected
            .iter()
            .map(|r| (r.path.clone(), r.reason.clone()))
            .collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].1.starts_with("not a video"));
        assert!(reasons[1].1.starts_with("the folder has no videos"));
        assert_eq!(reasons[2].1, "no such file");
    }

    #[cfg(unix)]
    #[test]
    fn folder_walks_follow_no_links() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().expect("tempdir");
        let secret = outside.path().join("credentials");
        std::fs::write(&secret, b"aws_secret_access_key = x").expect("write");
        std::fs::create_dir(outside.path().join("elsewhere")).expect("mkdir");
        std::fs::write(outside.path().join("elsewhere/far.mp4"), b"x").expect("write");

        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("drop");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("real.mp4"), b"x").expect("write");
        symlink(&secret, root.join("clip.mp4")).expect("symlink");
        symlink(outside.path().join("elsewhere"), root.join("more")).expect("symlink");
        // A loop: followed, this walk would never end (or end only at ELOOP/path limits).
        symlink(".", root.join("loop")).expect("symlink");

        let (videos, rejected) = collect_videos(std::slice::from_ref(&root));
        assert_eq!(videos, vec![root.join("real.mp4")]);
        let mut skipped: Vec<_> = rejected.iter().map(|r| r.path.clone()).collect();
        skipped.sort();
        assert_eq!(
            skipped,
            vec![root.join("clip.mp4"), root.join("loop"), root.join("more")]
        );
        assert!(
            rejected.iter().all(|r| r.reason.contains("symbolic link")),
            "{rejected:?}"
        );

        // A link named by the user is taken as named: the user chose it.
        let named = dir.path().join("named.mp4");
        symlink(root.join("real.mp4"), &named).expect("symlink");
        let (videos, rejected) = collect_videos(std::slice::from_ref(&named));
        assert_eq!(videos, vec![named]);
        assert!(rejected.is_empty());
    }

    #[test]
    fn recognises_videos_case_insensitively() {
        assert!(is_video(Path::new("/a/clip.MP4")));
        assert!(is_video(Path::new("b.mkv")));
        assert!(!is_video(Path::new("notes.txt")));
        assert!(!is_video(Path::new("noext")));
    }

    #[test]
    fn content_types_are_playable() {
        assert_eq!(content_type_for(Path::new("a.mp4")), "video/mp4");
        assert_eq!(content_type_for(Path::new("a.mov")), "video/quicktime");
        assert_eq!(content_type_for(Path::new("a.webm")), "video/webm");
        assert_eq!(content_type_for(Path::new("a.mkv")), "video/x-matroska");
        assert_eq!(
            content_type_for(Path::new("a.bin")),
            "application/octet-stream"
        );
    }
}
