//! Inputs the fuzzers (scripts/fuzz.sh) found that broke a parser, kept as regression
//! tests: each must end in an answer or an error that holds the parser's promises.

use std::io::Cursor;
use std::path::Path;

use reelup_core::media::details::details_from;
use reelup_core::media::faststart::scan;

/// An `stco` offset near `u64::MAX`: moving it past the new index overflowed (a panic in
/// debug builds, a wrapped offset in release). Now the re-layout refuses the file.
#[test]
fn a_chunk_offset_near_the_top_of_u64_is_refused_not_wrapped() {
    let data = include_bytes!("data/fuzz-mp4-offset-overflow.bin");
    let found = scan(&mut Cursor::new(&data[..]), data.len() as u64).expect("the boxes scan");
    let laid = found.relayout(Path::new("fuzz.mp4"), &mut Cursor::new(&data[..]));
    assert!(laid.is_err(), "an offset out of range is refused");
}

/// A track whose timescale and sample durations give a rate under 0.0005 fps: it was
/// reported as 0 fps. A rate that rounds to nothing is no rate.
#[test]
fn a_frame_rate_that_rounds_to_zero_is_no_frame_rate() {
    let data = include_bytes!("data/fuzz-details-tiny-frame-rate.bin");
    if let Ok(d) = details_from(&mut Cursor::new(&data[..])) {
        assert!(
            d.frame_rate.is_none_or(|r| r.is_finite() && r > 0.0),
            "{:?}",
            d.frame_rate
        );
    }
}
