//! What the tray and the notifications say, worked out from the queue without touching a
//! window, so it is tested as plain functions.

use std::collections::HashMap;

use reelup_core::queue::store::ItemState;

/// The tray's look: which icon, and the status line at the top of its menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayStatus {
    pub icon: TrayIcon,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayIcon {
    Idle,
    /// 0-3: a quarter, half, three quarters, nearly done.
    Uploading(u8),
    Paused,
    Error,
}

/// One unfinished item as the tray counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub state: ItemState,
    pub sent: u64,
    pub total: u64,
    pub bytes_per_sec: u64,
    /// Its requests are waiting to try again (the server cannot be reached, or had
    /// trouble).
    pub waiting: bool,
}

/// "Uploading 3 - 42% - 12 MB/s"; paused and failed items say so when nothing uploads.
pub fn tray_status(items: &HashMap<i64, Counted>) -> TrayStatus {
    let active: Vec<&Counted> = items.values().filter(|c| c.state.is_active()).collect();
    let failed = items
        .values()
        .filter(|c| c.state == ItemState::Failed)
        .count();
    let paused = items
        .values()
        .filter(|c| c.state == ItemState::Paused)
        .count();
    if !active.is_empty() {
        let (sent, total) = active.iter().fold((0u64, 0u64), |(s, t), c| {
            (s + c.sent.min(c.total), t + c.total)
        });
        let rate: u64 = active.iter().map(|c| c.bytes_per_sec).sum();
        let pct = (sent * 100).checked_div(total).unwrap_or(0).min(100);
        let waiting = active.iter().filter(|c| c.waiting).count();
        let mut text = if waiting == active.len() {
            // Nothing moves: say what it waits for, not a speed.
            format!(
                "Waiting for the server - {} upload{} at {pct}%",
                waiting,
                plural(waiting)
            )
        } else {
            format!("Uploading {} - {pct}%", active.len())
        };
        if rate > 0 {
            text.push_str(&format!(" - {}/s", human_bytes(rate)));
        }
        if waiting > 0 && waiting < active.len() {
            text.push_str(&format!(" ({waiting} waiting for the server)"));
        }
        if failed > 0 {
            text.push_str(&format!(" ({failed} failed)"));
        }
        let stage = (pct / 25).min(3) as u8;
        return TrayStatus {
            icon: TrayIcon::Uploading(stage),
            text,
        };
    }
    if failed > 0 {
        return TrayStatus {
            icon: TrayIcon::Error,
            text: format!("{failed} upload{} failed", plural(failed)),
        };
    }
    if paused > 0 {
        return TrayStatus {
            icon: TrayIcon::Paused,
            text: format!("{paused} upload{} paused", plural(paused)),
        };
    }
    TrayStatus {
        icon: TrayIcon::Idle,
        text: "All uploads done".into(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Decimal units, as file managers and browsers show sizes and speeds.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// Outcomes gathered while uploads run; one notification says how the batch went once
/// nothing is left running, instead of one per file.
#[derive(Debug, Default)]
pub struct Batch {
    done: Vec<String>,
    failed: Vec<String>,
}

impl Batch {
    pub fn record(&mut self, name: &str, state: ItemState) {
        match state {
            ItemState::Done => self.done.push(name.to_owned()),
            ItemState::Failed => self.failed.push(name.to_owned()),
            _ => {}
        }
    }

    /// The notification (title, body) for the batch, once `still_running` is 0; the
    /// batch starts afresh after it.
    pub fn finish(&mut self, still_running: usize) -> Option<(String, String)> {
        if still_running > 0 || (self.done.is_empty() && self.failed.is_empty()) {
            return None;
        }
        let (done, failed) = (
            std::mem::take(&mut self.done),
            std::mem::take(&mut self.failed),
        );
        let title = match (done.len(), failed.len()) {
            (d, 0) => format!("{d} upload{} done", plural(d)),
            (0, f) => format!("{f} upload{} failed", plural(f)),
            (d, f) => format!("{d} done, {f} failed"),
        };
        let body = match (done.as_slice(), failed.as_slice()) {
            ([one], []) => format!("{one} is ready to stream; its link is in History."),
            (_, []) => "Their streaming links are in History.".to_owned(),
            ([], [one]) => format!("{one} did not upload; open Reelup to retry."),
            _ => "Open Reelup to retry the failed ones.".to_owned(),
        };
        Some((title, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(state: ItemState, sent: u64, total: u64, bps: u64) -> Counted {
        Counted {
            state,
            sent,
            total,
            bytes_per_sec: bps,
            waiting: false,
        }
    }

    #[test]
    fn tray_text_follows_progress() {
        let mut items = HashMap::new();
        assert_eq!(tray_status(&items).icon, TrayIcon::Idle);
        items.insert(1, counted(ItemState::Uploading, 30, 100, 6_000_000));
        items.insert(2, counted(ItemState::Uploading, 12, 100, 6_000_000));
        items.insert(3, counted(ItemState::Queued, 0, 100, 0));
        let s = tray_status(&items);
        assert_eq!(s.text, "Uploading 3 - 14% - 12 MB/s");
        assert_eq!(s.icon, TrayIcon::Uploading(0));
        items.insert(3, counted(ItemState::Uploading, 100, 100, 0));
        assert_eq!(tray_status(&items).icon, TrayIcon::Uploading(1));
        items.clear();
        items.insert(4, counted(ItemState::Paused, 1, 100, 0));
        assert_eq!(tray_status(&items).icon, TrayIcon::Paused);
        items.insert(5, counted(ItemState::Failed, 1, 100, 0));
        let s = tray_status(&items);
        assert_eq!(
            (s.icon, s.text.as_str()),
            (TrayIcon::Error, "1 upload failed")
        );
    }

    #[test]
    fn the_tray_says_when_uploads_wait_for_the_server() {
        let mut items = HashMap::new();
        items.insert(1, counted(ItemState::Uploading, 50, 100, 4_000_000));
        items.insert(
            2,
            Counted {
                waiting: true,
                ..counted(ItemState::Uploading, 30, 100, 0)
            },
        );
        assert_eq!(
            tray_status(&items).text,
            "Uploading 2 - 40% - 4.0 MB/s (1 waiting for the server)"
        );
        items.insert(
            1,
            Counted {
                waiting: true,
                ..counted(ItemState::Uploading, 50, 100, 0)
            },
        );
        assert_eq!(
            tray_status(&items).text,
            "Waiting for the server - 2 uploads at 40%"
        );
    }

    #[test]
    fn one_notification_per_batch() {
        let mut b = Batch::default();
        for i in 0..50 {
            b.record(&format!("clip{i}.mp4"), ItemState::Done);
            assert_eq!(b.finish(50 - i - 1).is_some(), i == 49);
        }
        assert_eq!(b.finish(0), None, "nothing new, nothing to say");
        b.record("a.mp4", ItemState::Done);
        b.record("b.mp4", ItemState::Failed);
        let (title, body) = b.finish(0).expect("summary");
        assert_eq!(title, "1 done, 1 failed");
        assert!(body.contains("retry"));
        b.record("only.mov", ItemState::Done);
        assert_eq!(
            b.finish(0),
            Some((
                "1 upload done".into(),
                "only.mov is ready to stream; its link is in History.".into()
            ))
        );
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(12_000_000), "12 MB");
        assert_eq!(human_bytes(4_200_000_000), "4.2 GB");
    }
}
