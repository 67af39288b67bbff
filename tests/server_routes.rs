//! The presign routes and the CDN route of `reelup-server --local`, over real HTTP.

use reelup_tests::{LocalServer, http, random_file, reelup};
use reqwest::blocking::multipart::{Form, Part};

fn upload(server: &LocalServer, path: &std::path::Path) -> serde_json::Value {
    let out = reelup(
        &[
            "upload",
            path.to_str().expect("utf8"),
            "--endpoint",
            &server.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[("REELUP_TOKEN", &server.token)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[test]
fn cdn_serves_exactly_the_requested_ranges() {
    let server = LocalServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = random_file(dir.path(), "clip.mp4", 1_000_003);
    let bytes = std::fs::read(&path).expect("read");
    let url = upload(&server, &path)["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let len = bytes.len();

    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=999990-", 999_990, len - 1),
        ("bytes=-10", len - 10, len - 1),
    ];
    for (range, first, last) in cases {
        let resp = http().get(&url).header("Range", range).send().expect("GET");
        assert_eq!(resp.status(), 206, "{range}");
        let headers = resp.headers().clone();
        assert_eq!(
            headers["content-range"],
            format!("bytes {first}-{last}/{len}").as_str(),
            "{range}"
        );
        assert_eq!(headers["content-type"], "video/mp4");
        assert_eq!(headers["accept-ranges"], "bytes");
        let body = resp.bytes().expect("body");
        assert_eq!(&body[..], &bytes[first..=last], "{range}");
    }

    let whole = http().get(&url).send().expect("GET");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-length"], len.to_string().as_str());

    let missing = http()
        .get(format!(
            "{}/00000000-0000-0000-0000-000000000000.mp4",
            server.cdn
        ))
        .send()
        .expect("GET");
    assert_eq!(missing.status(), 404);
}

#[test]
fn every_presign_route_requires_the_token() {
    let server = LocalServer::start();
    let e = &server.endpoint;
    let routes: Vec<(reqwest::Method, String)> = vec![
        (
            reqwest::Method::GET,
            format!("{e}/s3/params?filename=a.mp4&type=video/mp4"),
        ),
        (reqwest::Method::POST, format!("{e}/s3/multipart")),
        (
            reqwest::Method::GET,
            format!("{e}/s3/multipart/u1/1?key=k.mp4"),
        ),
        (
            reqwest::Method::GET,
            format!("{e}/s3/multipart/u1/batch?key=k.mp4&partNumbers=1,2"),
        ),
        (
            reqwest::Method::GET,
            format!("{e}/s3/multipart/u1?key=k.mp4"),
        ),
        (
            reqwest::Method::POST,
            format!("{e}/s3/multipart/u1/complete?key=k.mp4"),
        ),
        (
            reqwest::Method::DELETE,
            format!("{e}/s3/multipart/u1?key=k.mp4"),
        ),
    ];
    let body = serde_json::json!({"filename": "a.mp4", "type": "video/mp4", "metadata": {}});
    for (method, url) in &routes {
        for token in [None, Some("wrong"), Some("")] {
            let mut req = http().request(method.clone(), url).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().expect("request");
            assert_eq!(resp.status(), 401, "{method} {url} with {token:?}");
            let json: serde_json::Value = resp.json().expect("JSON error body");
            assert_eq!(json["error"], "unauthorized", "{method} {url}");
            assert!(
                json["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("token"))
            );
        }
        // With the right token the same request gets past authentication.
        let resp = http()
            .request(method.clone(), url)
            .bearer_auth(&server.token)
            .json(&body)
            .send()
            .expect("request");
        assert_ne!(resp.status(), 401, "{method} {url} with the right token");
    }
}

#[test]
fn the_store_enforces_the_signed_post_policy() {
    let server = LocalServer::start();
    let params: serde_json::Value = http()
        .get(format!("{}/s3/params", server.endpoint))
        .query(&[
            ("filename", "clip.mp4"),
            ("type", "video/mp4"),
            ("size", "10"),
        ])
        .bearer_auth(&server.token)
        .send()
        .expect("GET /s3/params")
        .json()
        .expect("JSON");
    assert_eq!(params["method"], "POST");
    let fields = params["fields"].as_object().expect("fields");
    for name in [
        "key",
        "Policy",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Signature",
        "success_action_status",
        "content-type",
    ] {
        assert!(
            fields.contains_key(name),
            "Companion field {name} missing: {fields:?}"
        );
    }
    let key = fields["key"].as_str().expect("key").to_owned();
    let post = |edit: &dyn Fn(&str, &str) -> String, body: &[u8]| {
        let mut form = Form::new();
        for (k, v) in fields {
            form = form.text(k.clone(), edit(k, v.as_str().expect("string")));
        }
        form = form.part("file", Part::bytes(body.to_vec()).file_name("clip.mp4"));
        http()
            .post(params["url"].as_str().expect("url"))
            .multipart(form)
            .send()
            .expect("POST")
            .status()
    };
    let stored = |k: &str| {
        http()
            .get(format!("{}/{k}", server.cdn))
            .send()
            .expect("GET")
            .status()
    };

    // More bytes than declared.
    assert!(post(&|_, v| v.to_owned(), b"eleven byte").is_client_error());
    // A key the policy does not name.
    let other = "11111111-1111-1111-1111-111111111111.mp4";
    let status = post(
        &|k, v| {
            if k == "key" {
                other.to_owned()
            } else {
                v.to_owned()
            }
        },
        b"ten bytes!",
    );
    assert!(status.is_client_error(), "{status}");
    assert_eq!(stored(other), 404);
    // An edited signature.
    let status = post(
        &|k, v| {
            if k == "X-Amz-Signature" {
                "0".repeat(64)
            } else {
                v.to_owned()
            }
        },
        b"ten bytes!",
    );
    assert!(status.is_client_error(), "{status}");
    assert_eq!(stored(&key), 404, "nothing was stored by refused uploads");

    // The policy as issued works, and answers as success_action_status asks.
    assert_eq!(post(&|_, v| v.to_owned(), b"ten bytes!"), 201);
    assert_eq!(stored(&key), 200);
}

#[test]
fn objects_and_the_dev_token_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, sha) = random_file(dir.path(), "clip.webm", 200_000);
    let data = dir.path().join("server-data");
    std::fs::create_dir(&data).expect("mkdir");

    let first = LocalServer::start_in(&data);
    let key = upload(&first, &path)["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let token = first.token.clone();
    drop(first);

    let second = LocalServer::start_in(&data);
    assert_eq!(second.token, token, "the dev token is kept in the data dir");
    let body = http()
        .get(format!("{}/{key}", second.cdn))
        .send()
        .expect("GET")
        .bytes()
        .expect("body");
    assert_eq!(reelup_tests::sha256_hex(&body), sha);
    let resp = http()
        .get(format!("{}/{key}", second.cdn))
        .send()
        .expect("GET");
    assert_eq!(resp.headers()["content-type"], "video/webm");
}

#[test]
fn posters_are_small_jpegs_only() {
    let server = LocalServer::start();
    let params = |filename: &str, content_type: &str, size: Option<usize>| {
        let mut query = vec![
            ("filename", filename.to_owned()),
            ("type", content_type.to_owned()),
        ];
        if let Some(size) = size {
            query.push(("size", size.to_string()));
        }
        http()
            .get(format!("{}/s3/params", server.endpoint))
            .query(&query)
            .bearer_auth(&server.token)
            .send()
            .expect("GET /s3/params")
    };
    const CAP: usize = 2 * 1024 * 1024;
    // Not a JPEG: refused before anything is signed.
    for t in ["image/png", "image/svg+xml", "text/html"] {
        let resp = params("clip.poster.jpg", t, Some(10));
        assert_eq!(resp.status(), 415, "{t}");
    }
    // A declared size over the cap.
    assert_eq!(
        params("clip.poster.jpg", "image/jpeg", Some(CAP + 1)).status(),
        413
    );
    // No declared size: the store holds the upload to the cap the policy signs.
    let policy: serde_json::Value = params("clip.poster.jpg", "image/jpeg", None)
        .json()
        .expect("JSON");
    let fields = policy["fields"].as_object().expect("fields");
    assert_eq!(fields["content-type"], "image/jpeg");
    let key = fields["key"].as_str().expect("key").to_owned();
    assert!(key.ends_with(".jpg"), "{key}");
    let post = |body: Vec<u8>| {
        let mut form = Form::new();
        for (k, v) in fields {
            form = form.text(k.clone(), v.as_str().expect("string").to_owned());
        }
        form = form.part("file", Part::bytes(body).file_name("clip.poster.jpg"));
        http()
            .post(policy["url"].as_str().expect("url"))
            .multipart(form)
            .send()
            .expect("POST")
            .status()
    };
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.resize(CAP + 1, 0);
    assert!(post(jpeg.clone()).is_client_error(), "an oversized poster");
    assert_eq!(
        http()
            .get(format!("{}/{key}", server.cdn))
            .send()
            .expect("GET")
            .status(),
        404
    );
    jpeg.truncate(50_000);
    assert_eq!(post(jpeg), 201, "a poster within the cap");
    // Posters go by POST policy only, never multipart.
    let resp = http()
        .post(format!("{}/s3/multipart", server.endpoint))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({"filename": "a.poster.jpg", "type": "image/jpeg"}))
        .send()
        .expect("POST /s3/multipart");
    assert_eq!(resp.status(), 415);
}
