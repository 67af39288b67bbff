//! MP4/MOV box structure as it comes in a video file (faststart): the top-level walk, the
//! index position and the re-layout. Whatever the bytes, it ends with an answer or an
//! error; and a re-layout is itself a valid file with its index first.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use reelup_core::engine::Segment;
use reelup_core::media::faststart::{IndexPosition, scan};

fuzz_target!(|data: &[u8]| {
    let Ok(found) = scan(&mut Cursor::new(data), data.len() as u64) else {
        return;
    };
    let Ok(Some(source)) = found.relayout(Path::new("fuzz.mp4"), &mut Cursor::new(data)) else {
        return;
    };
    assert_eq!(found.position, IndexPosition::MoovAfterMdat);
    let mut laid = Vec::with_capacity(source.len() as usize);
    for seg in source.segments() {
        match seg {
            Segment::File { start, len } => {
                laid.extend_from_slice(&data[*start as usize..(*start + *len) as usize])
            }
            Segment::Memory(bytes) => laid.extend_from_slice(bytes),
        }
    }
    assert_eq!(laid.len() as u64, source.len());
    let again = scan(&mut Cursor::new(&laid), laid.len() as u64).expect("a re-laid file reads");
    assert_eq!(again.position, IndexPosition::MoovFirst);
});
