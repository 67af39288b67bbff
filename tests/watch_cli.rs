//! `reelup watch` as a process against `reelup-server --local`: files written into a real
//! folder go up once they are complete, exactly once, across restarts and renames.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reelup_tests::{LocalServer, fetch_sha256, random_file, reelup_command, sha256_hex};

struct Env {
    server: LocalServer,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Self {
            server: LocalServer::start(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(env.inbox()).expect("inbox");
        let out = env
            .cmd(&[
                "profile",
                "add",
                "local",
                "--endpoint",
                &env.server.endpoint,
                "--cdn",
                &env.server.cdn,
            ])
            .output()
            .expect("profile add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = reelup_command(
            &self.dir.path().join("config"),
            &self.dir.path().join("data"),
        );
        cmd.args(args).env("REELUP_TOKEN", &self.server.token);
        cmd
    }

    fn watch(&self, extra: &[&str]) -> Watch {
        let inbox = self.inbox();
        let mut args = vec!["watch", inbox.to_str().expect("utf8")];
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reelup watch");
        let (tx, done) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, stderr_lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = etx.send(line);
            }
        });
        Watch {
            child,
            done,
            stderr: stderr_lines,
            log: Vec::new(),
        }
    }

    /// Every item in the queue, as `reelup queue --json` lists it.
    fn queue(&self) -> Vec<serde_json::Value> {
        let out = self.cmd(&["queue", "--json"]).output().expect("queue");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    fn items_for(&self, name: &str) -> Vec<serde_json::Value> {
        self.queue()
            .into_iter()
            .filter(|i| {
                i["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{name}")))
            })
            .collect()
    }
}

struct Watch {
    child: Child,
    /// "path\turl" for each finished upload.
    done: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Watch {
    /// Waits for `n` finished uploads; returns (path, url) pairs.
    fn finished(&mut self, n: usize, within: Duration) -> Vec<(String, String)> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(line) => {
                    let (path, url) = line.split_once('\t').expect("path\\turl");
                    got.push((path.to_owned(), url.to_owned()));
                }
                Err(_) => {
                    self.drain_stderr();
                    panic!(
                        "{} of {n} uploads finished; log:\n{}",
                        got.len(),
                        self.log.join("\n")
                    );
                }
            }
        }
        got
    }

    /// Nothing more finishes within `wait`.
    fn assert_quiet(&mut self, wait: Duration) {
        if let Ok(line) = self.done.recv_timeout(wait) {
            panic!("unexpected upload: {line}");
        }
    }

    fn drain_stderr(&mut self) {
        while let Ok(l) = self.stderr.try_recv() {
            self.log.push(l);
        }
    }

    /// SIGTERM, as a service manager stops it; it must exit cleanly.
    fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        std::thread::sleep(Duration::from_millis(100));
        self.drain_stderr();
        assert!(
            exit.success(),
            "watch exited with {exit}; log:\n{}",
            self.log.join("\n")
        );
        assert!(
            self.log.iter().any(|l| l.contains("stopped")),
            "a clean stop says so: {:?}",
            self.log
        );
        self.log
    }
}

fn write_slowly(path: &Path, chunks: usize, every: Duration) -> String {
    let mut file = std::fs::File::create(path).expect("create");
    let mut all = Vec::new();
    for i in 0..chunks {
        let chunk: Vec<u8> = (0..512 * 1024)
            .map(|j| ((i * 31 + j * 7) % 251) as u8)
            .collect();
        file.write_all(&chunk).expect("write");
        file.flush().expect("flush");
        all.extend_from_slice(&chunk);
        if i + 1 < chunks {
            std::thread::sleep(every);
        }
    }
    sha256_hex(&all)
}

#[test]
fn a_file_written_slowly_goes_up_once_complete_and_identical() {
    let env = Env::new();
    let mut watch = env.watch(&[]);
    // Six writes a second apart: never still for the 3 s stability window until the end.
    let path = env.inbox().join("recording.mp4");
    let started = Instant::now();
    let sha = write_slowly(&path, 7, Duration::from_secs(1));
    let last_write = started.elapsed();
    let done = watch.finished(1, Duration::from_secs(60));
    assert!(
        started.elapsed() >= last_write + Duration::from_secs(3),
        "not before the window"
    );
    assert_eq!(
        fetch_sha256(&done[0].1),
        sha,
        "the whole file, not a half-written one"
    );
    watch.assert_quiet(Duration::from_secs(4));
    let items = env.items_for("recording.mp4");
    assert_eq!(items.len(), 1, "exactly once: {items:?}");
    assert_eq!(items[0]["size"], 7 * 512 * 1024);
    watch.stop();
}

#[test]
fn fifty_files_dropped_at_once_each_go_up_once() {
    let env = Env::new();
    let mut watch = env.watch(&["--stable-secs", "1"]);
    let mut shas = std::collections::HashMap::new();
    for i in 0..50 {
        let (path, sha) = random_file(&env.inbox(), &format!("take {i:02}.mov"), 64 * 1024 + i);
        shas.insert(path.display().to_string(), sha);
    }
    let done = watch.finished(50, Duration::from_secs(120));
    for (path, url) in &done {
        assert_eq!(&fetch_sha256(url), &shas[path], "{path}");
    }
    watch.assert_quiet(Duration::from_secs(3));
    let queue = env.queue();
    assert_eq!(queue.len(), 50, "one item per file");
    assert!(queue.iter().all(|i| i["state"] == "done"));
    watch.stop();
}

#[test]
fn files_added_while_stopped_are_found_and_renames_and_junk_are_not_uploaded() {
    let env = Env::new();
    let inbox = env.inbox();
    let (first, _) = random_file(&inbox, "first.mp4", 200 * 1024);
    let mut watch = env.watch(&["--stable-secs", "1"]);
    watch.finished(1, Duration::from_secs(30));
    watch.stop();

    // While stopped: two new videos, and junk that must never go up.
    let (a, a_sha) = random_file(&inbox, "while stopped a.mp4", 300 * 1024);
    let (b, b_sha) = random_file(&inbox, "while stopped b.webm", 100 * 1024);
    for junk in [
        "download.mp4.part",
        "chrome.mp4.crdownload",
        "edit.mp4~",
        ".hidden.mp4",
        "notes.txt",
    ] {
        random_file(&inbox, junk, 10 * 1024);
    }
    std::fs::create_dir_all(inbox.join(".cache")).expect("dot dir");
    random_file(&inbox.join(".cache"), "thumb.mp4", 10 * 1024);
    // Renamed while stopped: already uploaded, so not again.
    std::fs::rename(&first, inbox.join("first renamed.mp4")).expect("rename");

    let mut watch = env.watch(&["--stable-secs", "1"]);
    let mut done = watch.finished(2, Duration::from_secs(30));
    done.sort();
    assert_eq!(done[0].0, a.display().to_string());
    assert_eq!(done[1].0, b.display().to_string());
    assert_eq!(fetch_sha256(&done[0].1), a_sha);
    assert_eq!(fetch_sha256(&done[1].1), b_sha);

    // Renamed while running: not again either.
    std::fs::rename(&a, inbox.join("a renamed.mp4")).expect("rename");
    watch.assert_quiet(Duration::from_secs(4));
    assert_eq!(env.queue().len(), 3, "{:?}", env.queue());
    watch.stop();

    // And a restart over the same folder queues nothing new.
    let mut watch = env.watch(&["--stable-secs", "1"]);
    watch.assert_quiet(Duration::from_secs(4));
    assert_eq!(env.queue().len(), 3);
    watch.stop();
}

#[test]
fn after_upload_move_puts_the_file_in_uploaded_and_the_queue_follows() {
    let env = Env::new();
    let mut watch = env.watch(&["--stable-secs", "1", "--after-upload", "move"]);
    let (path, sha) = random_file(&env.inbox(), "take.mp4", 150 * 1024);
    let done = watch.finished(1, Duration::from_secs(30));
    assert_eq!(done[0].0, path.display().to_string());
    let moved = env.inbox().join("uploaded/take.mp4");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !moved.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(moved.exists() && !path.exists(), "moved into uploaded/");
    assert_eq!(sha256_hex(&std::fs::read(&moved).expect("read")), sha);
    watch.assert_quiet(Duration::from_secs(3));
    let items = env.queue();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["path"], moved.display().to_string());
    watch.stop();
}

/// A link planted in a watched folder (`clip.mp4 -> credentials`) is not uploaded, whether
/// it is there at start or appears while watching, and `reelup watch` says which file and
/// why; a linked `uploaded/` does not carry finished files elsewhere (the move is refused,
/// said, and the file stays).
#[cfg(unix)]
#[test]
fn links_in_a_watched_folder_are_refused_and_a_linked_uploaded_folder_is_not_used() {
    use std::os::unix::fs::symlink;
    let env = Env::new();
    let inbox = env.inbox();
    let outside = env.dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let secret = outside.join("credentials");
    std::fs::write(
        &secret,
        "[default]\naws_secret_access_key = not-for-upload\n",
    )
    .expect("write");
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");

    symlink(&secret, inbox.join("clip.mp4")).expect("symlink");
    symlink(&elsewhere, inbox.join("uploaded")).expect("symlink");
    let (first, first_sha) = random_file(&inbox, "first.mp4", 100 * 1024);
    let mut watch = env.watch(&["--stable-secs", "1", "--after-upload", "move"]);
    let done = watch.finished(1, Duration::from_secs(30));
    assert_eq!(done[0].0, first.display().to_string());
    assert_eq!(fetch_sha256(&done[0].1), first_sha);

    // Appears while watching.
    symlink(&secret, inbox.join("later.mov")).expect("symlink");
    let (second, _) = random_file(&inbox, "second.mp4", 100 * 1024);
    let done = watch.finished(1, Duration::from_secs(30));
    assert_eq!(done[0].0, second.display().to_string());
    watch.assert_quiet(Duration::from_secs(3));
    let log = watch.stop().join("\n");

    for link in ["clip.mp4", "later.mov"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&inbox.join(link).display().to_string())
                    && l.contains("symbolic link")
                    && l.contains("not uploaded")),
            "{link} is named, with why:\n{log}"
        );
    }
    assert!(
        log.lines().any(
            |l| l.contains(&inbox.join("uploaded").display().to_string())
                && l.contains("symbolic link")
                && l.contains("stays where it is")
        ),
        "the refused move is explained:\n{log}"
    );
    assert!(
        first.exists() && second.exists(),
        "not moved through the link"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);
    let queue = env.queue();
    assert_eq!(queue.len(), 2, "only the real files: {queue:?}");
}
