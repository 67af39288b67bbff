//! Figures for the queue with a long history. Prints figures; asserts nothing.
//!
//! A creator's queue keeps every upload it ever made (History). This times a batch of new
//! files going through the queue store on top of that history: adding them (each is
//! matched with earlier uploads of the same path) and claiming each once (what the
//! scheduler does per file). It runs twice in one process: on today's schema, and on the
//! same queue with schema v7's two indexes dropped, which is how every queue was before v7.
//! Last, it times reading every item, which is what the app's History asks for at start.
//!
//! ```sh
//! cargo run --release -p reelup-core --example queue_bench
//! QUEUE_BENCH_HISTORY=100000 QUEUE_BENCH_FILES=1000 \
//!   cargo run --release -p reelup-core --example queue_bench
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reelup_core::Fingerprint;
use reelup_core::queue::store::{Claim, NewItem, QueueStore, Target};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A queue file holding `history` finished uploads, written straight into the table (the
/// store's own API would take minutes to finish that many).
fn queue_with_history(path: &Path, history: usize) {
    drop(QueueStore::open(path).expect("open the queue"));
    let mut conn = rusqlite::Connection::open(path).expect("open sqlite");
    let tx = conn.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO items (path, size, mtime_ns, sample_sha256, endpoint, cdn, state, \
                 key, url, created_at, updated_at, finished_at) \
                 VALUES (?1, ?2, 1, 'sample', 'http://127.0.0.1:7300', 'http://127.0.0.1:7300/cdn', \
                 'done', ?3, ?4, 1, 1, 1)",
            )
            .expect("prepare");
        for i in 0..history {
            let name = format!("/videos/2025/take {i}.mp4");
            let key = format!("u/take-{i}.mp4");
            insert
                .execute(rusqlite::params![
                    name,
                    5_000_000 + i as i64,
                    key,
                    format!("http://127.0.0.1:7300/cdn/{key}")
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// Adds `files` new files in one batch, claims each once, then lists every item: the time
/// of each.
fn batch(path: &Path, files: usize) -> (Duration, Duration, Duration) {
    let mut store = QueueStore::open(path).expect("open the queue");
    let target = Target::new("http://127.0.0.1:7300", "http://127.0.0.1:7300/cdn");
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| PathBuf::from(format!("/videos/new/clip {i}.mp4")))
        .collect();
    let fingerprints: Vec<Fingerprint> = (0..files)
        .map(|i| Fingerprint {
            size: 3_000_000 + i as u64,
            mtime_ns: 2,
            sample_sha256: format!("{i:064x}"),
        })
        .collect();
    let new: Vec<NewItem<'_>> = paths
        .iter()
        .zip(&fingerprints)
        .map(|(path, fingerprint)| NewItem {
            path,
            fingerprint,
            details: None,
            target: &target,
        })
        .collect();
    let started = Instant::now();
    let ids = store.add_many(&new).expect("add");
    let added = started.elapsed();
    let started = Instant::now();
    let lease = Duration::from_secs(600);
    for _ in 0..files {
        store
            .claim("bench:1", lease, &Claim::default())
            .expect("claim")
            .expect("an item to claim");
    }
    let claimed = started.elapsed();
    assert_eq!(ids.len(), files);
    let started = Instant::now();
    let all = store.list().expect("list");
    let listed = started.elapsed();
    assert!(all.len() >= files);
    (added, claimed, listed)
}

fn main() {
    let history: usize = env_or("QUEUE_BENCH_HISTORY", 100_000);
    let files: usize = env_or("QUEUE_BENCH_FILES", 1_000);
    let dir = tempfile::tempdir().expect("tempdir");

    let indexed = dir.path().join("v7.sqlite3");
    queue_with_history(&indexed, history);
    let unindexed = dir.path().join("before-v7.sqlite3");
    std::fs::copy(&indexed, &unindexed).expect("copy");
    rusqlite::Connection::open(&unindexed)
        .expect("open sqlite")
        .execute_batch("DROP INDEX items_state; DROP INDEX items_path;")
        .expect("drop the v7 indexes");

    println!("{files} files added and claimed on a queue with {history} finished uploads");
    println!("| queue | add (one transaction) | {files} claims | add + claims | list every item |");
    println!("|---|---|---|---|---|");
    for (name, path) in [("v7 (indexed)", &indexed), ("before v7", &unindexed)] {
        let (added, claimed, listed) = batch(path, files);
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.3} s | {:.3} s |",
            added.as_secs_f64(),
            claimed.as_secs_f64(),
            (added + claimed).as_secs_f64(),
            listed.as_secs_f64()
        );
    }
}
