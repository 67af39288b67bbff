//! When to try again, and how long to wait.

use std::time::Duration;

use rand::Rng;

use crate::UploadError;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts for one request before the item fails (retryably).
    pub attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
            attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a random wait up to `base * 2^attempt`, capped.
    /// A server's Retry-After wins when it asks for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<u64>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let jittered = Duration::from_secs_f64(rand::rng().random::<f64>() * ceiling.as_secs_f64());
        match retry_after {
            Some(secs) => jittered.max(Duration::from_secs(secs)),
            None => jittered,
        }
    }
}

impl UploadError {
    /// Worth trying again: the network, the store's or the endpoint's passing trouble, or
    /// bytes damaged on the way. Not: a missing file, a wrong token, a refused policy.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::EndpointUnreachable { .. } | Self::StorageUnreachable { .. } => true,
            Self::Integrity { .. } => true,
            Self::Endpoint { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Storage { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || code == "BadDigest"
                    || code == "RequestTimeout"
                    || code == "InternalError"
                    || code == "SlowDown"
                    || self.is_expired_url()
            }
            _ => false,
        }
    }

    /// A presigned URL or policy that ran out; a freshly signed one will do.
    pub fn is_expired_url(&self) -> bool {
        match self {
            Self::Storage {
                status: 400 | 403,
                code,
                message,
                ..
            } => code.contains("Expired") || message.to_ascii_lowercase().contains("expired"),
            _ => false,
        }
    }

    /// The connection itself failed (refused, reset, timed out, no route): from the
    /// client's side a lost network and a vanished server look the same, so the queue waits
    /// these out (up to its patience) instead of spending attempts.
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Self::EndpointUnreachable { .. } | Self::StorageUnreachable { .. }
        )
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Storage { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(status: u16, code: &str, message: &str) -> UploadError {
        UploadError::Storage {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..20 {
            let d = p.delay(attempt, None);
            assert!(d <= p.cap);
            assert!(d <= p.base * 2u32.pow(attempt.min(16)));
        }
        assert!(
            p.delay(0, Some(3)) >= Duration::from_secs(3),
            "Retry-After wins"
        );
    }

    #[test]
    fn classifies_what_deserves_another_try() {
        assert!(storage(503, "SlowDown", "").is_retryable());
        assert!(storage(500, "InternalError", "").is_retryable());
        assert!(storage(400, "BadDigest", "").is_retryable());
        assert!(storage(403, "AccessDenied", "Request has expired").is_expired_url());
        assert!(!storage(403, "SignatureDoesNotMatch", "").is_retryable());
        assert!(!storage(400, "EntityTooLarge", "").is_retryable());
        assert!(
            !UploadError::Unauthorized {
                endpoint: "e".into()
            }
            .is_retryable()
        );
        let offline = UploadError::StorageUnreachable {
            reason: "Connection refused (os error 111)".into(),
            connected: false,
        };
        assert!(offline.is_retryable() && offline.is_offline());
    }
}
