//! Uploads that failed only because nothing could be reached (the server was down, the
//! network gone) go on by themselves once their endpoint answers again, in a queue that
//! serves (the app, `reelup watch`). A run that never reaches its endpoint fails at once
//! (a wrong URL is said at once, see `engine::retry`), so without this a file added while
//! the server was down would wait for a Retry click.
//!
//! What must stay true:
//! - Only those failures: any other (a refused token, a changed file) waits for the user.
//! - Nothing is re-run while the endpoint still cannot be reached: it is probed first
//!   (one GET, any HTTP answer counts), so a server down for an hour costs a probe every
//!   few seconds, not a failed run, a log line and a notification each time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::UploadQueue;
use super::store::ItemState;
use crate::{ErrorCode, PresignEndpoint};

/// How long a probe of an endpoint may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a failure was the network's or a server's absence, and nothing else.
fn unreachable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::EndpointUnreachable | ErrorCode::StorageUnreachable
    )
}

impl<E: PresignEndpoint> UploadQueue<E> {
    /// Puts back in line every upload that failed because its endpoint could not be
    /// reached, once that endpoint answers; returns how many.
    pub async fn resume_reachable(self: &Arc<Self>) -> usize {
        let Ok(ids) = self.ids_in(&[ItemState::Failed]) else {
            return 0;
        };
        // By endpoint: one probe each, however many files wait on it.
        let mut waiting: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for id in ids {
            let Ok(item) = self.get(id) else { continue };
            if item.error.as_ref().is_some_and(|e| unreachable(e.code)) {
                waiting.entry(item.target.endpoint).or_default().push(id);
            }
        }
        let mut resumed = 0;
        for (endpoint, ids) in waiting {
            let answers = self
                .wire
                .http
                .get(&endpoint)
                .timeout(PROBE_TIMEOUT)
                .send()
                .await
                .is_ok();
            if !answers {
                continue;
            }
            tracing::info!(%endpoint, uploads = ids.len(), "the endpoint answers again; its uploads go on");
            for id in ids {
                resumed += usize::from(self.resume(id).unwrap_or(false));
            }
        }
        resumed
    }
}
