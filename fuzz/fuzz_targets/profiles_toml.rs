//! The profile file (`config.toml`) is text the user edits by hand: any text must load or
//! fail with a line inside the file, and what loads must be valid.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use reelup_core::config::{ConfigError, ProfileConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.matches('\n').count() + 1;
    match ProfileConfig::parse(Path::new("/fuzz/config.toml"), text) {
        Ok(config) => {
            for p in &config.profiles {
                assert_eq!(p.validate(), Ok(()), "{p:?} loaded but is invalid");
            }
            if let Some(d) = &config.default {
                assert!(config.get(d).is_some(), "default {d:?} names no profile");
            }
        }
        Err(ConfigError::Invalid { line, message, .. }) => {
            assert!(
                (1..=lines).contains(&line),
                "line {line} of {lines}: {message}"
            );
            assert!(!message.trim().is_empty());
        }
        Err(other) => panic!("parsing text gave a non-parse error: {other:?}"),
    }
});
