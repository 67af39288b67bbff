//! What the fuzz targets share: the shape of the keys the server hands out, and a local stack
//! (the real signing routes and the signature-checking store) on loopback.

use std::sync::OnceLock;

use reelup_core::Secret;
use reelup_server::{LocalOptions, LocalStack};
use serde_json::Value;

/// `<prefix>/<lower-case hyphenated uuid>[.<1-8 lower-case letters or digits>]`, written out
/// here independently of the server's own check.
pub fn has_server_shape(key: &str, prefix: &str) -> bool {
    let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    let (id, ext) = match rest.split_once('.') {
        Some((id, ext)) => (id, Some(ext)),
        None => (rest, None),
    };
    let id_ok = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    let ext_ok = ext.is_none_or(|e| {
        (1..=8).contains(&e.len())
            && e.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    id_ok && ext_ok
}

/// A local stack for the whole fuzzing process, its one user `dev` holding [`Harness::TOKEN`],
/// and one multipart upload made at start for the routes that need one.
pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub endpoint: String,
    pub http: reqwest::Client,
    pub key: String,
    pub upload_id: String,
}

impl Harness {
    pub const TOKEN: &str = "fuzz-token";

    pub fn get() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(Self::start)
    }

    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        // scripts/fuzz.sh gives a data dir it removes afterwards; a bare run leaves one in /tmp.
        let dir = std::env::var_os("REELUP_FUZZ_DATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| tempfile::tempdir().expect("tempdir").keep());
        let mut opts = LocalOptions::new(dir);
        opts.token = Some(Secret::new(Self::TOKEN));
        let stack = rt.block_on(LocalStack::start(opts)).expect("local stack");
        let http = reqwest::Client::new();
        let endpoint = stack.endpoint.clone();
        let created: Value = rt.block_on(async {
            http.post(format!("{endpoint}/s3/multipart"))
                .bearer_auth(Self::TOKEN)
                .json(&serde_json::json!({"filename": "seed.mp4", "type": "video/mp4"}))
                .send()
                .await
                .expect("create")
                .json()
                .await
                .expect("create json")
        });
        // The servers run on the runtime's worker until the process ends.
        std::mem::forget(stack);
        Harness {
            rt,
            endpoint,
            http,
            key: created["key"].as_str().expect("key").to_owned(),
            upload_id: created["uploadId"].as_str().expect("uploadId").to_owned(),
        }
    }

    /// Sends `req` with the token; the status and the body, which must be JSON with an
    /// `error` and a `message` when refused, and never a 5xx.
    pub fn send(&self, req: reqwest::RequestBuilder) -> Option<(u16, Value)> {
        let req = req.bearer_auth(Self::TOKEN).build().ok()?;
        let shown = format!("{} {}", req.method(), req.url());
        let (status, body) = self.rt.block_on(async {
            let resp = self.http.execute(req).await.expect("the server answers");
            let status = resp.status().as_u16();
            (status, resp.bytes().await.expect("body"))
        });
        assert!(
            status < 500,
            "{shown} -> {status}: {}",
            String::from_utf8_lossy(&body)
        );
        // A path no route has (a `/` in a part number) is the router's bare 404 or 405.
        if matches!(status, 404 | 405) && body.is_empty() {
            return Some((status, Value::Null));
        }
        let json: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{shown} -> {status}: not JSON: {body:?}"));
        if status >= 400 {
            assert!(
                json["error"].is_string() && json["message"].is_string(),
                "{json}"
            );
        }
        Some((status, json))
    }
}
