//! Content types clients name are stored with the object and served back by the CDN, so the
//! signing routes must accept exactly a well-formed `type/subtype` (RFC 6838 restricted
//! names: no parameters, commas, spaces or second `/`) that the allowlist names, and sign it
//! as given. Generated types, sent over real HTTP to a local stack allowing `video/*` and
//! `application/mxf`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reelup_protocol::Secret;
use reelup_server::{LocalOptions, LocalStack};
use serde_json::{Value, json};

const TOKEN: &str = "rlp_content_type_props";

/// RFC 6838 `restricted-name`: a letter or digit, then up to 126 of these.
fn restricted_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=127).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
}

/// Whether the local stack must take `t`: well-formed and in its allowlist.
fn acceptable(t: &str) -> bool {
    let Some((type_, subtype)) = t.split_once('/') else {
        return false;
    };
    restricted_name(type_)
        && restricted_name(subtype)
        && (type_.eq_ignore_ascii_case("video") || t.eq_ignore_ascii_case("application/mxf"))
}

/// Types that are right, nearly right, and the attacks on the allowlist.
fn content_type() -> impl Strategy<Value = String> {
    let name = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,12}";
    let junk = prop::sample::select(vec![
        ",",
        ";",
        " ",
        "\t",
        "/",
        "/..",
        ",text/html",
        ";text/html",
        ";codecs=avc1",
        "\r\n",
        "*",
        "\"",
        "%2F",
        "\u{0}",
    ]);
    prop_oneof![
        (
            prop::sample::select(vec![
                "video",
                "Video",
                "VIDEO",
                "application",
                "text",
                "image"
            ]),
            name
        )
            .prop_map(|(t, s)| format!("{t}/{s}")),
        (name, name).prop_map(|(t, s)| format!("{t}/{s}")),
        (
            prop::sample::select(vec!["video/mp4", "application/mxf", "video/"]),
            junk.clone(),
            name
        )
            .prop_map(|(t, j, s)| format!("{t}{j}{s}")),
        (
            junk,
            prop::sample::select(vec!["video/mp4", "video/quicktime"])
        )
            .prop_map(|(j, t)| format!("{j}{t}")),
        Just("video/../text/html".to_owned()),
        Just("video/*".to_owned()),
        "[ -~]{0,20}",
        any::<String>(),
    ]
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn types_are_accepted_exactly_when_well_formed_and_allowed() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = LocalOptions::new(dir.path().to_owned());
    opts.token = Some(Secret::new(TOKEN));
    let stack = rt.block_on(LocalStack::start(opts)).expect("local stack");
    let http = reqwest::blocking::Client::new();
    let endpoint = stack.endpoint.clone();
    let send = |req: reqwest::blocking::RequestBuilder| -> (u16, Value) {
        let resp = req.bearer_auth(TOKEN).send().expect("the server answers");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    };
    let mut runner = TestRunner::new(Config {
        cases: 160,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&content_type(), |t| {
        let want = acceptable(&t);
        let (status, body) = send(http.get(format!(
            "{endpoint}/s3/params?filename=clip.mp4&type={}",
            enc(&t)
        )));
        prop_assert!(status < 500, "{:?} -> {}: {}", t, status, body);
        prop_assert_eq!(
            status == 200,
            want,
            "/s3/params type {:?} -> {}: {}",
            t,
            status,
            body
        );
        if want {
            // Signed as a plain type, so the store serves back nothing else.
            let signed = body["fields"]["content-type"].as_str().unwrap_or_default();
            prop_assert!(
                signed.eq_ignore_ascii_case(&t),
                "{:?} signed as {:?}",
                t,
                signed
            );
        }
        let (status, body) = send(
            http.post(format!("{endpoint}/s3/multipart"))
                .json(&json!({"filename": "clip.mp4", "type": t})),
        );
        prop_assert!(status < 500, "{:?} -> {}: {}", t, status, body);
        prop_assert_eq!(
            status == 200,
            want,
            "/s3/multipart type {:?} -> {}: {}",
            t,
            status,
            body
        );
        Ok(())
    });
    rt.block_on(stack.shutdown());
    result.unwrap();
}
