//! reelup-server against a real Uppy Companion (tests/companion/start.mjs) signing for the
//! same store: the `reelup` CLI uploads through Companion, and every S3 route answers in
//! Companion's shape from both servers.
//!
//! Needs Node.js and tests/companion/node_modules (`./dev test` installs them).

use std::collections::{BTreeMap, BTreeSet};

use reelup_testkit::{Fault, FaultKind, FaultProxy, Match};
use reelup_tests::{Companion, LocalServer, StoreKeys, fetch_sha256, http, random_file, reelup};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

#[test]
fn reelup_cli_uploads_through_a_real_companion() {
    let (server, store) = LocalServer::start_with_store_keys();
    let companion = Companion::start(&store);
    let dir = tempfile::tempdir().expect("tempdir");
    let (small, small_sha) = random_file(dir.path(), "small clip.mp4", 3 * MIB);
    let (large, large_sha) = random_file(dir.path(), "large.mp4", 40 * MIB);

    let out = reelup(
        &[
            "upload",
            small.to_str().expect("utf8"),
            large.to_str().expect("utf8"),
            "--endpoint",
            &companion.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        // A client sends its token to any endpoint; Companion ignores it.
        &[("REELUP_TOKEN", &server.token)],
    );
    assert!(
        out.status.success(),
        "reelup upload through Companion {} failed: {}\nCompanion's log:\n{}",
        companion.version,
        String::from_utf8_lossy(&out.stderr),
        companion.logs()
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "one JSON line per file: {lines:?}");

    for (path, sha, size, suffix, verified) in [
        (&small, &small_sha, 3 * MIB, "-small clip.mp4", "file_md5"),
        (&large, &large_sha, 40 * MIB, "-large.mp4", "parts_md5"),
    ] {
        let line = lines
            .iter()
            .find(|l| l["file"].as_str() == path.to_str())
            .unwrap_or_else(|| panic!("no line for {}: {lines:?}", path.display()));
        let key = line["key"].as_str().expect("key");
        // Companion names keys `<uuid>-<filename>`: the upload really went through it.
        assert!(
            key.ends_with(suffix),
            "key {key:?} is not Companion's <uuid>{suffix}"
        );
        assert_eq!(line["size"], json!(size), "{line}");
        // Companion has no checksum extension: the MD5 of what was sent, compared with
        // the store's ETag, is what was verified.
        assert_eq!(line["verified"], json!(verified), "{line}");
        let url = line["url"].as_str().expect("url");
        assert!(
            url.starts_with(&server.cdn),
            "{url} is not on {}",
            server.cdn
        );
        assert_eq!(
            &fetch_sha256(&store.object_url(key)),
            sha,
            "{} was not stored byte-identical under {key}",
            path.display()
        );
    }
}

/// Through a plain Companion (no checksum extension) the MD5 of each part as sent is
/// compared with the ETag the store answers: a byte damaged between the client and the
/// store is caught, and that part and that POST are sent again.
#[test]
fn a_byte_damaged_on_the_way_through_companion_is_caught_by_md5_and_sent_again() {
    let (server, store) = LocalServer::start_with_store_keys();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = proxy_in_front_of(&store, &runtime);
    proxy.inject(Fault::once(
        Match::PartNumber(2),
        FaultKind::FlipByte { at: 54_321 },
    ));
    proxy.inject(Fault::once(
        Match::Method(reqwest::Method::POST),
        FaultKind::FlipByte { at: 2 * MIB },
    ));
    let companion = Companion::start(&StoreKeys {
        s3: proxy.url(),
        ..store.clone()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (small, small_sha) = random_file(dir.path(), "small.mp4", 3 * MIB);
    let (large, large_sha) = random_file(dir.path(), "large.mp4", 40 * MIB);
    let out = reelup(
        &[
            "upload",
            small.to_str().expect("utf8"),
            large.to_str().expect("utf8"),
            "--endpoint",
            &companion.endpoint,
            "--cdn",
            &server.cdn,
            "--json",
        ],
        &[("REELUP_TOKEN", &server.token)],
    );
    assert!(
        out.status.success(),
        "{}\nCompanion's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        companion.logs()
    );
    let seen = proxy.requests();
    let damaged: Vec<_> = seen.iter().filter(|s| s.fault.is_some()).collect();
    assert_eq!(damaged.len(), 2, "both faults hit once: {seen:?}");
    let part_2_puts = seen
        .iter()
        .filter(|s| {
            s.method == reqwest::Method::PUT
                && s.query
                    .as_deref()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "partNumber=2"))
        })
        .count();
    assert_eq!(part_2_puts, 2, "the damaged part went again: {seen:?}");
    let posts = seen
        .iter()
        .filter(|s| s.method == reqwest::Method::POST)
        .count();
    assert!(posts >= 2, "the damaged POST went again: {seen:?}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line: Value = serde_json::from_str(line).expect("json");
        let (sha, verified) = if line["file"].as_str() == small.to_str() {
            (&small_sha, "file_md5")
        } else {
            (&large_sha, "parts_md5")
        };
        assert_eq!(line["verified"], json!(verified), "{line}");
        let key = line["key"].as_str().expect("key");
        assert_eq!(&fetch_sha256(&store.object_url(key)), sha, "{line}");
    }
}

/// A fault proxy in front of the local store (a Companion pointed at it goes through it),
/// running on `runtime`.
fn proxy_in_front_of(store: &StoreKeys, runtime: &tokio::runtime::Runtime) -> FaultProxy {
    let store_addr = store
        .s3
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("store address");
    runtime
        .block_on(FaultProxy::start(store_addr))
        .expect("proxy")
}

/// One server's answers to every S3 route, in the order a client calls them.
struct Answers {
    routes: Vec<(&'static str, u16, Value)>,
}

/// Sends a request; returns its status and JSON body (the raw text as a string if it is
/// not JSON).
fn call(req: reqwest::blocking::RequestBuilder, token: Option<&str>, what: &str) -> (u16, Value) {
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let resp = req.send().unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.text().expect("body");
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

fn q(s: &str) -> String {
    // Percent-encodes a path segment or query value.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Drives the S3 routes of `base` like a client: params, create, sign one part, sign a
/// batch, upload part 1 (5 MiB), list parts, complete, then create and abort another.
/// Records every answer; stops only when a later step needs what a failed one lacks.
/// Checks the completed object is in `store`, byte for byte.
fn exercise(base: &str, token: Option<&str>, store: &StoreKeys, part: &[u8], who: &str) -> Answers {
    let h = http();
    let mut routes = Vec::new();
    let need = |route: &str, v: &Value, name: &str| -> String {
        v[name].as_str().map(str::to_owned).unwrap_or_else(|| {
            panic!("{route} on {who} gave no {name}, so the remaining routes cannot be called: {v}")
        })
    };

    let route = "GET /s3/params";
    let (status, params) = call(
        h.get(format!("{base}/s3/params?filename=a.mp4&type=video%2Fmp4")),
        token,
        route,
    );
    routes.push((route, status, params));

    let create = || {
        call(
            h.post(format!("{base}/s3/multipart"))
                .json(&json!({"filename": "a.mp4", "type": "video/mp4", "metadata": {}})),
            token,
            "POST /s3/multipart",
        )
    };
    let route = "POST /s3/multipart";
    let (status, created) = create();
    let key = need(route, &created, "key");
    let id = need(route, &created, "uploadId");
    routes.push((route, status, created));
    let upload = format!("{base}/s3/multipart/{}", q(&id));

    let route = "GET /s3/multipart/{id}/{n}";
    let (status, signed) = call(h.get(format!("{upload}/1?key={}", q(&key))), token, route);
    let part_url = need(route, &signed, "url");
    routes.push((route, status, signed));

    let route = "GET /s3/multipart/{id}/batch";
    let (status, batch) = call(
        h.get(format!("{upload}/batch?key={}&partNumbers=1,2", q(&key))),
        token,
        route,
    );
    routes.push((route, status, batch));

    let put = h
        .put(&part_url)
        .body(part.to_vec())
        .send()
        .unwrap_or_else(|e| panic!("PUT part 1 to the URL {who} signed: {e}"));
    let put_status = put.status();
    let etag = put
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        put_status,
        200,
        "PUT part 1 to the URL {who} signed ({part_url}): {}",
        put.text().unwrap_or_default()
    );
    let etag = etag.expect("the part's ETag");

    let route = "GET /s3/multipart/{id}";
    let (status, parts) = call(h.get(format!("{upload}?key={}", q(&key))), token, route);
    routes.push((route, status, parts));

    let route = "POST /s3/multipart/{id}/complete";
    let (status, done) = call(
        h.post(format!("{upload}/complete?key={}", q(&key)))
            .json(&json!({"parts": [{"PartNumber": 1, "ETag": etag}]})),
        token,
        route,
    );
    if status == 200 {
        assert_eq!(
            fetch_sha256(&store.object_url(&key)),
            reelup_tests::sha256_hex(part),
            "the object completed through {who} was not stored byte-identical"
        );
    }
    routes.push((route, status, done));

    let (_, other) = create();
    let other_key = need("POST /s3/multipart", &other, "key");
    let other_id = need("POST /s3/multipart", &other, "uploadId");
    let route = "DELETE /s3/multipart/{id}";
    let (status, aborted) = call(
        h.delete(format!(
            "{base}/s3/multipart/{}?key={}",
            q(&other_id),
            q(&other_key)
        )),
        token,
        route,
    );
    routes.push((route, status, aborted));
    Answers { routes }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Top-level keys reelup-server may add to Companion's answers (documented extensions).
const TOP_LEVEL_EXTRAS: &[&str] = &["streamingUrl"];

/// The keys of each route's answer in Companion's protocol (for the parts list: of each
/// element). Companion passes on only what the store returns (the local store sends no
/// `Location` on complete and no `ETag` in a parts list), so reelup-server may have these
/// even when this Companion left them out.
fn protocol_keys(route: &str) -> &'static [&'static str] {
    match route {
        "GET /s3/params" => &["method", "url", "fields", "expires"],
        "POST /s3/multipart" => &["key", "uploadId", "bucket"],
        "GET /s3/multipart/{id}/{n}" => &["url", "expires"],
        "GET /s3/multipart/{id}/batch" => &["presignedUrls"],
        "GET /s3/multipart/{id}" => &["PartNumber", "ETag", "Size", "LastModified"],
        "POST /s3/multipart/{id}/complete" => &["location", "key", "bucket"],
        _ => &[],
    }
}

fn field_extra_allowed(name: &str) -> bool {
    name.starts_with("x-amz-meta-") || name == "X-Amz-Security-Token"
}

/// Compares two objects' keys: every key Companion has must be in reelup's with the same
/// JSON type; reelup may add only `allowed` extras.
fn compare_keys(
    route: &str,
    what: &str,
    companion: &serde_json::Map<String, Value>,
    reelup: &serde_json::Map<String, Value>,
    allowed: &dyn Fn(&str) -> bool,
    differences: &mut Vec<String>,
) {
    for (k, v) in companion {
        match reelup.get(k) {
            None => differences.push(format!("{route}: {what} lacks {k:?} (Companion: {v})")),
            Some(r) if kind(r) != kind(v) => differences.push(format!(
                "{route}: {what}.{k} is a {} ({r}), Companion's is a {} ({v})",
                kind(r),
                kind(v)
            )),
            Some(_) => {}
        }
    }
    for (k, v) in reelup {
        if !companion.contains_key(k) && !allowed(k) {
            differences.push(format!(
                "{route}: {what} has {k:?} ({v}), which Companion does not send"
            ));
        }
    }
}

fn compare(route: &str, companion: &Value, reelup: &Value, differences: &mut Vec<String>) {
    match (companion, reelup) {
        (Value::Object(c), Value::Object(r)) => {
            compare_keys(
                route,
                "the answer",
                c,
                r,
                &|k| TOP_LEVEL_EXTRAS.contains(&k) || protocol_keys(route).contains(&k),
                differences,
            );
            if let (Some(Value::Object(cf)), Some(Value::Object(rf))) =
                (c.get("fields"), r.get("fields"))
            {
                compare_keys(route, "fields", cf, rf, &field_extra_allowed, differences);
            }
            if let (Some(Value::Object(cu)), Some(Value::Object(ru))) =
                (c.get("presignedUrls"), r.get("presignedUrls"))
            {
                compare_keys(route, "presignedUrls", cu, ru, &|_| false, differences);
            }
        }
        (Value::Array(c), Value::Array(r)) => {
            if c.len() != r.len() {
                differences.push(format!(
                    "{route}: {} elements, Companion has {}",
                    r.len(),
                    c.len()
                ));
            }
            for (i, (ce, re)) in c.iter().zip(r).enumerate() {
                match (ce, re) {
                    (Value::Object(co), Value::Object(ro)) => compare_keys(
                        route,
                        &format!("element {i}"),
                        co,
                        ro,
                        &|k| protocol_keys(route).contains(&k),
                        differences,
                    ),
                    _ => differences
                        .push(format!("{route}: element {i} is {re}, Companion's is {ce}")),
                }
            }
        }
        _ => differences.push(format!(
            "{route}: the answer is a {} ({reelup}), Companion's is a {} ({companion})",
            kind(reelup),
            kind(companion)
        )),
    }
}

/// Query parameter names of a presigned URL (informational: URLs are opaque to clients).
fn query_names(url: &str) -> BTreeSet<String> {
    url.split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter_map(|p| p.split('=').next())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_s3_route_answers_in_companions_shape() {
    let (server, store) = LocalServer::start_with_store_keys();
    let companion = Companion::start(&store);
    let mut part = vec![0u8; 5 * MIB];
    rand::Rng::fill(&mut rand::rng(), &mut part[..]);

    let theirs = exercise(&companion.endpoint, None, &store, &part, "Companion");
    for (route, status, body) in &theirs.routes {
        assert_eq!(
            *status,
            200,
            "Companion answered {route} with {status}: {body}\nCompanion's log:\n{}",
            companion.logs()
        );
    }
    let ours = exercise(
        &server.endpoint,
        Some(&server.token),
        &store,
        &part,
        "reelup-server",
    );

    let mut differences = Vec::new();
    let mut shown = BTreeMap::new();
    for ((route, _, c), (_, status, r)) in theirs.routes.iter().zip(&ours.routes) {
        if *status != 200 {
            differences.push(format!(
                "{route}: reelup-server answered {status} {r}; Companion answered 200 {c}"
            ));
        } else {
            compare(route, c, r, &mut differences);
        }
        shown.insert(*route, (c.clone(), r.clone()));
    }

    // For the record (not asserted): how the part URLs differ; clients treat them as opaque.
    let (c_part, r_part) = &shown["GET /s3/multipart/{id}/{n}"];
    let c_names = query_names(c_part["url"].as_str().unwrap_or_default());
    let r_names = query_names(r_part["url"].as_str().unwrap_or_default());
    eprintln!(
        "part URL query names only Companion {} signs: {:?}; only reelup-server signs: {:?}",
        companion.version,
        c_names.difference(&r_names).collect::<Vec<_>>(),
        r_names.difference(&c_names).collect::<Vec<_>>()
    );
    assert!(
        !c_names.iter().any(|n| n.starts_with("x-amz-checksum")),
        "Companion was started without requestChecksumCalculation WHEN_REQUIRED: {c_names:?}"
    );

    let mut report = String::new();
    for (route, (c, r)) in &shown {
        report.push_str(&format!("\n{route}\n  Companion: {c}\n  reelup:    {r}"));
    }
    eprintln!("All answers:{report}");
    if !differences.is_empty() {
        panic!(
            "reelup-server's answers differ from Companion {}'s:\n  - {}\n\nAll answers:{report}",
            companion.version,
            differences.join("\n  - ")
        );
    }
}

/// A multipart upload lost behind a plain Companion's back (aborted, as a lifecycle rule
/// would) after two of its parts were sent. Companion passes S3's `NoSuchUpload` on as a
/// 500 with the SDK's exception as `error`; the client knows it by that name, finds no
/// object, and starts a new upload, which ends byte-identical.
#[test]
fn an_upload_lost_behind_companion_starts_again() {
    let (server, store) = LocalServer::start_with_store_keys();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let proxy = proxy_in_front_of(&store, &runtime);
    // Part 3 is held, so the client is killed with parts 1 and 2 recorded.
    proxy.inject(Fault::once(Match::PartNumber(3), FaultKind::Stall));
    let companion = Companion::start(&StoreKeys {
        s3: proxy.url(),
        ..store.clone()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (video, sha) = random_file(dir.path(), "take.mp4", 12 * MIB);
    let upload = |args: &[&str]| {
        let mut cmd = reelup_tests::reelup_command(&data.join("config"), &data);
        cmd.args(args)
            .args(["--multipart-threshold-mib", "5", "--part-size-mib", "5"])
            .env("REELUP_TOKEN", &server.token)
            .env("REELUP_ENDPOINT", &companion.endpoint)
            .env("REELUP_CDN", &server.cdn)
            .env("PATH", dir.path().join("no-ffmpeg"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let mut child = upload(&["upload", video.to_str().expect("utf8")])
        .spawn()
        .expect("spawn");
    let queue = data.join("queue.sqlite3");
    let recorded = || {
        reelup_core::queue::store::QueueStore::open(&queue)
            .ok()
            .and_then(|q| {
                let item = q.list().ok()?.into_iter().next()?;
                Some((q.parts(item.id).ok()?.len(), item))
            })
    };
    let started = std::time::Instant::now();
    let item = loop {
        if let Some((2.., item)) = recorded() {
            break item;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no parts recorded"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "reelup ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().expect("kill");
    child.wait().expect("reap");
    proxy.clear();
    let (key, upload_id) = (item.key.expect("key"), item.upload_id.expect("uploadId"));
    let mut abort = reqwest::Url::parse(&companion.endpoint).expect("endpoint");
    abort
        .path_segments_mut()
        .expect("base")
        .pop_if_empty()
        .extend(["s3", "multipart", upload_id.as_str()]);
    abort.query_pairs_mut().append_pair("key", &key);
    let aborted = http().delete(abort).send().expect("abort");
    assert!(aborted.status().is_success(), "abort: {}", aborted.status());

    let out = upload(&["resume"]).output().expect("resume");
    assert!(
        out.status.success(),
        "resume: {}\nCompanion's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        companion.logs()
    );
    let (_, done) = recorded().expect("the item");
    assert_eq!(
        done.state,
        reelup_core::queue::store::ItemState::Done,
        "{done:?}"
    );
    let new_key = done.key.expect("key");
    assert_ne!(new_key, key, "a new upload");
    assert_eq!(fetch_sha256(&store.object_url(&new_key)), sha);
}
