//! Poster frames: a small JPEG of one frame, uploaded beside the video through the same
//! presign routes (a POST policy for `<video stem>.poster.jpg`, `image/jpeg`), so it lands
//! under the same user prefix, and recorded with the item.
//!
//! Who makes the frame differs: the app draws it with the webview's own media stack, the
//! CLI asks ffmpeg. Both hand the bytes here, which checks them as outside input.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::QueueError;
use super::{QueueEvent, UploadQueue, bound};
use crate::engine::Retrier;
use crate::engine::transfer::{storage_failure, storage_unreachable};
use crate::{FileMeta, PresignEndpoint, StreamingUrlBase, UploadError, check_presigned_url};

/// The largest poster accepted. reelup-server signs `image/jpeg` POSTs up to the same size;
/// a 640 px wide frame at quality 0.8 is typically 30-120 KiB.
pub const MAX_POSTER_SIZE: usize = 2 * 1024 * 1024;

/// The content type posters are declared and stored with.
pub const POSTER_CONTENT_TYPE: &str = "image/jpeg";

/// A poster upload has no progress to show and is small: if it takes longer than this,
/// something is wrong, and the item simply keeps no poster.
const POSTER_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks that `bytes` can be a poster: a JPEG (starts with the SOI marker and a segment
/// marker, ends with EOI) of at most [`MAX_POSTER_SIZE`] bytes.
pub fn check_poster(bytes: &[u8]) -> Result<(), UploadError> {
    let invalid = |reason: String| UploadError::PosterInvalid { reason };
    if bytes.len() > MAX_POSTER_SIZE {
        return Err(invalid(format!(
            "it is {} bytes, more than the {MAX_POSTER_SIZE} allowed; draw it smaller",
            bytes.len()
        )));
    }
    if bytes.len() < 4 || bytes[..3] != [0xFF, 0xD8, 0xFF] {
        return Err(invalid(
            "it is not a JPEG image (no JPEG start marker)".into(),
        ));
    }
    // Encoders end with EOI; a frame cut short would show half an image.
    if !bytes.ends_with(&[0xFF, 0xD9]) {
        return Err(invalid(
            "the JPEG is truncated (no end-of-image marker)".into(),
        ));
    }
    Ok(())
}

/// The poster's file name: the video's stem with `.poster.jpg`, so the object reads as
/// the video's companion under the same prefix.
pub fn poster_filename(video: &Path) -> String {
    let stem = video
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "video".into());
    format!("{stem}.poster.jpg")
}

impl<E: PresignEndpoint> UploadQueue<E> {
    /// Uploads a poster frame for item `id` (finished or still uploading) and records its
    /// streaming URL; tells subscribers with [`QueueEvent::Poster`]. The bytes are checked
    /// first ([`check_poster`]); the item's profile must still point at its endpoint.
    pub async fn upload_poster(&self, id: i64, jpeg: Vec<u8>) -> Result<String, UploadError> {
        check_poster(&jpeg)?;
        let item = self.get(id)?;
        bound(self.profiles.as_ref(), &item.target)?;
        let endpoint = (self.connect)(&item.target);
        let meta = FileMeta {
            filename: poster_filename(&item.path),
            content_type: POSTER_CONTENT_TYPE.into(),
            size: jpeg.len() as u64,
            part_size: None,
            metadata: Vec::new(),
            crc64nvme: None,
        };
        let retry = Retrier::new(self.options.retry, Duration::ZERO);
        let stop = CancellationToken::new();
        let send = retry.run(&stop, || async {
            let policy = endpoint.post_policy(&meta).await?;
            check_presigned_url(&item.target.endpoint, &policy.url, "POST policy URL")?;
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in &policy.fields {
                form = form.text(name.clone(), value.clone());
            }
            let file = reqwest::multipart::Part::bytes(jpeg.clone())
                .file_name(meta.filename.clone())
                .mime_str(POSTER_CONTENT_TYPE)
                .map_err(storage_unreachable)?;
            // S3 ignores every field after `file`, so it goes last.
            form = form.part("file", file);
            let resp = self
                .wire
                .http
                .post(&policy.url)
                .multipart(form)
                .timeout(POSTER_TIMEOUT)
                .send()
                .await
                .map_err(storage_unreachable)?;
            if !resp.status().is_success() {
                return Err(storage_failure(resp).await);
            }
            policy
                .key()
                .map(str::to_owned)
                .ok_or_else(|| UploadError::Endpoint {
                    route: "GET /s3/params".into(),
                    status: 200,
                    message: "the POST policy has no key field".into(),
                })
        });
        let key = send
            .await?
            .expect("the poster's stop token is never cancelled");
        let url = StreamingUrlBase::new(&item.target.cdn).url_for(&key);
        if self.store().set_poster_url(id, &url)? {
            let _ = self.events.send(QueueEvent::Poster {
                id,
                url: url.clone(),
            });
        }
        Ok(url)
    }

    /// Records why item `id` gets no poster (the file at its path is not the one queued,
    /// say), for the item to say, and tells subscribers with [`QueueEvent::NoPoster`].
    pub fn no_poster(&self, id: i64, why: &str) -> Result<(), QueueError> {
        if self.store().set_no_poster(id, why)? {
            let _ = self.events.send(QueueEvent::NoPoster {
                id,
                why: why.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(len: usize) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
        b.resize(len - 2, 0);
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    }

    #[test]
    fn only_whole_jpegs_within_the_cap_pass() {
        assert!(check_poster(&jpeg(1000)).is_ok());
        assert!(check_poster(&jpeg(MAX_POSTER_SIZE)).is_ok());
        for (bytes, why) in [
            (jpeg(MAX_POSTER_SIZE + 1), "too large"),
            (b"\x89PNG\r\n\x1a\n....".to_vec(), "a PNG"),
            (Vec::new(), "empty"),
            (vec![0xFF, 0xD8], "too short"),
            (jpeg(1000)[..900].to_vec(), "truncated"),
            (b"<svg onload=alert(1)>\xFF\xD9".to_vec(), "markup"),
        ] {
            let e = check_poster(&bytes).expect_err(why);
            assert_eq!(e.code(), crate::ErrorCode::PosterInvalid, "{why}");
        }
    }

    #[test]
    fn the_poster_is_named_after_the_video() {
        assert_eq!(
            poster_filename(Path::new("/v/day 2/clip.final.mp4")),
            "clip.final.poster.jpg"
        );
        assert_eq!(poster_filename(Path::new("/")), "video.poster.jpg");
    }
}
