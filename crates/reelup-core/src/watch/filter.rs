//! Which paths are never reported, by name and place alone: no file is read here.
//!
//! What must stay true: junk never gets through. Partial downloads, editor backups, hidden
//! files and folders, other extensions, and the folder's own `uploaded/` (where
//! [`move_to_uploaded`](super::move_to_uploaded) puts finished files) are ignored, however
//! they arrive: found by a walk, created, or renamed in. Anyone with write access to a watched
//! folder picks these names, so `tests/props.rs` and `fuzz/fuzz_targets/watch_names.rs`
//! throw generated ones at [`is_ignored`].

use std::path::{Component, Path};

use super::UPLOADED_DIR;
use crate::is_video;

/// Names that are a file still being written by a browser, a downloader or an editor. The
/// finished file appears under its real name (a rename), which is what gets reported.
const JUNK_SUFFIXES: &[&str] = &[".part", ".crdownload", ".tmp", ".download", "~"];

/// Whether `path` (a file under the watched `folder`) is never to be reported: outside the
/// folder, hidden or inside a hidden folder, inside the folder's `uploaded/`, a file still
/// being downloaded or an editor's backup, or not one of `extensions` (lower-case, no dot;
/// empty = the default video extensions).
///
/// Path components are compared as they are, so `folder` must be spelled the way `path` is.
pub fn is_ignored(folder: &Path, path: &Path, extensions: &[String]) -> bool {
    if in_ignored_dir(folder, path) {
        return true;
    }
    let Some(name) = path.file_name() else {
        return true;
    };
    let name_lower = name.to_string_lossy().to_lowercase();
    if JUNK_SUFFIXES.iter().any(|s| name_lower.ends_with(s)) {
        return true;
    }
    if extensions.is_empty() {
        return !is_video(path);
    }
    !path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        extensions
            .iter()
            .any(|x| x.trim_start_matches('.').eq_ignore_ascii_case(e))
    })
}

/// Whether anything at `path` is out of bounds by place alone: outside `folder`, the folder
/// itself, hidden (any component starting with a dot), or under the folder's `uploaded/`.
/// Used for directories too, so a hidden or `uploaded/` subtree is never walked.
pub(super) fn in_ignored_dir(folder: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(folder) else {
        return true;
    };
    let mut components = rel.components().peekable();
    if components.peek().is_none() {
        return true;
    }
    for (i, component) in components.enumerate() {
        let Component::Normal(name) = component else {
            return true;
        };
        if name.as_encoded_bytes().starts_with(b".") {
            return true;
        }
        // Case-insensitively: on macOS and Windows `Uploaded/` is the same folder.
        if i == 0 && name.eq_ignore_ascii_case(UPLOADED_DIR) {
            return true;
        }
    }
    false
}

/// Lower-case, without the dot: the one spelling [`is_ignored`] is given, whatever the
/// user typed in `config.toml` or on the command line.
pub(super) fn normalise_extensions(extensions: &mut [String]) {
    for ext in extensions {
        *ext = ext.trim_start_matches('.').to_ascii_lowercase();
    }
}
