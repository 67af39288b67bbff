//! The `type` a client names is stored with the object and served back by the CDN: the
//! signing routes must take exactly a well-formed `type/subtype` (RFC 6838 restricted names,
//! nothing else) that the allowlist names. Against a real local stack, which allows
//! `video/*` and `application/mxf`. Input: the type, as sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_fuzz::Harness;

fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=127).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
}

fn acceptable(t: &str) -> bool {
    t.split_once('/').is_some_and(|(type_, subtype)| {
        restricted_name(type_)
            && restricted_name(subtype)
            && (type_.eq_ignore_ascii_case("video") || t.eq_ignore_ascii_case("application/mxf"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(t) = std::str::from_utf8(data) else {
        return;
    };
    let h = Harness::get();
    let e = &h.endpoint;
    let want = acceptable(t);
    let query: String = url_encode(t);
    if let Some((status, body)) = h.send(
        h.http
            .get(format!("{e}/s3/params?filename=clip.mp4&type={query}")),
    ) {
        assert_eq!(
            status == 200,
            want,
            "/s3/params type {t:?} -> {status}: {body}"
        );
        if want {
            let signed = body["fields"]["content-type"].as_str().unwrap_or_default();
            assert!(signed.eq_ignore_ascii_case(t), "{t:?} signed as {signed:?}");
        }
    }
    let body = serde_json::json!({"filename": "clip.mp4", "type": t});
    if let Some((status, body)) = h.send(h.http.post(format!("{e}/s3/multipart")).json(&body)) {
        assert_eq!(
            status == 200,
            want,
            "/s3/multipart type {t:?} -> {status}: {body}"
        );
    }
});

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
