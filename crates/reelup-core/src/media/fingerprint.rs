use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

/// Bytes hashed at each end of the file.
const SAMPLE: u64 = 64 * 1024;

/// What identifies a file's contents cheaply: size, modification time, and a hash of its
/// first and last 64 KiB. A queued upload whose file no longer matches stops with an error
/// instead of mixing old and new bytes in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: i64,
    pub sample_sha256: String,
}

impl Fingerprint {
    pub fn of(path: &Path) -> std::io::Result<Self> {
        Self::of_file(&mut std::fs::File::open(path)?)
    }

    /// The fingerprint of an open file: its metadata and bytes come from the handle, never
    /// from a path that could name another file by the time it is read. Moves the file's
    /// position.
    pub fn of_file(file: &mut std::fs::File) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let size = meta.len();
        file.seek(SeekFrom::Start(0))?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        let mut hasher = Sha256::new();
        hasher.update(size.to_le_bytes());
        let mut buf = vec![0; SAMPLE.min(size) as usize];
        file.read_exact(&mut buf)?;
        hasher.update(&buf);
        if size > SAMPLE {
            let tail = SAMPLE.min(size - SAMPLE);
            file.seek(SeekFrom::Start(size - tail))?;
            let mut buf = vec![0; tail as usize];
            file.read_exact(&mut buf)?;
            hasher.update(&buf);
        }
        Ok(Self {
            size,
            mtime_ns,
            sample_sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Why [`open_unchanged`] gave no file. Each message says what happened, for a line such
/// as "clip.mp4: no poster: …".
#[derive(Debug, thiserror::Error)]
pub enum NotTheQueuedFile {
    #[error(
        "the file is a symbolic link now (or was replaced by one since it was queued); it is read only as the file itself, never through a link"
    )]
    Link,
    #[error(
        "the file changed or was replaced since it was queued (its size, time or content differ); only the file that was queued is read"
    )]
    Changed,
    #[error("the file is gone since it was queued")]
    Gone,
    #[error("the file cannot be read: {0}")]
    Unreadable(std::io::Error),
}

/// Opens the file queued at `path` if it is still the file whose fingerprint is
/// `expected`: opened without following a link at its last component
/// ([`crate::platform::open_no_follow`]), a regular file, and the fingerprint read from the
/// open handle. The handle is returned rewound, to be read from and nothing else: a name
/// opened again later could name another file by then. `pin_name`: see
/// [`crate::platform::open_no_follow`] (Windows only: the name keeps naming this file while
/// the handle is open, for a reader that can be given only a name).
///
/// What this guards: a finished clip (or the same clip moved into `uploaded/`) swapped for
/// a link to, or a copy of, another file, whose bytes would otherwise be read in its name.
/// A folder on the way replaced by a link is followed, and caught by the fingerprint: a
/// different file under the same name differs in size, modification time or the sampled
/// bytes.
pub fn open_unchanged(
    path: &Path,
    expected: &Fingerprint,
    pin_name: bool,
) -> Result<File, NotTheQueuedFile> {
    let mut file = crate::platform::open_no_follow(path, pin_name).map_err(|e| {
        if crate::platform::is_link_refusal(&e) {
            NotTheQueuedFile::Link
        } else if e.kind() == std::io::ErrorKind::NotFound {
            NotTheQueuedFile::Gone
        } else {
            NotTheQueuedFile::Unreadable(e)
        }
    })?;
    // A FIFO or device in the file's place is never the file queued (and a directory
    // cannot be read).
    let meta = file.metadata().map_err(NotTheQueuedFile::Unreadable)?;
    if !meta.is_file() {
        return Err(NotTheQueuedFile::Changed);
    }
    let now = Fingerprint::of_file(&mut file).map_err(NotTheQueuedFile::Unreadable)?;
    if now != *expected {
        return Err(NotTheQueuedFile::Changed);
    }
    file.seek(SeekFrom::Start(0))
        .map_err(NotTheQueuedFile::Unreadable)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_when_the_ends_or_size_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mp4");
        std::fs::write(&path, vec![1u8; 300_000]).expect("write");
        let a = Fingerprint::of(&path).expect("fp");
        assert_eq!(a, Fingerprint::of(&path).expect("fp"), "stable");
        let mut bytes = vec![1u8; 300_000];
        bytes[299_999] = 2;
        std::fs::write(&path, &bytes).expect("write");
        let b = Fingerprint::of(&path).expect("fp");
        assert_ne!(a.sample_sha256, b.sample_sha256);
        std::fs::write(&path, b"").expect("write");
        assert_eq!(Fingerprint::of(&path).expect("empty file").size, 0);
    }

    #[test]
    fn opens_only_the_unchanged_file_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clip = dir.path().join("clip.mp4");
        std::fs::write(&clip, vec![1u8; 200_000]).expect("write");
        let queued = Fingerprint::of(&clip).expect("fp");
        let mut file = open_unchanged(&clip, &queued, false).expect("the queued file");
        let mut first = [0u8; 4];
        file.read_exact(&mut first).expect("read");
        assert_eq!(first, [1; 4], "rewound to its start");

        std::fs::write(&clip, vec![2u8; 200_000]).expect("write");
        assert!(matches!(
            open_unchanged(&clip, &queued, false),
            Err(NotTheQueuedFile::Changed)
        ));
        std::fs::remove_file(&clip).expect("rm");
        assert!(matches!(
            open_unchanged(&clip, &queued, false),
            Err(NotTheQueuedFile::Gone)
        ));
    }

    /// A link is refused even when it leads to the very file queued: the check is on what
    /// the name is, not only on what it leads to.
    #[cfg(unix)]
    #[test]
    fn a_link_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.mp4");
        std::fs::write(&real, vec![1u8; 1000]).expect("write");
        let queued = Fingerprint::of(&real).expect("fp");
        let clip = dir.path().join("clip.mp4");
        std::os::unix::fs::symlink(&real, &clip).expect("symlink");
        assert!(matches!(
            open_unchanged(&clip, &queued, false),
            Err(NotTheQueuedFile::Link)
        ));
    }
}
