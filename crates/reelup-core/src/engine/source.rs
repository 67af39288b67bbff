//! What an upload sends: a file's bytes as they are, or a new arrangement of them (the
//! faststart layout: the file's own ranges around a rewritten index held in memory), read
//! as one logical stream. Parts, MD5s and sizes are all of this stream; the file on disk
//! is never copied or changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `len` bytes of the file from `start`.
    File { start: u64, len: u64 },
    /// Bytes made in memory (a rewritten `moov`).
    Memory(Bytes),
}

impl Segment {
    pub fn len(&self) -> u64 {
        match self {
            Self::File { len, .. } => *len,
            Self::Memory(b) => b.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file's bytes in the order they are sent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Source {
    path: PathBuf,
    /// In stream order, none empty, each with the stream offset it starts at.
    segments: Arc<[(u64, Segment)]>,
    len: u64,
}

/// Where a read at some offset of the stream comes from.
pub(crate) enum Piece<'a> {
    File { start: u64, len: u64 },
    Memory(&'a Bytes, std::ops::Range<usize>),
}

impl Source {
    /// The file as it is: one segment, read straight from disk as before.
    pub fn file(path: &Path, len: u64) -> Self {
        Self::from_segments(path, vec![Segment::File { start: 0, len }])
    }

    pub fn from_segments(path: &Path, segments: Vec<Segment>) -> Self {
        let mut at = 0;
        let segments: Vec<(u64, Segment)> = segments
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let start = at;
                at += s.len();
                (start, s)
            })
            .collect();
        Self {
            path: path.to_owned(),
            segments: segments.into(),
            len: at,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stream's length: what is declared to the endpoint and planned into parts.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().map(|(_, s)| s)
    }

    /// The longest piece of at most `max` bytes starting at stream offset `at`, within one
    /// segment; None at or past the end.
    pub(crate) fn piece(&self, at: u64, max: u64) -> Option<Piece<'_>> {
        // Segments are few (one for a plain file, about four for a faststart layout).
        let i = self
            .segments
            .partition_point(|(start, _)| *start <= at)
            .checked_sub(1)?;
        let (seg_start, seg) = &self.segments[i];
        let into = at - seg_start;
        if into >= seg.len() {
            return None;
        }
        let n = (seg.len() - into).min(max);
        Some(match seg {
            Segment::File { start, .. } => Piece::File {
                start: start + into,
                len: n,
            },
            Segment::Memory(b) => Piece::Memory(b, into as usize..(into + n) as usize),
        })
    }

    /// The whole stream read into memory, for tests.
    #[cfg(test)]
    pub(crate) fn read_all(&self) -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut out = Vec::with_capacity(self.len as usize);
        let mut file = std::fs::File::open(&self.path)?;
        for seg in self.segments() {
            match seg {
                Segment::File { start, len } => {
                    file.seek(std::io::SeekFrom::Start(*start))?;
                    let mut buf = vec![0; *len as usize];
                    file.read_exact(&mut buf)?;
                    out.extend_from_slice(&buf);
                }
                Segment::Memory(b) => out.extend_from_slice(b),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_stop_at_segment_edges() {
        let src = Source::from_segments(
            Path::new("/x"),
            vec![
                Segment::File { start: 0, len: 10 },
                Segment::Memory(Bytes::from_static(b"abcdef")),
                Segment::File { start: 0, len: 0 },
                Segment::File {
                    start: 100,
                    len: 20,
                },
            ],
        );
        assert_eq!(src.len(), 36);
        assert!(matches!(
            src.piece(4, 100),
            Some(Piece::File { start: 4, len: 6 })
        ));
        match src.piece(12, 100) {
            Some(Piece::Memory(b, r)) => assert_eq!(&b[r], b"cdef"),
            _ => panic!("memory"),
        }
        assert!(matches!(
            src.piece(16, 5),
            Some(Piece::File { start: 100, len: 5 })
        ));
        assert!(src.piece(36, 1).is_none());
    }
}
