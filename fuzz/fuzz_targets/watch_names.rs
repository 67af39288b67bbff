//! Names of files that appear in a watched folder: anyone who can write to the folder picks
//! them. Input: the path under the folder, as raw bytes (any bytes a Unix name can hold).
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use reelup_core::VIDEO_EXTENSIONS;
use reelup_core::watch::{UPLOADED_DIR, is_ignored};

const JUNK: &[&str] = &[".part", ".crdownload", ".tmp", ".download", "~"];

fuzz_target!(|data: &[u8]| {
    let folder = Path::new("/watched");
    let path = folder.join(OsStr::from_bytes(data));
    let default_ignored = is_ignored(folder, &path, &[]);
    let custom_ignored = is_ignored(folder, &path, &["MOV".into(), ".webm".into()]);
    let Ok(rel) = path.strip_prefix(folder) else {
        assert!(
            default_ignored && custom_ignored,
            "{path:?} is outside the folder"
        );
        return;
    };
    let components: Vec<Component> = rel.components().collect();
    let hidden = components.iter().any(|c| match c {
        Component::Normal(n) => n.as_bytes().starts_with(b"."),
        _ => true,
    });
    let in_uploaded = components
        .first()
        .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(UPLOADED_DIR));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let junk = JUNK.iter().any(|s| name.ends_with(s));
    if hidden || in_uploaded || junk || components.is_empty() {
        assert!(
            default_ignored && custom_ignored,
            "{path:?} must be ignored"
        );
        return;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let video = ext
        .as_deref()
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e));
    assert_eq!(default_ignored, !video, "{path:?}");
    let custom = ext.as_deref().is_some_and(|e| e == "mov" || e == "webm");
    assert_eq!(custom_ignored, !custom, "{path:?}");
});
