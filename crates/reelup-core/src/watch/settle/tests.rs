//! Settling driven with instants the tests choose: a small simulation of one file on a disk
//! and of the watcher's loop (a round of looks whenever [`Settling::next_look`] says), so the
//! stability window is checked to the millisecond without waiting for it.

use std::time::UNIX_EPOCH;

use super::*;

const WINDOW: Duration = Duration::from_millis(400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One file, what the disk says about it, and what the settling logic made of it.
struct Sim {
    settling: Settling,
    t0: Instant,
    now: Instant,
    path: PathBuf,
    /// The file's size and mtime on the simulated disk; `None` while it does not exist.
    disk: Option<Stamp>,
    opens: bool,
    refusal: Option<String>,
    /// Each report, with when it was made and the file's stamp then.
    ready: Vec<(Instant, Stamp)>,
    refused: Vec<Instant>,
    unopenable: usize,
    rounds: usize,
}

impl Sim {
    fn new() -> Self {
        // Any instant will do as the origin: nothing below waits or reads the clock again.
        let t0 = Instant::now();
        Self {
            settling: Settling::new(t0),
            t0,
            now: t0,
            path: PathBuf::from("/w/clip.mp4"),
            disk: None,
            opens: true,
            refusal: None,
            ready: Vec::new(),
            refused: Vec::new(),
            unopenable: 0,
            rounds: 0,
        }
    }

    fn at(&self, n: u64) -> Instant {
        self.t0 + ms(n)
    }

    /// Runs every round of looks due up to `n` ms, as the watcher's loop would.
    fn run_until(&mut self, n: u64) {
        let until = self.at(n);
        while let Some(next) = self.settling.next_look() {
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            self.round();
        }
        self.now = until;
    }

    /// One round: look at every candidate (the disk answers), then let settling decide.
    fn round(&mut self) {
        self.rounds += 1;
        let seen = self
            .settling
            .looks(self.now)
            .into_iter()
            .map(|look| {
                let observation = Observation {
                    stamp: self.disk,
                    opens: look.wants_open(self.disk).then_some(self.opens),
                    refusal: self.refusal.clone(),
                };
                (look.path, observation)
            })
            .collect();
        let settled = self.settling.observe(seen, self.now, self.now);
        for _ in &settled.ready {
            let disk = self.disk.expect("reported a file that is not on disk");
            self.ready.push((self.now, disk));
        }
        self.refused
            .extend(settled.refused.iter().map(|_| self.now));
        self.unopenable += settled.unopenable.len();
    }

    /// The disk's stamp for the file after a write at `n` ms leaves it `size` bytes.
    fn set_disk(&mut self, n: u64, size: u64) -> Stamp {
        let stamp = Stamp {
            size,
            mtime: Some(UNIX_EPOCH + ms(n)),
        };
        self.disk = Some(stamp);
        stamp
    }

    /// The file is written at `n` ms to `size` bytes; `told` if a write event says so.
    fn write(&mut self, n: u64, size: u64, told: bool) {
        self.run_until(n);
        self.set_disk(n, size);
        if told {
            self.settling
                .touched(0, WINDOW, self.path.clone(), self.now);
        }
    }

    /// The file, written at `n` ms to `size` bytes, is found by a walk then (as at start-up,
    /// or where no event tells of it).
    fn found(&mut self, n: u64, size: u64) {
        self.run_until(n);
        let stamp = self.set_disk(n, size);
        self.settling
            .found(0, WINDOW, self.path.clone(), stamp, self.now);
    }
}

#[test]
fn a_file_is_reported_once_its_window_has_passed_and_not_before() {
    let mut sim = Sim::new();
    sim.found(0, 100);
    sim.run_until(399);
    assert!(sim.ready.is_empty(), "reported inside the window");
    assert!(sim.rounds > 1, "looked at during the window");
    sim.run_until(10_000);
    assert_eq!(sim.ready.len(), 1, "{:?}", sim.ready);
    let at = sim.ready[0].0;
    assert!(
        at >= sim.at(400) && at <= sim.at(400) + tick_for(WINDOW),
        "reported {:?} after first sight",
        at - sim.t0
    );
    assert_eq!(sim.settling.next_look(), None, "nothing left to settle");
}

#[test]
fn a_file_that_keeps_growing_is_reported_once_after_it_stops_at_its_final_size() {
    // Writes a quarter-window apart for five windows: each restarts the window.
    for told in [true, false] {
        let mut sim = Sim::new();
        let writes: Vec<u64> = (0..20).map(|i| i * 100).collect();
        for (i, &t) in writes.iter().enumerate() {
            let size = (i as u64 + 1) * 65_536;
            if i == 0 && !told {
                // With no events at all, only a walk finds the new file.
                sim.found(t, size);
            } else {
                sim.write(t, size, told);
            }
        }
        let last = *writes.last().expect("writes");
        sim.run_until(last + 20 * WINDOW.as_millis() as u64);

        assert_eq!(sim.ready.len(), 1, "told={told}: {:?}", sim.ready);
        let (at, stamp) = sim.ready[0];
        assert!(
            at >= sim.at(last) + WINDOW,
            "told={told}: reported {:?} after the last write, inside the window",
            at - sim.at(last)
        );
        assert!(
            at <= sim.at(last) + WINDOW + 2 * tick_for(WINDOW),
            "told={told}: reported {:?} after the last write",
            at - sim.at(last)
        );
        assert_eq!(
            stamp.size,
            writes.len() as u64 * 65_536,
            "at a partial size"
        );
    }
}

#[test]
fn a_write_event_during_a_look_restarts_the_window() {
    let mut sim = Sim::new();
    sim.found(0, 100);
    sim.run_until(300);
    // The looks of a round start at 500 ms; a write event (same stamp as yet) lands while
    // they are under way, before the round is taken in.
    let started = sim.at(500);
    let seen = sim
        .settling
        .looks(started)
        .into_iter()
        .map(|look| {
            let opens = look.wants_open(sim.disk).then_some(true);
            assert_eq!(opens, Some(true), "due and unchanged, so opened");
            let observation = Observation {
                stamp: sim.disk,
                opens,
                refusal: None,
            };
            (look.path, observation)
        })
        .collect();
    sim.settling
        .touched(0, WINDOW, sim.path.clone(), sim.at(501));
    let settled = sim.settling.observe(seen, started, sim.at(502));
    assert!(settled.ready.is_empty(), "{settled:?}");
    assert_eq!(
        sim.settling.next_look(),
        Some(sim.at(502) + tick_for(WINDOW))
    );
}

#[test]
fn a_file_that_will_not_open_is_not_reported_and_said_once_until_it_opens() {
    let mut sim = Sim::new();
    sim.opens = false;
    sim.found(0, 100);
    sim.run_until(5_000);
    assert!(sim.ready.is_empty(), "reported a file that would not open");
    assert_eq!(sim.unopenable, 1, "said once");
    assert!(sim.settling.next_look().is_some(), "still tried");

    sim.opens = true;
    sim.run_until(5_000 + tick_for(WINDOW).as_millis() as u64);
    assert_eq!(sim.ready.len(), 1, "reported once it opens");
}

#[test]
fn an_unchanged_file_is_reported_once_and_a_changed_one_again() {
    let mut sim = Sim::new();
    sim.write(0, 100, true);
    sim.run_until(1_000);
    assert_eq!(sim.ready.len(), 1);

    // A chmod or a read: an event, no change.
    sim.settling
        .touched(0, WINDOW, sim.path.clone(), sim.at(1_000));
    sim.run_until(3_000);
    assert_eq!(sim.ready.len(), 1, "reported unchanged: {:?}", sim.ready);
    assert_eq!(
        sim.settling.next_look(),
        None,
        "an unchanged file is let go"
    );

    sim.write(3_000, 104, true);
    sim.run_until(5_000);
    assert_eq!(sim.ready.len(), 2, "a changed file is reported again");
    assert!(sim.ready[1].0 >= sim.at(3_000) + WINDOW);
}

#[test]
fn a_link_is_refused_at_first_sight_once() {
    let mut sim = Sim::new();
    sim.refusal = Some("not uploaded: it is a symbolic link".into());
    sim.write(0, 40, true);
    sim.run_until(2_000);
    assert_eq!(sim.refused, [sim.t0], "refused at the first look, once");
    assert!(sim.ready.is_empty());

    // Touched again, unchanged: nothing more to say.
    sim.settling
        .touched(0, WINDOW, sim.path.clone(), sim.at(2_000));
    sim.run_until(4_000);
    assert_eq!(sim.refused.len(), 1);
}

#[test]
fn a_file_that_goes_away_is_forgotten() {
    let mut sim = Sim::new();
    sim.write(0, 100, true);
    sim.run_until(200);
    sim.disk = None;
    sim.run_until(500);
    assert_eq!(sim.settling.next_look(), None);
    assert!(sim.ready.is_empty());
}

#[test]
fn subtrees_are_removed_and_neighbours_kept() {
    let mut map = BTreeMap::new();
    for p in [
        "/w/a",
        "/w/a/x.mp4",
        "/w/a/b/y.mp4",
        "/w/a-b.mp4",
        "/w/ab.mp4",
        "/w/b.mp4",
    ] {
        map.insert(PathBuf::from(p), ());
    }
    remove_subtree(&mut map, Path::new("/w/a"));
    let left: Vec<_> = map.keys().map(|p| p.to_str().unwrap_or_default()).collect();
    assert_eq!(left, ["/w/a-b.mp4", "/w/ab.mp4", "/w/b.mp4"]);
}
