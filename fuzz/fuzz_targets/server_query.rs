//! What a token holder can send the signing routes: query strings and JSON bodies, against
//! a real local stack over loopback HTTP. Nothing may answer 5xx because of what the client
//! sent, and no key outside the user's prefix is ever handed out or signed.
//!
//! Input: the first byte picks the route, the rest is its query string or body:
//! 0 `GET /s3/params?…`, 1 `GET /s3/multipart/{id}/batch?key=…&…`, 2 `POST /s3/multipart`,
//! 3 `POST /s3/multipart/{id}/complete?key=…`, 4 `GET /s3/multipart/{id}/{…}?key=…`,
//! 5 `GET /s3/multipart/{id}?…`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_fuzz::{Harness, has_server_shape};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let Ok(rest) = std::str::from_utf8(rest) else {
        return;
    };
    let h = Harness::get();
    let (e, id, key) = (&h.endpoint, &h.upload_id, &h.key);
    let route = route % 6;
    let req = match route {
        0 => h.http.get(format!("{e}/s3/params?{rest}")),
        1 => h
            .http
            .get(format!("{e}/s3/multipart/{id}/batch?key={key}&{rest}")),
        2 => h
            .http
            .post(format!("{e}/s3/multipart"))
            .header("content-type", "application/json")
            .body(rest.to_owned()),
        3 => h
            .http
            .post(format!("{e}/s3/multipart/{id}/complete?key={key}"))
            .header("content-type", "application/json")
            .body(rest.to_owned()),
        4 => h
            .http
            .get(format!("{e}/s3/multipart/{id}/{rest}?key={key}")),
        _ => h.http.get(format!("{e}/s3/multipart/{id}?{rest}")),
    };
    let Some((status, json)) = h.send(req) else {
        return; // not a URL reqwest can send
    };
    if status != 200 {
        return;
    }
    for k in [&json["key"], &json["fields"]["key"]] {
        if let Some(k) = k.as_str() {
            assert!(has_server_shape(k, "dev"), "route {route} handed out {k:?}");
        }
    }
    // Part URLs (routes 1 and 4) are for the one upload's key; /s3/params's `url` is the bucket.
    let mut urls: Vec<&str> = Vec::new();
    if route == 4 {
        urls.extend(json["url"].as_str());
    }
    if let Some(map) = json["presignedUrls"].as_object() {
        urls.extend(map.values().filter_map(Value::as_str));
    }
    for u in urls {
        let path = reqwest::Url::parse(u).expect("a URL").path().to_owned();
        assert_eq!(path, format!("/reelup/{key}"), "route {route} signed {u}");
    }
});
