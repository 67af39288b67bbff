//! SigV4 browser-upload (POST) policies.
//!
//! No maintained Rust crate signs S3 POST policies (rusty-s3 and aws-sigv4 cover query and
//! header signing only), so this is the one hand-written piece of signing. It is tested
//! against AWS's published example ("Browser-Based Upload using HTTP POST (Using AWS
//! Signature Version 4)").

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key for one day, region and service.
pub fn signing_key(secret: &str, yyyymmdd: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), yyyymmdd.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The `X-Amz-Signature` of a base64-encoded policy: it is its own string to sign.
pub fn sign_policy(base64_policy: &str, key: &[u8; 32]) -> String {
    hex::encode(hmac(key, base64_policy.as_bytes()))
}

/// What one POST upload may do: exactly one key, one content type, a size range.
#[derive(Debug, Clone)]
pub struct PostPolicySpec<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_size: u64,
    /// When the client declares its size, the policy allows exactly that many bytes.
    pub exact_size: Option<u64>,
    pub metadata: &'a [(String, String)],
    /// The file's CRC-64/NVME (Reelup's extension): sent as the `x-amz-checksum-crc64nvme`
    /// field, pinned like every field, so the store refuses a file that does not match.
    pub crc64nvme: Option<crate::checksum::Crc64Nvme>,
    pub lifetime: std::time::Duration,
}

/// Builds and signs a policy; returns the form fields the client sends before `file`,
/// named as Uppy Companion names them.
pub fn presign_post(
    spec: &PostPolicySpec<'_>,
    creds: &crate::credentials::CurrentKeys,
    now: OffsetDateTime,
) -> BTreeMap<String, String> {
    let day = now
        .format(format_description!("[year][month][day]"))
        .expect("date formats");
    let amz_date = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("date formats");
    let expiration = (now + spec.lifetime)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
        ))
        .expect("date formats");
    let credential = format!("{}/{day}/{}/s3/aws4_request", creds.access_key, spec.region);

    let mut fields = BTreeMap::new();
    // Companion (the AWS SDK's createPresignedPost) sends the bucket as a field too.
    fields.insert("bucket".to_owned(), spec.bucket.to_owned());
    fields.insert("key".to_owned(), spec.key.to_owned());
    fields.insert("content-type".to_owned(), spec.content_type.to_owned());
    fields.insert("success_action_status".to_owned(), "201".to_owned());
    fields.insert("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned());
    fields.insert("X-Amz-Credential".to_owned(), credential);
    fields.insert("X-Amz-Date".to_owned(), amz_date);
    if let Some(token) = &creds.session_token {
        fields.insert("X-Amz-Security-Token".to_owned(), token.expose().to_owned());
    }
    for (name, value) in spec.metadata {
        fields.insert(format!("x-amz-meta-{name}"), value.clone());
    }
    if let Some(crc) = spec.crc64nvme {
        fields.insert(
            reelup_protocol::companion::CRC64NVME_HEADER.to_owned(),
            crc.to_base64(),
        );
    }

    let (min, max) = match spec.exact_size {
        Some(n) => (n, n),
        None => (0, spec.max_size),
    };
    let mut conditions: Vec<serde_json::Value> =
        vec![serde_json::json!(["content-length-range", min, max])];
    // Every field the client sends is pinned to its exact value.
    conditions.extend(
        fields
            .iter()
            .map(|(name, value)| serde_json::json!({ name.as_str(): value })),
    );
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
    let encoded = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let key = signing_key(creds.secret_key.expose(), &day, spec.region, "s3");
    fields.insert("X-Amz-Signature".to_owned(), sign_policy(&encoded, &key));
    fields.insert("Policy".to_owned(), encoded);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's worked example: its credentials, its 2015-12-29 policy and its signature.
    #[test]
    fn reproduces_aws_published_post_signature() {
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20151229",
            "us-east-1",
            "s3",
        );
        assert_eq!(
            sign_policy(policy, &key),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
    }

    #[test]
    fn policy_pins_every_field_and_the_declared_size() {
        let creds = crate::credentials::CurrentKeys::new(
            "AK".into(),
            reelup_protocol::Secret::new("SK"),
            Some(reelup_protocol::Secret::new("TOKEN")),
            None,
        );
        let meta = vec![("name".to_owned(), "clip.mp4".to_owned())];
        let spec = PostPolicySpec {
            bucket: "b",
            region: "us-east-1",
            key: "k.mp4",
            content_type: "video/mp4",
            max_size: 100,
            exact_size: Some(42),
            metadata: &meta,
            crc64nvme: Some(crate::checksum::Crc64Nvme::of(b"123456789")),
            lifetime: std::time::Duration::from_secs(900),
        };
        let now = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        let fields = presign_post(&spec, &creds, now);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&fields["Policy"])
            .expect("base64");
        let policy: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(policy["expiration"], "2026-01-02T03:19:05.000Z");
        let conditions = policy["conditions"].as_array().expect("array");
        assert!(conditions.contains(&serde_json::json!(["content-length-range", 42, 42])));
        assert!(conditions.contains(&serde_json::json!({"key": "k.mp4"})));
        assert!(conditions.contains(&serde_json::json!({"bucket": "b"})));
        assert!(conditions.contains(&serde_json::json!({"x-amz-meta-name": "clip.mp4"})));
        assert!(conditions.contains(&serde_json::json!({"success_action_status": "201"})));
        assert!(
            conditions.contains(&serde_json::json!({"x-amz-checksum-crc64nvme": "rosUhgp5mIg="}))
        );
        assert_eq!(fields["x-amz-checksum-crc64nvme"], "rosUhgp5mIg=");
        assert_eq!(
            fields["X-Amz-Credential"],
            "AK/20260102/us-east-1/s3/aws4_request"
        );
        assert_eq!(fields["X-Amz-Date"], "20260102T030405Z");
        let expected = sign_policy(
            &fields["Policy"],
            &signing_key("SK", "20260102", "us-east-1", "s3"),
        );
        assert_eq!(fields["X-Amz-Signature"], expected);
    }
}
