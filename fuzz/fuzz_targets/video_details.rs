//! Video details from whatever a file holds (MP4/MOV boxes, Matroska/WebM elements): read
//! at queue time from any file a user drops or a watched folder receives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_core::media::details::{DetailsError, details_from};

fuzz_target!(|data: &[u8]| {
    match details_from(&mut std::io::Cursor::new(data)) {
        Ok(d) => {
            assert!(!d.video_codec.is_empty());
            assert!(d.frame_rate.is_none_or(|r| r.is_finite() && r > 0.0));
            // What is sent as metadata is header-safe.
            for (_, value) in reelup_core::media::details_metadata(&d) {
                assert!(value.chars().all(|c| (' '..='~').contains(&c)), "{value:?}");
            }
        }
        // The parsers themselves must not panic; the guard is a second line.
        Err(DetailsError::Panicked) => panic!("a parser panicked"),
        Err(_) => {}
    }
});
