//! After-upload moves: a finished file goes into its watched folder's `uploaded/`.
//!
//! What must stay true: a move never overwrites (a taken name gets a number), never leaves
//! two copies, keeps the file's bytes and mtime, and never goes through a link (a linked
//! `uploaded/` would carry the file wherever the link points). The watcher never reports
//! anything under `uploaded/`, so a moved file cannot be queued again.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::UPLOADED_DIR;
use super::roots::first_link;

/// How many numbered names ("clip (2).mp4", …) are tried before giving up.
const MAX_NUMBERED: u32 = 10_000;

/// Moves `file` (under the watched `folder`) into `<folder>/uploaded/`, at the same path
/// relative to the folder, and returns where it went. Never overwrites: if the name is taken
/// the file becomes "name (2).ext", "name (3).ext", and so on. Creates folders as needed.
///
/// The file keeps its bytes and mtime. The watcher never reports anything under `uploaded/`,
/// so this cannot queue the file again.
pub fn move_to_uploaded(folder: &Path, file: &Path) -> io::Result<PathBuf> {
    let (dest_dir, name) = destination(folder, file)?;
    fs::create_dir_all(&dest_dir)?;
    for n in 1..=MAX_NUMBERED {
        let dest = dest_dir.join(numbered(Path::new(name), n));
        match move_no_clobber(file, &dest) {
            Ok(()) => return Ok(dest),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} has {MAX_NUMBERED} files named like {}; clear some out",
            dest_dir.display(),
            name.to_string_lossy()
        ),
    ))
}

/// The folder under `uploaded/` that `file` goes into, and its name; an error for a file
/// that is not in the folder, is already in `uploaded/`, or would go through a link.
fn destination<'a>(folder: &Path, file: &'a Path) -> io::Result<(PathBuf, &'a OsStr)> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let rel = file.strip_prefix(folder).map_err(|_| {
        invalid(format!(
            "{} is not inside the watch folder {}",
            file.display(),
            folder.display()
        ))
    })?;
    if rel
        .components()
        .next()
        .is_some_and(|c| c.as_os_str().eq_ignore_ascii_case(UPLOADED_DIR))
    {
        return Err(invalid(format!(
            "{} is already in {UPLOADED_DIR}/",
            file.display()
        )));
    }
    let Some(name) = rel.file_name() else {
        return Err(invalid(format!(
            "{} is the watch folder itself, not a file in it",
            file.display()
        )));
    };
    let dest_dir = match rel.parent() {
        Some(parent) => folder.join(UPLOADED_DIR).join(parent),
        None => folder.join(UPLOADED_DIR),
    };
    // A linked `uploaded/` (or a linked folder inside it) would carry the file wherever the
    // link points: somebody else's folder, a synced share. Only real folders are used.
    if let Some(link) = first_link(folder, &dest_dir) {
        return Err(invalid(format!(
            "{} is a symbolic link; Reelup moves uploaded files only into real folders, so {} stays where it is. Replace the link with a folder",
            link.display(),
            file.display()
        )));
    }
    Ok((dest_dir, name))
}

/// `name` for n = 1, else "stem (n).ext".
fn numbered(name: &Path, n: u32) -> OsString {
    if n == 1 {
        return name.as_os_str().to_owned();
    }
    let mut out = name.file_stem().unwrap_or_default().to_owned();
    out.push(format!(" ({n})"));
    if let Some(ext) = name.extension() {
        out.push(".");
        out.push(ext);
    }
    out
}

/// Moves `from` to `to` unless `to` exists. A hard link fails atomically when `to` exists, so
/// where links work nothing is ever overwritten; on file systems without them (FAT, exFAT,
/// some shares) it checks first and renames, which a racing writer could in theory beat.
fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from).inspect_err(|_| {
            // Leave one copy, where it was, rather than two.
            let _ = fs::remove_file(to);
        }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered(Path::new("clip.mp4"), 1), "clip.mp4");
        assert_eq!(numbered(Path::new("clip.mp4"), 2), "clip (2).mp4");
        assert_eq!(numbered(Path::new("clip"), 3), "clip (3)");
        assert_eq!(numbered(Path::new("a.b.mov"), 2), "a.b (2).mov");
    }
}
