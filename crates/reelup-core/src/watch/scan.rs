//! What the watcher reads from disk, always on a blocking thread: walks that find files
//! (at start, after a rewatch, when a folder moves in) and looks at unsettled ones.
//!
//! What must stay true: nothing is followed. A linked directory is not walked (no loops,
//! nothing outside the folder), and a link to a file becomes a candidate only to be refused
//! by its look. Hidden folders and `uploaded/` are never walked into.

use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use super::filter::{in_ignored_dir, is_ignored};
use super::roots::{first_link, refusal};
use super::settle::{Look, Observation, Stamp};

/// One walk: `start` is a file or a directory under `root`.
pub(super) struct ScanJob {
    pub(super) folder: usize,
    pub(super) root: PathBuf,
    pub(super) recursive: bool,
    pub(super) extensions: Vec<String>,
    pub(super) start: PathBuf,
}

/// A file a walk found: its folder, its path and its stamp then.
pub(super) type Found = (usize, PathBuf, Stamp);

impl ScanJob {
    /// The root itself is walked whatever it is (a link included): the user chose it.
    pub(super) fn run(&self, found: &mut Vec<Found>) {
        let md = if self.start == self.root {
            fs::metadata(&self.start)
        } else {
            fs::symlink_metadata(&self.start)
        };
        let Ok(md) = md else {
            return;
        };
        if md.is_file() || md.file_type().is_symlink() {
            self.consider(&self.start, &md, found);
            return;
        }
        if !md.is_dir() || (self.start != self.root && !self.recursive) {
            return;
        }
        let mut dirs = vec![self.start.clone()];
        while let Some(dir) = dirs.pop() {
            self.list(&dir, &mut dirs, found);
        }
    }

    /// Takes in one directory's entries: subfolders to walk, files to consider.
    fn list(&self, dir: &Path, dirs: &mut Vec<PathBuf>, found: &mut Vec<Found>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if self.recursive && !in_ignored_dir(&self.root, &path) {
                    dirs.push(path);
                }
            } else if !is_ignored(&self.root, &path, &self.extensions)
                && let Ok(md) = fs::symlink_metadata(&path)
            {
                self.consider(&path, &md, found);
            }
        }
    }

    fn consider(&self, path: &Path, md: &Metadata, found: &mut Vec<Found>) {
        let wanted = (md.is_file() || md.file_type().is_symlink())
            && !is_ignored(&self.root, path, &self.extensions)
            && (self.recursive || path.parent() == Some(self.root.as_path()));
        if wanted {
            found.push((self.folder, path.to_owned(), Stamp::of(md)));
        }
    }
}

/// Looks at one unsettled file under `root`, for settling to judge.
pub(super) fn look_at(root: &Path, look: &Look) -> Observation {
    let path = &look.path;
    // A link is refused at first sight, whatever its target does: its own stamp says
    // whether it changed.
    if let Some(link) = first_link(root, path) {
        return Observation {
            stamp: fs::symlink_metadata(path).ok().map(|md| Stamp::of(&md)),
            opens: None,
            refusal: Some(refusal(path, &link)),
        };
    }
    let stamp = fs::symlink_metadata(path)
        .ok()
        .filter(|md| md.is_file())
        .map(|md| Stamp::of(&md));
    let opens = look.wants_open(stamp).then(|| fs::File::open(path).is_ok());
    Observation {
        stamp,
        opens,
        refusal: None,
    }
}
