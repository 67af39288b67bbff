//! What differs between Linux, macOS and Windows, in one place. The rest of Reelup is the
//! same code on all three; each item here says what it does where. Prefer a portable crate
//! (sysinfo, gethostname, directories, keyring) to a `cfg` branch, so that what is built
//! and tested on Linux is the code the other platforms run.

use std::fs::{File, Metadata};
use std::path::Path;

/// Whether a process of this machine with this id still runs (a lease's owner). Through
/// sysinfo: /proc on Linux, libproc on macOS, the process list on Windows. Where the
/// process list cannot be read at all, the owner counts as running: its lease then runs
/// out instead, which is slower but never takes work from a live process.
pub fn process_is_running(pid: u32) -> bool {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    let pid = Pid::from_u32(pid);
    let Ok(mut system) = System::new() else {
        return true;
    };
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing(),
    );
    system.process(pid).is_some()
}

/// This machine's name, for lease owners (`<host>:<pid>`): leases of another machine that
/// shares the queue folder are never judged by a local process id.
pub fn host_name() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Which directory a watch root is: a different one after it was deleted and made again,
/// or when a drive was mounted on it or taken away. (device, inode) on Unix; on Windows
/// std has no stable file id, so a root's identity is not tracked there (a remade folder is
/// found by the periodic rescan instead).
pub type DirIdentity = Option<(u64, u64)>;

#[cfg(unix)]
pub fn dir_identity(md: &Metadata) -> DirIdentity {
    use std::os::unix::fs::MetadataExt;
    Some((md.dev(), md.ino()))
}

#[cfg(not(unix))]
pub fn dir_identity(_md: &Metadata) -> DirIdentity {
    None
}

/// What to do when the OS refuses to watch more folders.
pub fn watch_backend_hint() -> &'static str {
    if cfg!(target_os = "linux") {
        "this is usually the limit on inotify instances: raise it (sysctl -w fs.inotify.max_user_instances=512) or quit other programs that watch files"
    } else if cfg!(target_os = "macos") {
        "check that FSEvents works for this folder (a network share may not report changes), then start again"
    } else {
        "check that the folder is on a local drive (ReadDirectoryChangesW does not watch every network share), then start again"
    }
}

/// Whether tray icons are drawn by the OS from their shape alone: macOS menu-bar icons are
/// template images (black and alpha, recoloured for light and dark menu bars). Linux and
/// Windows show the icon's own colours; Windows takes the same PNG frames (Tauri makes
/// the 16/32 px icon from them).
pub const TRAY_ICON_IS_TEMPLATE: bool = cfg!(target_os = "macos");

/// Opens `path` for reading without following a link at its last component: the file
/// that is there, or an error, never the file a link points to. What each platform does:
///
/// - Unix (Linux, macOS): `O_NOFOLLOW`, so a link fails to open (`ELOOP`, which
///   [`is_link_refusal`] recognises); `O_NONBLOCK` too, so a FIFO put in the file's place
///   cannot hold the open for ever (it has no effect on reading a regular file).
/// - Windows: `FILE_FLAG_OPEN_REPARSE_POINT`, so a symbolic link or junction is opened
///   itself, and refused here ([`is_link_refusal`] recognises that too). With `pin_name`,
///   the file is opened sharing only reading, so while the handle is open it can be
///   neither written, renamed nor deleted, and its name keeps naming it (for a program
///   that can be given only the name). Other reparse points (OneDrive's cloud
///   placeholders) are not links and are read through the handle; untested here.
///
/// `pin_name` does nothing on Unix, where a child can be handed the open file itself
/// ([`own_stdin_path`]); elsewhere it would stop the file being moved (into `uploaded/`)
/// while it is open, so it is only for a short-lived reader that needs the name.
///
/// Directories on the way are followed on every platform (a home folder or `/tmp` is a link
/// on some machines: macOS's `/var`); callers that must know they have the file they
/// expected check what they read, as [`crate::media::open_unchanged`] does.
pub fn open_no_follow(path: &Path, pin_name: bool) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = pin_name;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        options.open(path)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        /// winbase.h: open the reparse point itself, not what it points to.
        const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        /// winnt.h: others may read the file while it is open, but not write, rename or
        /// delete it, so the name keeps naming this file until the handle is closed.
        const FILE_SHARE_READ: u32 = 0x0000_0001;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        if pin_name {
            options.share_mode(FILE_SHARE_READ);
        }
        let file = options.open(path)?;
        if file.metadata()?.file_type().is_symlink() {
            return Err(std::io::Error::other(LinkRefused));
        }
        Ok(file)
    }
}

/// What [`open_no_follow`] answers for a link on Windows (Unix has `ELOOP`).
#[cfg(windows)]
#[derive(Debug)]
struct LinkRefused;

#[cfg(windows)]
impl std::fmt::Display for LinkRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("is a symbolic link or junction, which is not followed")
    }
}

#[cfg(windows)]
impl std::error::Error for LinkRefused {}

/// Whether an error of [`open_no_follow`] means the path is a link.
pub fn is_link_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(windows)]
    {
        e.get_ref().is_some_and(|inner| inner.is::<LinkRefused>())
    }
}

/// A name under which a child process opens the file it was given as its standard input
/// as a new, seekable open of that same file (ffmpeg's `file:` protocol must seek in an
/// MP4 whose index is at the end): `/proc/self/fd/0` on Linux (a fresh open of the inode,
/// with its own position, even after the name it was opened by points elsewhere),
/// `/dev/fd/0` on macOS and the other Unixes (the same open file, position shared: it is
/// rewound before each child). Windows has no such name: None.
pub fn own_stdin_path() -> Option<&'static str> {
    if cfg!(target_os = "linux") {
        Some("/proc/self/fd/0")
    } else if cfg!(unix) {
        Some("/dev/fd/0")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_finished_child_does_not() {
        assert!(process_is_running(std::process::id()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(
            !process_is_running(pid),
            "a reaped child still counts as running"
        );
    }

    #[test]
    fn the_host_has_a_name() {
        let name = host_name();
        assert!(!name.is_empty() && !name.contains('\n'));
    }

    #[test]
    fn a_remade_directory_is_another_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let first = dir_identity(&std::fs::metadata(&root).unwrap());
        // Moved away (an unmounted drive, a folder renamed) and made again: the old one
        // still exists, so its inode cannot be handed straight back.
        std::fs::rename(&root, dir.path().join("old")).unwrap();
        std::fs::create_dir(&root).unwrap();
        let second = dir_identity(&std::fs::metadata(&root).unwrap());
        if cfg!(unix) {
            assert!(first.is_some());
            assert_ne!(first, second);
        } else {
            assert_eq!(first, None);
        }
    }
}
