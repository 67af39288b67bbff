//! Following the config file while a program runs: another process may change it (the
//! CLI's `reelup profile set`, an editor, an accepted invite), and a program that kept its
//! first reading would upload with old settings, and could write that old copy back.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};

/// Keeps following until dropped.
pub struct Follower {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

/// Calls `changed` (on the watcher's thread) whenever the file at `path` may have changed:
/// written, replaced, created or removed. Events come in bursts (an editor's write then
/// rename; a save's temp file then rename), so `changed` must be cheap and idempotent, and
/// must compare what it reads with what it had. The folder is watched, not the file: a
/// save that replaces the file (as Reelup's own does) would leave a watch on the old one.
pub fn follow(path: &Path, changed: impl Fn() + Send + 'static) -> notify::Result<Follower> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    std::fs::create_dir_all(&dir).map_err(notify::Error::io)?;
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            // Events may have been lost (an overflowed queue): read the file again.
            changed();
            return;
        };
        let about_the_file = event
            .paths
            .iter()
            .any(|p: &PathBuf| p.file_name() == name.as_deref());
        let a_change = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
        );
        if about_the_file && a_change {
            changed();
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(Follower { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_replaced_or_edited_file_is_noticed_and_its_neighbours_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "a = 1\n").expect("write");
        let (tx, rx) = mpsc::channel();
        let _follower = follow(&path, move || {
            let _ = tx.send(());
        })
        .expect("follow");
        let drain = || while rx.recv_timeout(Duration::from_millis(300)).is_ok() {};

        std::fs::write(dir.path().join("other.toml"), "b = 2\n").expect("write");
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "another file in the folder is not the config"
        );
        // Replaced, as Reelup and most editors save (a temp file renamed over it).
        std::fs::write(dir.path().join("config.toml.tmp"), "a = 2\n").expect("write");
        std::fs::rename(dir.path().join("config.toml.tmp"), &path).expect("rename");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a replaced file is noticed");
        drain();
        // And edited in place, after the replacement (the watch is on the folder).
        std::fs::write(&path, "a = 3\n").expect("write");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a file written in place is noticed");
    }
}
