//! A small file in one presigned POST.

use super::FileUpload;
use super::transfer;
use crate::{PresignEndpoint, UploadError, check_presigned_url};

impl<E: PresignEndpoint> FileUpload<'_, E> {
    /// Sends the file with a POST policy; the object's key, or `None` if stopped.
    pub(crate) async fn post(&self) -> Result<Option<String>, UploadError> {
        // One permit from the pool parts use, held across retries as a part holds its own:
        // the parts-in-flight limit bounds POSTs and parts together, however many small
        // files the scheduler runs at once.
        let Some(_permit) = self.wire.permits.acquire(self.stop).await else {
            return Ok(None);
        };
        self.retry
            .run(self.stop, || async {
                // A fresh policy per attempt: an expired one is the commonest reason to retry.
                let policy = self.endpoint.post_policy(self.meta).await?;
                check_presigned_url(self.endpoint_url, &policy.url, "POST policy URL")?;
                transfer::post_object(
                    &self.wire.http,
                    &policy,
                    self.source,
                    self.meta,
                    self.progress,
                    &self.wire.pacing,
                )
                .await?;
                Ok(policy.key().unwrap_or_default().to_owned())
            })
            .await
    }
}
