//! Faststart: where an MP4/MOV keeps its index (`moov`), and the same file re-laid with the
//! index first, without re-encoding and without a copy on disk.
//!
//! A browser can start playing only once it has `moov`. OBS, phones and many editors write
//! it after the media (`mdat`), so a viewer first waits for the end of the file. [`scan`]
//! reads only the top-level box headers (and `moov`'s direct children, to tell a
//! fragmented file) and says where the index is. [`relayout`] builds the faststart layout
//! as ffmpeg's `-movflags +faststart` would: the boxes before `mdat`, then `moov` with every
//! chunk offset moved by what now comes before the media, then the rest of the file less
//! the old `moov` (and any `free` box that only padded it). The result is a
//! [`Source`]: the file's own ranges around the new `moov` held in memory, which the
//! upload reads as one stream. The media bytes are never touched or copied.
//!
//! Every size comes from the file and is checked before it is used: a box that runs past
//! the end, is smaller than its header or is absurdly large is an [`Mp4Problem`] naming it;
//! `moov` is read into memory only up to [`MAX_MOOV`]; the walk advances at least 8 bytes a
//! box and stops after [`MAX_TOP_LEVEL_BOXES`].

mod boxes;
mod moov;
#[cfg(test)]
mod tests;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::engine::{Segment, Source};
use boxes::{BoxHeader, kind_name, parse_header};

/// The largest `moov` read into memory. A two-hour 4K recording's index is a few MiB; more
/// than this is a damaged or hostile file, not a video.
pub const MAX_MOOV: u64 = 256 * 1024 * 1024;
/// More top-level boxes than this is not a video file either.
pub const MAX_TOP_LEVEL_BOXES: usize = 100_000;

/// Top-level box types an ISO-BMFF file (MP4, MOV, M4V, 3GP) starts with. A file whose
/// first box is none of these is something else (Matroska, WebM, AVI...): nothing to say.
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"sidx",
    b"pdin", b"meta", b"moof",
];

/// Where a file keeps its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum IndexPosition {
    /// `moov` before `mdat`: playback starts at once.
    MoovFirst,
    /// `moov` after `mdat`: a viewer waits for the whole index first.
    MoovAfterMdat,
    /// Fragmented MP4 (`moof`, or `mvex` in `moov`): each fragment carries its own index;
    /// left as it is.
    Fragmented,
    /// Not an ISO-BMFF file (Matroska, WebM, AVI, MXF): nothing to say.
    NotMp4,
    /// An MP4/MOV whose boxes do not add up (truncated or corrupt); the item's error says
    /// what is wrong.
    Damaged,
}

impl IndexPosition {
    pub const ALL: [Self; 5] = [
        Self::MoovFirst,
        Self::MoovAfterMdat,
        Self::Fragmented,
        Self::NotMp4,
        Self::Damaged,
    ];

    /// As stored in the queue.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MoovFirst => "moov_first",
            Self::MoovAfterMdat => "moov_after_mdat",
            Self::Fragmented => "fragmented",
            Self::NotMp4 => "not_mp4",
            Self::Damaged => "damaged",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// What it means for a viewer, in the words the app and the CLI show.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MoovFirst => "starts instantly",
            Self::MoovAfterMdat => "viewers wait for the whole index",
            Self::Fragmented => "fragmented MP4, streams as it is",
            Self::NotMp4 => "not an MP4/MOV",
            Self::Damaged => "damaged MP4/MOV",
        }
    }
}

/// How the bytes go up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The file's bytes as they are.
    Original,
    /// Re-laid with `moov` first.
    Faststart,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Faststart => "faststart",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "original" => Some(Self::Original),
            "faststart" => Some(Self::Faststart),
            _ => None,
        }
    }
}

/// A profile's faststart setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "kebab-case")]
pub enum FaststartSetting {
    /// Upload every file as it is (where its index is is still shown), damaged ones too.
    Off,
    /// Hold a file whose index is at the end until the user chooses.
    Ask,
    /// Re-lay every file whose index is at the end (the default: a creator wants links
    /// that start at once, and a watch folder has nobody to ask).
    #[default]
    Always,
}

impl FaststartSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Ask => "ask",
            Self::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(Self::Off),
            "ask" => Some(Self::Ask),
            "always" => Some(Self::Always),
            _ => None,
        }
    }
}

/// Why an MP4/MOV cannot be read or re-laid. `at` is a byte offset in the file.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Problem {
    #[error("{what} (at byte {at}): the file is cut off; was it copied or recorded only in part?")]
    Truncated { what: String, at: u64 },
    #[error("{what} (at byte {at})")]
    Corrupt { what: String, at: u64 },
    #[error(
        "it has no moov box (its index), so no player can read it; was the recording stopped before it was finished?"
    )]
    NoMoov,
    #[error("its moov box is {size} bytes, more than the {max} Reelup reads", max = MAX_MOOV)]
    MoovTooLarge { size: u64 },
    #[error("it has more than {MAX_TOP_LEVEL_BOXES} top-level boxes")]
    TooManyBoxes,
    #[error("it uses {what}, which Reelup cannot re-lay")]
    Unsupported { what: String },
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
}

/// The top-level boxes of a file and where its index is.
#[derive(Debug, Clone)]
pub struct Scan {
    pub position: IndexPosition,
    boxes: Vec<BoxHeader>,
}

/// Reads `len` bytes at `at`, or fewer at the end of the file.
fn read_at(file: &mut (impl Read + Seek), at: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(at))?;
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The box headers laid end to end from `start` to `end` in the file.
fn walk(file: &mut (impl Read + Seek), start: u64, end: u64) -> Result<Vec<BoxHeader>, Mp4Problem> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        if out.len() >= MAX_TOP_LEVEL_BOXES {
            return Err(Mp4Problem::TooManyBoxes);
        }
        let mut head = [0u8; 16];
        let n = read_at(file, at, &mut head[..(end - at).min(16) as usize])?;
        let header = parse_header(&head[..n], at, end)?;
        at = header.end();
        out.push(header);
    }
    Ok(out)
}

/// Where `file` (of `len` bytes) keeps its index.
pub fn scan(file: &mut (impl Read + Seek), len: u64) -> Result<Scan, Mp4Problem> {
    let not_mp4 = Scan {
        position: IndexPosition::NotMp4,
        boxes: Vec::new(),
    };
    let mut head = [0u8; 16];
    let n = read_at(file, 0, &mut head[..len.min(16) as usize])?;
    match parse_header(&head[..n], 0, len) {
        Ok(first) if FIRST_BOXES.iter().any(|k| first.is(k)) => {}
        // A first box that is cut off still names an MP4: say so below.
        Err(Mp4Problem::Truncated { .. })
            if n >= 8 && FIRST_BOXES.iter().any(|k| head[4..8] == k[..]) => {}
        _ => return Ok(not_mp4),
    }
    let boxes = walk(file, 0, len)?;
    let moovs: Vec<usize> = (0..boxes.len()).filter(|&i| boxes[i].is(b"moov")).collect();
    let moov = match moovs.as_slice() {
        [] => return Err(Mp4Problem::NoMoov),
        [one] => *one,
        [_, second, ..] => {
            return Err(Mp4Problem::Corrupt {
                what: "a second moov box".into(),
                at: boxes[*second].start,
            });
        }
    };
    let in_moov = walk(file, boxes[moov].payload_start(), boxes[moov].end())?;
    let fragmented = boxes.iter().any(|b| b.is(b"moof")) || in_moov.iter().any(|b| b.is(b"mvex"));
    let first_mdat = boxes.iter().position(|b| b.is(b"mdat"));
    let position = if fragmented {
        IndexPosition::Fragmented
    } else {
        match first_mdat {
            Some(mdat) if mdat < moov => IndexPosition::MoovAfterMdat,
            _ => IndexPosition::MoovFirst,
        }
    };
    Ok(Scan { position, boxes })
}

/// Where the file at `path` keeps its index.
pub fn scan_file(path: &Path) -> Result<Scan, Mp4Problem> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    scan(&mut file, len)
}

impl Scan {
    /// The file laid out with `moov` first, for a file whose index is at the end; None for
    /// any other (it goes up as it is).
    pub fn relayout(
        &self,
        path: &Path,
        file: &mut (impl Read + Seek),
    ) -> Result<Option<Source>, Mp4Problem> {
        if self.position != IndexPosition::MoovAfterMdat {
            return Ok(None);
        }
        let boxes = &self.boxes;
        let moov_i = boxes
            .iter()
            .position(|b| b.is(b"moov"))
            .ok_or(Mp4Problem::NoMoov)?;
        let mdat_i = boxes
            .iter()
            .position(|b| b.is(b"mdat"))
            .ok_or(Mp4Problem::NoMoov)?;
        let moov = boxes[moov_i];
        if moov.size > MAX_MOOV {
            return Err(Mp4Problem::MoovTooLarge { size: moov.size });
        }
        // The old moov goes, with the `free` or `skip` boxes right beside it (after the
        // media): they only padded it.
        let padding = |i: usize| i > mdat_i && (boxes[i].is(b"free") || boxes[i].is(b"skip"));
        let mut removed = vec![moov_i];
        if moov_i > 0 && padding(moov_i - 1) {
            removed.push(moov_i - 1);
        }
        if moov_i + 1 < boxes.len() && padding(moov_i + 1) {
            removed.push(moov_i + 1);
        }
        let mut bytes = vec![0u8; moov.size as usize];
        let n = read_at(file, moov.start, &mut bytes)?;
        if n != bytes.len() {
            return Err(Mp4Problem::Truncated {
                what: "the moov box".into(),
                at: moov.start,
            });
        }
        let insert_at = boxes[mdat_i].start;
        // A chunk at `offset` moves forward by the new moov's length, and back by what was
        // removed before it.
        let shift = |offset: u64, moov_len: u64| -> Result<u64, Mp4Problem> {
            if offset < insert_at {
                return Ok(offset);
            }
            let mut gone = 0u64;
            for &i in &removed {
                let b = boxes[i];
                if offset >= b.end() {
                    gone += b.size;
                } else if offset >= b.start {
                    return Err(Mp4Problem::Corrupt {
                        what: format!(
                            "a chunk offset ({offset}) points into the '{}' box",
                            kind_name(&b.kind)
                        ),
                        at: b.start,
                    });
                }
            }
            // A hostile offset near u64::MAX must be an error, not a wrap (release) or a
            // panic (debug): found by fuzzing.
            offset
                .checked_add(moov_len)
                .and_then(|moved| moved.checked_sub(gone))
                .ok_or_else(|| Mp4Problem::Corrupt {
                    what: format!("chunk offset {offset} is out of range"),
                    at: moov.start,
                })
        };
        let new_moov = new_moov(&bytes, moov.start, &shift)?;
        let mut segments = Vec::new();
        let file_range = |b: &BoxHeader| Segment::File {
            start: b.start,
            len: b.size,
        };
        segments.extend(boxes[..mdat_i].iter().map(file_range));
        segments.push(Segment::Memory(Bytes::from(new_moov)));
        segments.extend(
            boxes
                .iter()
                .enumerate()
                .skip(mdat_i)
                .filter(|(i, _)| !removed.contains(i))
                .map(|(_, b)| file_range(b)),
        );
        Ok(Some(Source::from_segments(path, merge(segments))))
    }
}

/// The rewritten moov: chunk offsets as `stco` where they fit, every table as `co64`
/// where one does not. Its length moves the offsets, so each layout is tried with a
/// first pass for the length.
fn new_moov(
    moov: &[u8],
    start: u64,
    shift: &dyn Fn(u64, u64) -> Result<u64, Mp4Problem>,
) -> Result<Vec<u8>, Mp4Problem> {
    for wide in [false, true] {
        let unmoved = |o: u64| Ok(o);
        let len = match moov::rewrite(moov, start, wide, &unmoved) {
            Ok(b) => b.len() as u64,
            Err(moov::Refused::Needs64Bit) => continue,
            Err(moov::Refused::Problem(p)) => return Err(p),
        };
        match moov::rewrite(moov, start, wide, &|o| shift(o, len)) {
            Ok(b) => {
                debug_assert_eq!(b.len() as u64, len);
                return Ok(b);
            }
            Err(moov::Refused::Needs64Bit) => continue,
            Err(moov::Refused::Problem(p)) => return Err(p),
        }
    }
    Err(Mp4Problem::Corrupt {
        what: "chunk offsets do not fit even in 64 bits".into(),
        at: start,
    })
}

/// Neighbouring file ranges as one, so a plain run of boxes is read as one range.
fn merge(segments: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segments.len());
    for seg in segments {
        if let (
            Some(Segment::File { start, len }),
            Segment::File {
                start: next,
                len: more,
            },
        ) = (out.last_mut(), &seg)
            && *start + *len == *next
        {
            *len += more;
            continue;
        }
        out.push(seg);
    }
    out
}

/// What was found in a file and how it goes up, decided once per item.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub position: IndexPosition,
    pub layout: Layout,
    pub source: Source,
}

/// Scans `path` and lays it out as `layout` asks: `Faststart` re-lays a file whose index is
/// at the end, and leaves any other as it is (and says so with `Original`).
pub fn prepare(path: &Path, layout: Layout) -> Result<Prepared, Mp4Problem> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let plain = |position| Prepared {
        position,
        layout: Layout::Original,
        source: Source::file(path, len),
    };
    if layout == Layout::Original {
        let position = match scan(&mut file, len) {
            Ok(s) => s.position,
            Err(Mp4Problem::Io(e)) => return Err(Mp4Problem::Io(e)),
            Err(_) => IndexPosition::Damaged,
        };
        return Ok(plain(position));
    }
    let scan = scan(&mut file, len)?;
    match scan.relayout(path, &mut file)? {
        Some(source) => Ok(Prepared {
            position: scan.position,
            layout: Layout::Faststart,
            source,
        }),
        None => Ok(plain(scan.position)),
    }
}
