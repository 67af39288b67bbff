//! Figures for watch folders. Prints figures; asserts nothing.
//!
//! 1. Latency: from a file's last write to its Ready event, with the default 3 s stability
//!    window (the target is at most the window plus 1 s).
//! 2. Idle cost: CPU used by this process while a folder of 10,000 small videos is watched
//!    and nothing happens, once the start-up scan has settled; next to notify's PollWatcher
//!    (the polling approach many watchers take) on the same folder for the same time.
//!
//! ```sh
//! cargo run --release -p reelup-core --example watch_bench
//! WATCH_BENCH_FILES=10000 WATCH_BENCH_IDLE_SECS=20 WATCH_BENCH_SAMPLES=5 \
//!   WATCH_BENCH_POLL_MS=2000 cargo run --release -p reelup-core --example watch_bench
//! ```
//!
//! CPU time is read from /proc/self/stat (user + system, in clock ticks), so this runs on
//! Linux only.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher;
use reelup_core::watch::{DEFAULT_STABLE_FOR, FolderWatcher, WatchEvent, WatchSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let samples: usize = env_or("WATCH_BENCH_SAMPLES", 5);
    let files: usize = env_or("WATCH_BENCH_FILES", 10_000);
    let idle = Duration::from_secs(env_or("WATCH_BENCH_IDLE_SECS", 20));
    let poll = Duration::from_millis(env_or("WATCH_BENCH_POLL_MS", 2_000));

    println!("watch_bench: reelup-core watch folders (notify RecommendedWatcher = inotify here)");
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    latency(samples).await;
    println!();
    idle_cost(files, idle, poll).await;
}

async fn latency(samples: usize) {
    let window = DEFAULT_STABLE_FOR;
    println!("1. last write -> Ready, stable_for = {window:?}, {samples} samples");
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, mut events) = mpsc::channel(64);
    let spec = WatchSpec::new(dir.path());
    let watcher =
        FolderWatcher::start(vec![spec], tx, CancellationToken::new()).expect("start watching");
    wait_watching(&mut events).await;

    let mut latencies = Vec::new();
    for n in 0..samples {
        let path = dir.path().join(format!("sample-{n}.mp4"));
        // A copy in progress: 4 MiB in 1 MiB writes, 100 ms apart.
        let last_write = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                let mut file = std::fs::File::create(&path).expect("create");
                for i in 0..4 {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    file.write_all(&vec![i as u8; 1 << 20]).expect("write");
                }
                Instant::now()
            }
        })
        .await
        .expect("writer");
        loop {
            match events.recv().await.expect("watcher stopped") {
                WatchEvent::Ready { path: ready, .. } if ready == path => break,
                _ => {}
            }
        }
        let latency = last_write.elapsed();
        println!("   sample {}: {:.3} s", n + 1, latency.as_secs_f64());
        latencies.push(latency);
    }
    latencies.sort();
    if let (Some(min), Some(max)) = (latencies.first(), latencies.last()) {
        let median = latencies[latencies.len() / 2];
        println!(
            "   min {:.3} s, median {:.3} s, max {:.3} s (window {:.1} s; max over the window {:.3} s)",
            min.as_secs_f64(),
            median.as_secs_f64(),
            max.as_secs_f64(),
            window.as_secs_f64(),
            max.saturating_sub(window).as_secs_f64()
        );
    }
    watcher.shutdown().await;
}

async fn idle_cost(files: usize, idle: Duration, poll: Duration) {
    println!("2. idle CPU, a folder of {files} files of 1 KiB (.mp4), {idle:?} idle each");
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Instant::now();
    for n in 0..files {
        std::fs::write(dir.path().join(format!("clip-{n:05}.mp4")), [0u8; 1024]).expect("write");
    }
    println!("   made the files in {:.2} s", made.elapsed().as_secs_f64());
    let ticks = clock_ticks_per_second();

    // Reelup: inotify, plus a stat of the root every 2 s.
    let (tx, mut events) = mpsc::channel(1024);
    let started = Instant::now();
    let cpu_at_start = cpu_seconds(ticks);
    let watcher = FolderWatcher::start(
        vec![WatchSpec::new(dir.path())],
        tx,
        CancellationToken::new(),
    )
    .expect("start watching");
    let mut ready = 0;
    while ready < files {
        if let WatchEvent::Ready { .. } = events.recv().await.expect("watcher stopped") {
            ready += 1;
        }
    }
    println!(
        "   reelup: start-up scan settled ({ready} Ready) in {:.2} s, {:.2} CPU s (includes the {:?} window); RSS {}",
        started.elapsed().as_secs_f64(),
        cpu_seconds(ticks) - cpu_at_start,
        DEFAULT_STABLE_FOR,
        rss()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reelup = measure(idle, ticks).await;
    let extra = drain(&mut events);
    watcher.shutdown().await;

    // The peer: notify's PollWatcher, which re-reads the metadata of the whole tree.
    let polls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut poller = notify::PollWatcher::new(
        {
            let polls = Arc::clone(&polls);
            move |_event: notify::Result<notify::Event>| {
                polls.fetch_add(1, Ordering::Relaxed);
            }
        },
        notify::Config::default().with_poll_interval(poll),
    )
    .expect("poll watcher");
    poller
        .watch(dir.path(), notify::RecursiveMode::Recursive)
        .expect("poll watch");
    println!(
        "   PollWatcher ({poll:?} interval): initial scan in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let polled = measure(idle, ticks).await;
    drop(poller);

    println!();
    let secs = idle.as_secs_f64();
    println!(
        "   idle {secs:.0} s           CPU s (user+sys)  % of one core   CPU s (thread ns counters)"
    );
    println!(
        "   reelup (inotify)     {:>10.3}       {:>8.3} %       {:>10.6}   ({extra} events while idle)",
        reelup.0,
        100.0 * reelup.0 / secs,
        reelup.1
    );
    println!(
        "   PollWatcher {:>4} ms  {:>10.3}       {:>8.3} %       {:>10.6}",
        poll.as_millis(),
        polled.0,
        100.0 * polled.0 / secs,
        polled.1
    );
    println!(
        "   (user+sys from /proc/self/stat at {ticks} ticks/s, resolution {:.3} s; thread counters from /proc/self/task/*/schedstat)",
        1.0 / ticks as f64
    );
}

/// CPU seconds this process used over `idle` of doing nothing: from the process's tick
/// counters (every thread, ended ones too), and from the nanosecond counters of the threads
/// alive at both ends.
async fn measure(idle: Duration, ticks: u64) -> (f64, f64) {
    let before = (cpu_seconds(ticks), threads_cpu_ns());
    tokio::time::sleep(idle).await;
    let after = (cpu_seconds(ticks), threads_cpu_ns());
    let precise = after
        .1
        .iter()
        .filter_map(|(tid, ns)| {
            before
                .1
                .iter()
                .find(|(t, _)| t == tid)
                .map(|(_, b)| ns.saturating_sub(*b))
        })
        .sum::<u64>();
    (after.0 - before.0, precise as f64 / 1e9)
}

/// (thread id, nanoseconds on a CPU) for each thread, from /proc/self/task/*/schedstat.
fn threads_cpu_ns() -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = stat.split_whitespace().next()?.parse().ok()?;
            Some((task.file_name().to_string_lossy().into_owned(), ns))
        })
        .collect()
}

fn drain(events: &mut mpsc::Receiver<WatchEvent>) -> usize {
    let mut n = 0;
    while events.try_recv().is_ok() {
        n += 1;
    }
    n
}

async fn wait_watching(events: &mut mpsc::Receiver<WatchEvent>) {
    while let Some(event) = events.recv().await {
        if let WatchEvent::Folder { state, .. } = event {
            assert_eq!(state, reelup_core::watch::FolderState::Watching);
            return;
        }
    }
}

/// User + system CPU time of the whole process, threads that ended included.
fn cpu_seconds(ticks: u64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux only)");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    (utime + stime) as f64 / ticks as f64
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}
