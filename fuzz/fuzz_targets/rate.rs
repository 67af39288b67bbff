//! Bandwidth limits as people type them (`--limit-rate 5MB`, the app's settings).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_core::BandwidthLimit;

fn parse_rate(text: &str) -> Result<u64, String> {
    BandwidthLimit::parse_rate(text)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rate(text) {
        Ok(n) => {
            assert!(n >= 1, "{text:?} gave {n}");
            assert_eq!(parse_rate(&n.to_string()), Ok(n));
            assert_eq!(parse_rate(&format!("{n} B/s")), Ok(n));
            // Whole numbers are exact.
            let t = text.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(t.parse::<u64>(), Ok(n));
            }
        }
        Err(message) => assert!(!message.trim().is_empty()),
    }
});
