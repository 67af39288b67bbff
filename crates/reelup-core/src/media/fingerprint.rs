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
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let size = meta.len();
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
}
