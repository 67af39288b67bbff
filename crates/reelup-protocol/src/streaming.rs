use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters escaped in each key segment of a streaming URL. `/` separates segments and
/// is kept; everything a URL path cannot carry literally is escaped.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'+');

/// The CDN base URL of a profile (CloudFront, or the local stack's `/cdn`).
///
/// A streaming URL is always built from the object key, never from the `location` S3
/// returns: the bucket stays private and only the CDN serves viewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingUrlBase(String);

impl StreamingUrlBase {
    pub fn new(base: impl Into<String>) -> Self {
        Self(base.into().trim_end_matches('/').to_owned())
    }

    pub fn url_for(&self, key: &str) -> String {
        let path: Vec<String> = key
            .split('/')
            .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
            .collect();
        format!("{}/{}", self.0, path.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_without_double_slash_and_escapes_segments() {
        let base = StreamingUrlBase::new("https://d111.cloudfront.net/");
        assert_eq!(
            base.url_for("user1/abc.mp4"),
            "https://d111.cloudfront.net/user1/abc.mp4"
        );
        assert_eq!(
            base.url_for("a b/c#d+e.mp4"),
            "https://d111.cloudfront.net/a%20b/c%23d%2Be.mp4"
        );
    }
}
