//! The queue's state machine: the states an upload is in, and for each operation on it the
//! states it may start from and the state it leads to. This is the one place that says so;
//! the engine, the CLI, the app and the queue's SQL all ask it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    Queued,
    Uploading,
    Paused,
    Completing,
    Done,
    Failed,
    Canceled,
}

impl ItemState {
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Uploading,
        Self::Paused,
        Self::Completing,
        Self::Done,
        Self::Failed,
        Self::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uploading => "uploading",
            Self::Paused => "paused",
            Self::Completing => "completing",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// The state stored as `s`; None for a name this version does not know (a queue
    /// written by a newer Reelup, or edited by hand). Never guessed: an unknown state read
    /// as `Queued` would upload again what may be done or canceled.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "uploading" => Self::Uploading,
            "paused" => Self::Paused,
            "completing" => Self::Completing,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    /// Waiting for, or in the middle of, an upload.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Uploading | Self::Completing)
    }
}

/// What can be done to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Stops an unfinished upload; its finished parts stay recorded.
    Pause,
    /// Puts a paused or failed upload back in line.
    Resume,
    /// Gives an upload up (and aborts its multipart upload on S3).
    Cancel,
    /// Forgets a finished, failed or canceled upload. An active one is never removed.
    Remove,
    /// Takes an upload to work on: waiting, or left mid-way by a process that is gone.
    Claim,
    /// Begins sending a claimed, queued upload.
    Start,
    /// Adding a file that is already waiting or under way finds that upload, not a second.
    Rejoin,
}

impl Operation {
    pub const ALL: [Self; 7] = [
        Self::Pause,
        Self::Resume,
        Self::Cancel,
        Self::Remove,
        Self::Claim,
        Self::Start,
        Self::Rejoin,
    ];

    /// The states this operation may start from.
    pub const fn starts_from(self) -> &'static [ItemState] {
        use ItemState::*;
        match self {
            Self::Pause | Self::Claim => &[Queued, Uploading, Completing],
            Self::Resume => &[Paused, Failed],
            Self::Cancel => &[Queued, Uploading, Completing, Paused, Failed],
            Self::Remove => &[Done, Failed, Canceled],
            Self::Start => &[Queued],
            Self::Rejoin => &[Queued, Uploading, Paused, Completing],
        }
    }

    /// The state it leads to; None where the item stays as it is (claim, rejoin) or goes
    /// away (remove).
    pub const fn leads_to(self) -> Option<ItemState> {
        match self {
            Self::Pause => Some(ItemState::Paused),
            Self::Resume => Some(ItemState::Queued),
            Self::Cancel => Some(ItemState::Canceled),
            Self::Start => Some(ItemState::Uploading),
            Self::Remove | Self::Claim | Self::Rejoin => None,
        }
    }

    pub fn allows(self, state: ItemState) -> bool {
        self.starts_from().contains(&state)
    }

    /// The start states as an SQL list (`'queued','paused'`), for `state IN (...)`. Made
    /// only of the states' own fixed names, never of input.
    pub fn sql_states(self) -> String {
        self.starts_from()
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ItemState::parse("verifying"), None);
        assert_eq!(ItemState::parse(""), None);
    }

    #[test]
    fn operations_start_from_states_they_do_not_end_in() {
        for op in Operation::ALL {
            assert!(!op.starts_from().is_empty(), "{op:?}");
            if let Some(to) = op.leads_to() {
                assert!(!op.allows(to), "{op:?} would lead from {to:?} to itself");
            }
        }
        // Finished uploads are never paused, resumed, canceled or picked up again.
        for op in [
            Operation::Pause,
            Operation::Resume,
            Operation::Cancel,
            Operation::Claim,
        ] {
            assert!(!op.allows(ItemState::Done), "{op:?}");
        }
        // Active uploads are never removed.
        assert!(
            ItemState::ALL
                .iter()
                .all(|s| !(s.is_active() && Operation::Remove.allows(*s)))
        );
        assert_eq!(Operation::Resume.sql_states(), "'paused','failed'");
    }
}
