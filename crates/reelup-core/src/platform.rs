//! What differs between Linux, macOS and Windows, in one place. The rest of Reelup is the
//! same code on all three; each item here says what it does where. Prefer a portable crate
//! (sysinfo, gethostname, directories, keyring) to a `cfg` branch, so that what is built
//! and tested on Linux is the code the other platforms run.

use std::fs::Metadata;

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
