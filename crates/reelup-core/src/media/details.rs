//! A video's details for embedding it: duration, picture size, frame rate and codecs, read
//! from the container's index alone (no frame is decoded).
//!
//! MP4, MOV and M4V go through Mozilla's `mp4parse`; Matroska and WebM through
//! `matroska-demuxer`. Files are outside input: a corrupt, truncated or hostile file gives
//! an error (logged by [`read_details`], which then answers `None`), never a panic, and the
//! bytes read are bounded whatever sizes the file declares:
//! - MP4: the top-level boxes are walked by seeking from header to header (an `mdat` of
//!   many gigabytes is skipped, not read), and only `ftyp` and `moov` are read, `moov` up to
//!   [`MAX_MOOV`]; `mp4parse` then parses that buffer with fallible allocations.
//! - Matroska: the demuxer checks each element's size against the stream, and reads through
//!   a budget of [`MATROSKA_READ_BUDGET`] bytes, so a file that declares huge cues or tags
//!   ends in an error instead of a long read.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The largest `moov` read. A two-hour 60 fps video's index is a few MiB; a `moov` larger
/// than this is refused rather than read into memory.
pub const MAX_MOOV: u64 = 64 * 1024 * 1024;

/// Bytes the Matroska demuxer may read in all (header, seek head, info, tracks, cues,
/// chapters, tags); media clusters are never read.
pub const MATROSKA_READ_BUDGET: u64 = 16 * 1024 * 1024;

/// Top-level MP4 boxes looked at before giving up on finding `moov` (a fragmented file has
/// `moov` before its fragments, so this bounds only files that are not MP4 at all).
const MAX_TOP_LEVEL_BOXES: usize = 4096;

/// What a creator needs to embed a video. Field names follow the rest of `QueueItem`'s
/// JSON (snake case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDetails {
    /// None when the container does not say (a live-recorded Matroska file, say).
    pub duration_ms: Option<u64>,
    /// The coded picture size of the first video track.
    pub width: u32,
    pub height: u32,
    /// Frames per second, rounded to 3 decimals (30000/1001 is 29.97); None when the
    /// container does not say.
    pub frame_rate: Option<f64>,
    /// "H.264", "HEVC", "AV1", "VP9"...; an unknown codec by its container name
    /// (fourcc or Matroska codec ID).
    pub video_codec: String,
    /// "AAC", "Opus"...; None when there is no audio track.
    pub audio_codec: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetailsError {
    #[error("the file could not be read: {0}")]
    Io(#[from] io::Error),
    #[error("not an MP4, MOV or Matroska file")]
    UnknownContainer,
    #[error("the MP4 index (moov) is missing: the file is truncated or not finished writing")]
    NoIndex,
    #[error("the MP4 index (moov) is {0} bytes, more than the {MAX_MOOV} read for details")]
    IndexTooLarge(u64),
    #[error(
        "a box at byte {at} declares a size that does not fit the file: the file is corrupt or truncated"
    )]
    BadBox { at: u64 },
    #[error("the MP4 index is corrupt: {0}")]
    Mp4(String),
    #[error("the Matroska header is corrupt: {0}")]
    Matroska(String),
    #[error("the file has no video track")]
    NoVideo,
    #[error("the container's parser gave up on it")]
    Panicked,
}

/// Reads a file's details; `None` (with the reason logged) when the file is not a
/// container Reelup reads or is corrupt. Blocking: a few small reads at the ends of the
/// file, plus the index.
pub fn read_details(path: &Path) -> Option<VideoDetails> {
    match try_read_details(path) {
        Ok(details) => Some(details),
        Err(e) => {
            tracing::info!(path = %path.display(), reason = %e, "no video details");
            None
        }
    }
}

/// [`read_details`] with the reason.
pub fn try_read_details(path: &Path) -> Result<VideoDetails, DetailsError> {
    details_from(&mut File::open(path)?)
}

/// Reads details from any seekable source (the fuzz target feeds it bytes). Parsers of
/// outside input are not trusted not to panic: a panic is one more corrupt file.
pub fn details_from<R: Read + Seek>(source: &mut R) -> Result<VideoDetails, DetailsError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| details_unguarded(source)))
        .unwrap_or(Err(DetailsError::Panicked))
}

fn details_unguarded<R: Read + Seek>(source: &mut R) -> Result<VideoDetails, DetailsError> {
    let mut magic = [0u8; 8];
    source.seek(SeekFrom::Start(0))?;
    let n = read_up_to(source, &mut magic)?;
    source.seek(SeekFrom::Start(0))?;
    if n >= 4 && magic[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        matroska_details(source)
    } else if n == 8 && is_box_type(&magic[4..8]) {
        mp4_details(source)
    } else {
        Err(DetailsError::UnknownContainer)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A box type is four printable ASCII characters (`ftyp`, `moov`, `ac-3`, `©nam` aside).
fn is_box_type(t: &[u8]) -> bool {
    t.iter().all(|b| (b' '..=b'~').contains(b))
}

// ---- MP4 / MOV / M4V ----

/// Finds `ftyp` and `moov` by seeking from box header to box header, and returns them as
/// one buffer for `mp4parse`.
fn mp4_index<R: Read + Seek>(file: &mut R) -> Result<Vec<u8>, DetailsError> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut at = 0u64;
    let mut index = Vec::new();
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if at + 8 > len {
            break;
        }
        file.seek(SeekFrom::Start(at))?;
        let mut head = [0u8; 16];
        let got = read_up_to(file, &mut head)?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        if !is_box_type(&kind) {
            return Err(DetailsError::BadBox { at });
        }
        let size = match size32 {
            0 => len - at,
            1 if got == 16 => u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
            1 => return Err(DetailsError::BadBox { at }),
            n => u64::from(n),
        };
        if size < 8 || size > len - at {
            return Err(if &kind == b"moov" || index.is_empty() && at == 0 {
                DetailsError::BadBox { at }
            } else {
                // Usually an `mdat` cut short: the index that comes after it never made it.
                DetailsError::NoIndex
            });
        }
        if &kind == b"ftyp" || &kind == b"moov" {
            if size > MAX_MOOV {
                return Err(DetailsError::IndexTooLarge(size));
            }
            let start = index.len();
            let size = size as usize;
            index
                .try_reserve_exact(size)
                .map_err(|_| DetailsError::IndexTooLarge(size as u64))?;
            index.resize(start + size, 0);
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut index[start..])?;
            if &kind == b"moov" {
                return Ok(index);
            }
        }
        at += size;
    }
    Err(DetailsError::NoIndex)
}

fn mp4_details<R: Read + Seek>(file: &mut R) -> Result<VideoDetails, DetailsError> {
    let index = mp4_index(file)?;
    let context = mp4parse::read_mp4(&mut io::Cursor::new(&index))
        .map_err(|e| DetailsError::Mp4(format!("{e:?}")))?;
    // Sample entry names in track order, for the codecs mp4parse does not name (HEVC,
    // ProRes, AC-3...).
    let entries = sample_entry_names(&index);
    let movie_scale = context.timescale.map(|t| t.0).filter(|t| *t > 0);

    let mut video = None;
    let mut audio = None;
    let mut duration_ms: Option<u64> = None;
    for (i, track) in context.tracks.iter().enumerate() {
        let entry = entries.get(i).copied().flatten();
        let Some(first) = track.stsd.as_ref().and_then(|s| s.descriptions.first()) else {
            continue;
        };
        let counted = match (&track.track_type, first) {
            (mp4parse::TrackType::Video, _) if video.is_some() => false,
            (mp4parse::TrackType::Video, mp4parse::SampleEntry::Video(v)) => {
                video = Some((
                    u32::from(v.width),
                    u32::from(v.height),
                    video_codec_name(v.codec_type, entry.map(|e| e.name)),
                    mp4_frame_rate(track),
                ));
                true
            }
            // mp4parse 0.17 leaves entries it has no codec for (HEVC, ProRes) unknown;
            // their size is read from the entry itself.
            (mp4parse::TrackType::Video, _) => {
                match entry.and_then(|e| e.picture.map(|p| (e, p))) {
                    Some((e, (w, h))) => {
                        video = Some((
                            u32::from(w),
                            u32::from(h),
                            video_codec_name(mp4parse::CodecType::Unknown, Some(e.name)),
                            mp4_frame_rate(track),
                        ));
                        true
                    }
                    None => false,
                }
            }
            (mp4parse::TrackType::Audio, _) if audio.is_none() => {
                let codec = match first {
                    mp4parse::SampleEntry::Audio(a) => a.codec_type,
                    _ => mp4parse::CodecType::Unknown,
                };
                audio = Some(audio_codec_name(codec, entry.map(|e| e.name)));
                true
            }
            _ => false,
        };
        if counted && let Some(ms) = track_duration_ms(track, movie_scale) {
            duration_ms = Some(duration_ms.map_or(ms, |d| d.max(ms)));
        }
    }
    // A fragmented file's tracks say 0; its `mehd` has the whole length.
    if duration_ms.is_none_or(|d| d == 0)
        && let (Some(mvex), Some(scale)) = (&context.mvex, movie_scale)
        && let Some(total) = mvex.fragment_duration
    {
        duration_ms = Some(scaled_ms(total.0, scale));
    }
    let (width, height, video_codec, frame_rate) = video.ok_or(DetailsError::NoVideo)?;
    Ok(VideoDetails {
        duration_ms: duration_ms.filter(|d| *d > 0),
        width,
        height,
        frame_rate,
        video_codec,
        audio_codec: audio,
    })
}

fn scaled_ms(units: u64, per_second: u64) -> u64 {
    (u128::from(units) * 1000 / u128::from(per_second.max(1))) as u64
}

/// The track's presented length: its header's (movie timescale, after edits), else its
/// media's (own timescale).
fn track_duration_ms(track: &mp4parse::Track, movie_scale: Option<u64>) -> Option<u64> {
    let from_header = track
        .tkhd
        .as_ref()
        .zip(movie_scale)
        .map(|(tkhd, scale)| scaled_ms(tkhd.duration, scale))
        // u64::MAX and u32::MAX mean "unknown" in tkhd.
        .filter(|ms| *ms > 0 && *ms < u64::from(u32::MAX));
    from_header.or_else(|| {
        let (d, s) = (track.duration?.0, track.timescale?.0);
        (s > 0).then(|| scaled_ms(d, s))
    })
}

/// The nominal frame rate: the track's timescale over its most common sample duration, so
/// a variable-rate phone video or a last frame of odd length does not give 29.96.
fn mp4_frame_rate(track: &mp4parse::Track) -> Option<f64> {
    let scale = track.timescale?.0;
    let stts = track.stts.as_ref()?;
    let common = stts
        .samples
        .iter()
        .filter(|s| s.sample_delta > 0)
        .max_by_key(|s| s.sample_count)?;
    rounded_rate(scale as f64 / f64::from(common.sample_delta))
}

/// A frame rate to 3 decimals; none unless that is a real rate: a rate under 0.0005 fps
/// (a hostile timescale) rounds to 0, which is no rate (found by fuzzing).
fn rounded_rate(fps: f64) -> Option<f64> {
    let rounded = (fps * 1000.0).round() / 1000.0;
    (fps.is_finite() && rounded > 0.0 && fps < 10_000.0).then_some(rounded)
}

fn video_codec_name(codec: mp4parse::CodecType, entry: Option<[u8; 4]>) -> String {
    use mp4parse::CodecType as C;
    match codec {
        C::H264 => "H.264".into(),
        C::AV1 => "AV1".into(),
        C::VP9 => "VP9".into(),
        C::VP8 => "VP8".into(),
        C::MP4V => "MPEG-4".into(),
        C::H263 => "H.263".into(),
        _ => match entry.as_ref().map(|e| &e[..]) {
            Some(b"hvc1" | b"hev1") => "HEVC".into(),
            Some(b"dvh1" | b"dvhe") => "Dolby Vision".into(),
            Some(b"apch" | b"apcn" | b"apcs" | b"apco" | b"ap4h" | b"ap4x") => "ProRes".into(),
            Some(b"encv") => "encrypted".into(),
            Some(other) => fourcc_text(other),
            None => "unknown".into(),
        },
    }
}

fn audio_codec_name(codec: mp4parse::CodecType, entry: Option<[u8; 4]>) -> String {
    use mp4parse::CodecType as C;
    match codec {
        C::AAC => "AAC".into(),
        C::Opus => "Opus".into(),
        C::FLAC => "FLAC".into(),
        C::MP3 => "MP3".into(),
        C::ALAC => "ALAC".into(),
        C::LPCM => "PCM".into(),
        _ => match entry.as_ref().map(|e| &e[..]) {
            Some(b"ac-3") => "AC-3".into(),
            Some(b"ec-3") => "E-AC-3".into(),
            Some(b"sowt" | b"twos" | b"lpcm" | b"in24" | b"in32" | b"fl32") => "PCM".into(),
            Some(b"enca") => "encrypted".into(),
            Some(other) => fourcc_text(other),
            None => "unknown".into(),
        },
    }
}

fn fourcc_text(fourcc: &[u8]) -> String {
    fourcc
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The boxes directly inside `data` (a box's body), stopping at the first that does not fit.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size32 = u32::from_be_bytes(data[..4].try_into().ok()?);
        let kind: [u8; 4] = data[4..8].try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, data.len() as u64),
            1 if data.len() >= 16 => (16, u64::from_be_bytes(data[8..16].try_into().ok()?)),
            1 => return None,
            n => (8, u64::from(n)),
        };
        if size < header as u64 || size > data.len() as u64 {
            return None;
        }
        let (this, rest) = data.split_at(size as usize);
        data = rest;
        Some((kind, &this[header..]))
    })
}

/// A track's first sample entry as read here, beside mp4parse.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SampleEntry {
    /// `avc1`, `hvc1`, `mp4a`, `ac-3`...
    name: [u8; 4],
    /// A visual sample entry's coded width and height (ISO 14496-12 § 12.1.3).
    picture: Option<(u16, u16)>,
}

/// The first sample entry of each `trak` of the `moov` in `index`, in order.
fn sample_entry_names(index: &[u8]) -> Vec<Option<SampleEntry>> {
    let child = |data: &[u8], name: &[u8; 4]| -> Option<Vec<u8>> {
        boxes(data)
            .find(|(k, _)| k == name)
            .map(|(_, b)| b.to_vec())
    };
    let Some(moov) = child(index, b"moov") else {
        return Vec::new();
    };
    boxes(&moov)
        .filter(|(k, _)| k == b"trak")
        .map(|(_, trak)| {
            let stsd = [b"mdia", b"minf", b"stbl", b"stsd"]
                .iter()
                .try_fold(trak.to_vec(), |data, name| child(&data, name))?;
            // stsd: version and flags (4), entry count (4), then the entries.
            let entry = stsd.get(8..)?;
            boxes(entry).next().map(|(name, body)| SampleEntry {
                name,
                // reserved (6), data reference index (2), pre-defined and reserved (16),
                // then width and height; meaningful only on a video track.
                picture: body.get(24..28).map(|b| {
                    (
                        u16::from_be_bytes([b[0], b[1]]),
                        u16::from_be_bytes([b[2], b[3]]),
                    )
                }),
            })
        })
        .collect()
}

// ---- Matroska / WebM ----

/// A reader that refuses to read more than `left` bytes in all.
struct Budget<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            return Err(io::Error::other(format!(
                "more than {MATROSKA_READ_BUDGET} bytes of headers"
            )));
        }
        let take = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..take])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Budget<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn matroska_details<R: Read + Seek>(file: &mut R) -> Result<VideoDetails, DetailsError> {
    let reader = Budget {
        inner: BufReader::with_capacity(16 * 1024, file),
        left: MATROSKA_READ_BUDGET,
    };
    let mkv = matroska_demuxer::MatroskaFile::open(reader)
        .map_err(|e| DetailsError::Matroska(e.to_string()))?;
    let tracks = mkv.tracks();
    let video = tracks
        .iter()
        .find(|t| t.track_type() == matroska_demuxer::TrackType::Video)
        .ok_or(DetailsError::NoVideo)?;
    let picture = video.video().ok_or(DetailsError::NoVideo)?;
    let audio = tracks
        .iter()
        .find(|t| t.track_type() == matroska_demuxer::TrackType::Audio);
    let info = mkv.info();
    let duration_ms = info
        .duration()
        .map(|d| d * info.timestamp_scale().get() as f64 / 1e6)
        .filter(|ms| ms.is_finite() && *ms > 0.0 && *ms < 1e15)
        .map(|ms| ms.round() as u64);
    Ok(VideoDetails {
        duration_ms,
        width: u32::try_from(picture.pixel_width().get()).unwrap_or(u32::MAX),
        height: u32::try_from(picture.pixel_height().get()).unwrap_or(u32::MAX),
        frame_rate: video
            .default_duration()
            .and_then(|ns| rounded_rate(1e9 / ns.get() as f64)),
        video_codec: matroska_codec_name(video.codec_id()),
        audio_codec: audio.map(|a| matroska_codec_name(a.codec_id())),
    })
}

fn matroska_codec_name(id: &str) -> String {
    let name = match id {
        "V_MPEG4/ISO/AVC" => "H.264",
        "V_MPEGH/ISO/HEVC" => "HEVC",
        "V_AV1" => "AV1",
        "V_VP9" => "VP9",
        "V_VP8" => "VP8",
        "V_PRORES" => "ProRes",
        "V_MPEG4/ISO/SP" | "V_MPEG4/ISO/ASP" | "V_MPEG4/ISO/AP" => "MPEG-4",
        "V_MPEG2" => "MPEG-2",
        "A_OPUS" => "Opus",
        "A_VORBIS" => "Vorbis",
        "A_FLAC" => "FLAC",
        "A_AC3" => "AC-3",
        "A_EAC3" => "E-AC-3",
        "A_MPEG/L3" => "MP3",
        "A_ALAC" => "ALAC",
        id if id.starts_with("A_AAC") => "AAC",
        id if id.starts_with("A_PCM") => "PCM",
        id => {
            // Shown and sent as metadata: printable ASCII, short, never empty.
            let shown: String = id.chars().filter(char::is_ascii_graphic).take(32).collect();
            return if shown.is_empty() {
                "unknown".into()
            } else {
                shown
            };
        }
    };
    name.to_owned()
}

// ---- Shown and sent ----

/// One line for a person: `0:42 · 1920x1080 · 29.97 fps · H.264/AAC`. The CLI prints it;
/// the UI builds the same line from the same fields (ui/src/details.ts).
pub fn details_line(d: &VideoDetails) -> String {
    let mut parts = Vec::new();
    if let Some(ms) = d.duration_ms {
        parts.push(clock(ms));
    }
    parts.push(format!("{}x{}", d.width, d.height));
    if let Some(fps) = d.frame_rate {
        parts.push(format!("{} fps", rate_text(fps)));
    }
    parts.push(match &d.audio_codec {
        Some(audio) => format!("{}/{audio}", d.video_codec),
        None => d.video_codec.clone(),
    });
    parts.join(" · ")
}

/// `m:ss`, or `h:mm:ss` from an hour; rounded to the nearest second.
fn clock(ms: u64) -> String {
    let secs = (ms + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// 25, 29.97, 23.976: no trailing zeros.
fn rate_text(fps: f64) -> String {
    let text = format!("{fps:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The object metadata sent with the upload (Companion's `metadata[...]`), under names the
/// server's policy keeps (ASCII letters and digits) and values that are header-safe.
pub fn details_metadata(d: &VideoDetails) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(ms) = d.duration_ms {
        // Seconds with milliseconds, as ffprobe and most players print it.
        out.push(("duration".into(), format!("{}.{:03}", ms / 1000, ms % 1000)));
    }
    out.push(("width".into(), d.width.to_string()));
    out.push(("height".into(), d.height.to_string()));
    if let Some(fps) = d.frame_rate {
        out.push(("framerate".into(), rate_text(fps)));
    }
    out.push(("videocodec".into(), d.video_codec.clone()));
    if let Some(audio) = &d.audio_codec {
        out.push(("audiocodec".into(), audio.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VideoDetails {
        VideoDetails {
            duration_ms: Some(42_400),
            width: 1920,
            height: 1080,
            frame_rate: Some(29.97),
            video_codec: "H.264".into(),
            audio_codec: Some("AAC".into()),
        }
    }

    #[test]
    fn the_line_reads_like_a_player_would_say_it() {
        assert_eq!(
            details_line(&sample()),
            "0:42 · 1920x1080 · 29.97 fps · H.264/AAC"
        );
        let long = VideoDetails {
            duration_ms: Some(3_725_600),
            frame_rate: Some(25.0),
            audio_codec: None,
            video_codec: "HEVC".into(),
            ..sample()
        };
        assert_eq!(details_line(&long), "1:02:06 · 1920x1080 · 25 fps · HEVC");
        let bare = VideoDetails {
            duration_ms: None,
            frame_rate: None,
            ..long
        };
        assert_eq!(details_line(&bare), "1920x1080 · HEVC");
    }

    #[test]
    fn metadata_names_and_values_pass_the_servers_policy() {
        let meta = details_metadata(&sample());
        assert_eq!(
            meta,
            [
                ("duration", "42.400"),
                ("width", "1920"),
                ("height", "1080"),
                ("framerate", "29.97"),
                ("videocodec", "H.264"),
                ("audiocodec", "AAC"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn unknown_codecs_keep_a_short_printable_name() {
        assert_eq!(matroska_codec_name("V_MPEGH/ISO/HEVC"), "HEVC");
        assert_eq!(matroska_codec_name("V_QUICKTIME"), "V_QUICKTIME");
        assert_eq!(matroska_codec_name("\u{7f}\n "), "unknown");
        assert_eq!(matroska_codec_name(&"X".repeat(500)).len(), 32);
        assert_eq!(
            video_codec_name(mp4parse::CodecType::Unknown, Some(*b"hev1")),
            "HEVC"
        );
        assert_eq!(
            audio_codec_name(mp4parse::CodecType::Unknown, Some(*b"\0\x01  ")),
            "????"
        );
    }

    #[test]
    fn rates_round_to_what_people_call_them() {
        assert_eq!(rounded_rate(30000.0 / 1001.0), Some(29.97));
        assert_eq!(rounded_rate(24000.0 / 1001.0), Some(23.976));
        assert_eq!(rate_text(23.976), "23.976");
        assert_eq!(rate_text(60.0), "60");
        assert_eq!(rounded_rate(f64::INFINITY), None);
        assert_eq!(rounded_rate(0.0), None);
    }

    #[test]
    fn files_that_are_not_containers_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("notes.mp4");
        std::fs::write(&text, b"\x00\x01\x02\x03 this is not a video").expect("write");
        assert!(matches!(
            try_read_details(&text),
            Err(DetailsError::UnknownContainer | DetailsError::BadBox { .. })
        ));
        let empty = dir.path().join("empty.mov");
        std::fs::write(&empty, b"").expect("write");
        assert!(read_details(&empty).is_none());
        // A box that claims more bytes than the file has.
        let lying = dir.path().join("lying.mp4");
        let mut bytes = 0xFFFF_FFF0u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"moov");
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&lying, &bytes).expect("write");
        assert!(matches!(
            try_read_details(&lying),
            Err(DetailsError::BadBox { at: 0 })
        ));
        // A 64-bit size that claims exabytes.
        let mut bytes = 1u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"moov");
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        std::fs::write(&lying, &bytes).expect("write");
        assert!(try_read_details(&lying).is_err());
    }

    #[test]
    fn box_walking_stops_at_a_box_that_does_not_fit() {
        let mut data = Vec::new();
        data.extend_from_slice(&12u32.to_be_bytes());
        data.extend_from_slice(b"free");
        data.extend_from_slice(&[1, 2, 3, 4]);
        data.extend_from_slice(&100u32.to_be_bytes());
        data.extend_from_slice(b"moov");
        let found: Vec<_> = boxes(&data).map(|(k, b)| (k, b.len())).collect();
        assert_eq!(found, [(*b"free", 4)]);
        assert!(sample_entry_names(&data).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 512,
            failure_persistence: None,
            ..Default::default()
        })]

        /// Bytes after each container's opening (none, an `ftyp`, a `moov` of any content,
        /// the EBML magic) give details or an error; the parsers themselves never panic
        /// (the guard in `details_from` is a second line, not the first).
        #[test]
        fn any_bytes_give_details_or_an_error(
            opening in 0u8..4,
            body in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..1536),
        ) {
            let mut data = match opening {
                0 => Vec::new(),
                1 => b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec(),
                2 => {
                    let mut moov = (8 + body.len() as u32).to_be_bytes().to_vec();
                    moov.extend_from_slice(b"moov");
                    moov
                }
                _ => vec![0x1A, 0x45, 0xDF, 0xA3],
            };
            data.extend_from_slice(&body);
            let _ = details_unguarded(&mut io::Cursor::new(data));
        }
    }
}
