//! `reelup-server`'s TOML file plus `REELUP_SERVER_*` overrides. Input: override lines
//! `NAME=VALUE` (the prefix is added), a line `===`, then the file; no `===` means no overrides.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_server::config::ServerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (env_lines, text) = input.split_once("\n===\n").unwrap_or(("", input));
    let env: Vec<(String, String)> = env_lines
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (format!("REELUP_SERVER_{k}"), v.to_owned()))
        .collect();
    let lines = text.matches('\n').count() + 1;
    let Err(e) = ServerConfig::parse(text, "server.toml", env.clone()) else {
        return;
    };
    assert!(!e.problems.is_empty(), "an error with no problem in it");
    for p in &e.problems {
        assert!(!p.message.trim().is_empty(), "{p:?}");
        // Every problem points at a line of the file or at the overrides to blame.
        match p.at.strip_prefix("server.toml:") {
            Some(n) => {
                let n: usize = n.parse().expect("a line number");
                assert!((1..=lines).contains(&n), "line {n} of {lines}: {p}");
            }
            None => assert!(
                env.iter().any(|(k, _)| *k == p.at)
                    || p.at
                        .split(", ")
                        .all(|name| env.iter().any(|(k, _)| k == name)),
                "{p:?} names neither a line nor an override given"
            ),
        }
    }
});
