//! Video details read from the container, checked against ffprobe on files ffmpeg makes.

use std::path::{Path, PathBuf};
use std::process::Command;

use reelup_core::media::details::{DetailsError, try_read_details};
use reelup_core::{VideoDetails, details_line};

/// Makes `name` in `dir` with ffmpeg from lavfi test sources; `args` go between the inputs
/// and the output.
fn ffmpeg(dir: &Path, name: &str, inputs: &[&str], args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    for input in inputs {
        cmd.args(["-f", "lavfi", "-i", input]);
    }
    let status = cmd
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs (apt install ffmpeg)");
    assert!(status.success(), "ffmpeg made {name}");
    out
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {}", path.display());
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// ffprobe's codec names, as Reelup shows them.
fn shown(ffprobe_codec: &str) -> &'static str {
    match ffprobe_codec {
        "h264" => "H.264",
        "hevc" => "HEVC",
        "vp9" => "VP9",
        "av1" => "AV1",
        "aac" => "AAC",
        "opus" => "Opus",
        other => panic!("no name for {other}"),
    }
}

/// What Reelup read equals what ffprobe says, field by field.
fn assert_matches_ffprobe(path: &Path, details: &VideoDetails) {
    let probe = ffprobe(path);
    let video = stream(&probe, "video").expect("a video stream");
    assert_eq!(
        i64::from(details.width),
        video["width"].as_i64().expect("w")
    );
    assert_eq!(
        i64::from(details.height),
        video["height"].as_i64().expect("h")
    );
    assert_eq!(
        details.video_codec,
        shown(video["codec_name"].as_str().expect("codec"))
    );
    assert_eq!(
        details.audio_codec.as_deref(),
        stream(&probe, "audio").map(|a| shown(a["codec_name"].as_str().expect("codec")))
    );
    let (num, den) = video["r_frame_rate"]
        .as_str()
        .expect("rate")
        .split_once('/')
        .expect("n/d");
    let rate = num.parse::<f64>().expect("n") / den.parse::<f64>().expect("d");
    assert_eq!(
        details.frame_rate,
        Some((rate * 1000.0).round() / 1000.0),
        "{}",
        path.display()
    );
    let seconds: f64 = probe["format"]["duration"]
        .as_str()
        .expect("duration")
        .parse()
        .expect("seconds");
    let ms = details.duration_ms.expect("a duration") as f64;
    assert!(
        (ms - seconds * 1000.0).abs() <= 1.0,
        "{}: read {ms} ms, ffprobe says {seconds} s",
        path.display()
    );
}

#[test]
fn h264_aac_mp4_matches_ffprobe_with_the_index_at_either_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = [
        "testsrc=size=320x240:rate=25:duration=3",
        "sine=frequency=440:duration=3",
    ];
    let encode = [
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
    ];
    // ffmpeg's default puts moov last; the walk seeks past mdat to find it.
    let moov_last = ffmpeg(dir.path(), "clip.mp4", &inputs, &encode);
    let mut faststart_args = encode.to_vec();
    faststart_args.extend(["-movflags", "+faststart"]);
    let moov_first = ffmpeg(dir.path(), "clip-faststart.m4v", &inputs, &faststart_args);
    for path in [&moov_last, &moov_first] {
        let details = try_read_details(path).expect("details");
        assert_matches_ffprobe(path, &details);
        assert_eq!(details.width, 320);
        assert_eq!(details.frame_rate, Some(25.0));
        assert_eq!(details.audio_codec.as_deref(), Some("AAC"));
        assert_eq!(
            details_line(&details),
            "0:03 · 320x240 · 25 fps · H.264/AAC"
        );
    }
}

#[test]
fn hevc_at_29_97_without_audio_matches_ffprobe_in_mp4_and_mov() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = ["testsrc=size=640x360:rate=30000/1001:duration=2"];
    let x265 = ["-c:v", "libx265", "-x265-params", "log-level=error"];
    let hev1 = ffmpeg(dir.path(), "hevc.mp4", &inputs, &x265);
    let mut tagged = x265.to_vec();
    tagged.extend(["-tag:v", "hvc1"]);
    let hvc1 = ffmpeg(dir.path(), "hevc.mov", &inputs, &tagged);
    for path in [&hev1, &hvc1] {
        let details = try_read_details(path).expect("details");
        assert_matches_ffprobe(path, &details);
        assert_eq!(details.video_codec, "HEVC", "{}", path.display());
        assert_eq!(details.frame_rate, Some(29.97));
        assert_eq!(details.audio_codec, None);
    }
}

#[test]
fn av1_mp4_matches_ffprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ffmpeg(
        dir.path(),
        "av1.mp4",
        &["testsrc=size=320x240:rate=30:duration=1"],
        &[
            "-c:v",
            "libsvtav1",
            "-preset",
            "12",
            "-svtav1-params",
            "lp=1",
        ],
    );
    let details = try_read_details(&path).expect("details");
    assert_matches_ffprobe(&path, &details);
    assert_eq!(details.video_codec, "AV1");
}

#[test]
fn vp9_opus_webm_matches_ffprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = ffmpeg(
        dir.path(),
        "clip.webm",
        &[
            "testsrc=size=320x240:rate=30000/1001:duration=2",
            "sine=frequency=440:duration=2",
        ],
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-c:a",
            "libopus",
            "-shortest",
        ],
    );
    let details = try_read_details(&path).expect("details");
    assert_matches_ffprobe(&path, &details);
    assert_eq!(
        (details.video_codec.as_str(), details.audio_codec.as_deref()),
        ("VP9", Some("Opus"))
    );
    // And H.264 in Matroska: the codec comes from the codec ID, not the file name.
    let mkv = ffmpeg(
        dir.path(),
        "clip.mkv",
        &["testsrc=size=320x240:rate=25:duration=1"],
        &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    );
    let details = try_read_details(&mkv).expect("details");
    assert_matches_ffprobe(&mkv, &details);
}

#[test]
fn truncated_and_corrupt_files_give_a_reason_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = ffmpeg(
        dir.path(),
        "whole.mp4",
        &["testsrc=size=320x240:rate=25:duration=3"],
        &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
    );
    let bytes = std::fs::read(&whole).expect("read");
    // Cut mid-mdat, as a recording that crashed or a copy that stopped: no moov.
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    assert!(
        matches!(try_read_details(&cut), Err(DetailsError::NoIndex)),
        "{:?}",
        try_read_details(&cut)
    );
    assert!(reelup_core::media::read_details(&cut).is_none());

    // Every cut and every flipped byte of the index ends in details or an error, never a
    // panic out of the reader (the test would fail) or an endless read.
    let moov_at = bytes.windows(4).position(|w| w == b"moov").expect("a moov") - 4;
    for end in (moov_at..bytes.len()).step_by(97) {
        std::fs::write(&cut, &bytes[..end]).expect("write");
        let _ = try_read_details(&cut);
    }
    for at in (moov_at..bytes.len()).step_by(13) {
        let mut hurt = bytes.clone();
        hurt[at] ^= 0xA5;
        std::fs::write(&cut, &hurt).expect("write");
        let _ = try_read_details(&cut);
    }

    // A WebM cut before its tracks, and one with a flipped byte in its header.
    let webm = ffmpeg(
        dir.path(),
        "clip.webm",
        &["testsrc=size=320x240:rate=25:duration=1"],
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
    );
    let bytes = std::fs::read(&webm).expect("read");
    let cut = dir.path().join("cut.webm");
    std::fs::write(&cut, &bytes[..40]).expect("write");
    assert!(matches!(
        try_read_details(&cut),
        Err(DetailsError::Matroska(_))
    ));
    for at in (0..bytes.len().min(4096)).step_by(7) {
        let mut hurt = bytes.clone();
        hurt[at] ^= 0xA5;
        std::fs::write(&cut, &hurt).expect("write");
        let _ = try_read_details(&cut);
    }
}
