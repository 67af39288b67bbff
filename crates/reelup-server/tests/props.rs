//! Property tests for what reaches `reelup-server` from outside: its TOML file and
//! `REELUP_SERVER_*` overrides (written by operators), the keys clients send back, and the
//! query strings and JSON bodies of the signing routes, sent over real HTTP to a local stack
//! (the signature-checking store behind it). Case counts keep the file to a few seconds;
//! `scripts/fuzz.sh` runs the same inputs under libFuzzer for longer.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reelup_server::config::{ByteSize, LogFormat, ServerConfig, UserConfig};
use reelup_server::users::{User, Users, hash_token};
use reelup_server::{LocalOptions, LocalStack};
use serde_json::{Value, json};

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        // Failures are shrunk and printed; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

const FILE: &str = "server.toml";

fn parse(
    text: &str,
    env: &[(String, String)],
) -> Result<ServerConfig, reelup_server::config::ConfigError> {
    ServerConfig::parse(text, FILE, env.iter().cloned())
}

// ------------------------------------------------------------------------------ server TOML

/// Lines shaped like the server's file, with names and values that are often wrong.
fn server_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "listen",
        "bucket",
        "region",
        "endpoint",
        "path_style",
        "cdn_base_url",
        "url_lifetime_secs",
        "max_object_size",
        "allowed_content_types",
        "log_format",
        "role_arn",
        "session_duration_secs",
        "requests_per_minute",
        "burst",
        "name",
        "prefix",
        "token_sha256",
        "nope",
    ]);
    let value = prop_oneof![
        Just("\"videos\"".to_owned()),
        Just("\"https://d1.cloudfront.net\"".to_owned()),
        Just("\"http://cdn.example.com\"".to_owned()),
        Just("\"127.0.0.1:0\"".to_owned()),
        Just("\"50 GiB\"".to_owned()),
        Just("[\"video/*\"]".to_owned()),
        Just("\"arn:aws:iam::1:role/r\"".to_owned()),
        Just(toml_str(&"a".repeat(64))),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<String>().prop_map(|s| toml_str(&s)),
        "[^\n]{0,6}",
    ];
    prop_oneof![
        Just("[credentials]".to_owned()),
        Just("[rate_limit]".to_owned()),
        Just("[[users]]".to_owned()),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "[^\n]{0,10}",
    ]
}

fn env_var() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "LISTEN",
            "BUCKET",
            "PATH_STYLE",
            "CDN_BASE_URL",
            "URL_LIFETIME_SECS",
            "MAX_OBJECT_SIZE",
            "LOG_FORMAT",
            "ROLE_ARN",
            "SESSION_DURATION_SECS",
            "BURST",
            "CONFIG",
            "BUKET",
        ])
        .prop_map(|n| format!("REELUP_SERVER_{n}")),
        "[A-Z_]{0,20}",
    ];
    let value = prop_oneof![
        Just("true".to_owned()),
        Just("maybe".to_owned()),
        Just("videos".to_owned()),
        Just("50 GiB".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>(),
    ];
    (name, value)
}

fn assert_problems_point_somewhere(
    text: &str,
    env: &[(String, String)],
) -> Result<(), TestCaseError> {
    let lines = text.matches('\n').count() + 1;
    let Err(e) = parse(text, env) else {
        return Ok(());
    };
    prop_assert!(!e.problems.is_empty());
    for p in &e.problems {
        prop_assert!(!p.message.trim().is_empty(), "{:?}", p);
        match p.at.strip_prefix("server.toml:") {
            Some(n) => {
                let n: usize = n
                    .parse()
                    .map_err(|_| TestCaseError::fail(format!("{p:?}")))?;
                prop_assert!((1..=lines).contains(&n), "line {} of {}: {}", n, lines, p);
            }
            // Otherwise it names the overrides to blame.
            None => prop_assert!(
                p.at.split(", ")
                    .all(|name| env.iter().any(|(k, _)| k == name)),
                "{:?} names neither a line of the file nor an override given",
                p
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn server_config_never_panics_and_problems_point_at_a_line_or_a_variable(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(server_line(), 0..14).prop_map(|l| l.join("\n")),
        ],
        env in prop::collection::vec(env_var(), 0..4),
    ) {
        assert_problems_point_somewhere(&text, &env)?;
    }
}

#[derive(Debug, Clone)]
struct Settings {
    listen_port: u16,
    bucket: String,
    region: String,
    endpoint: Option<String>,
    path_style: bool,
    cdn: String,
    lifetime: u64,
    max_size: u64,
    /// How `max_size` is written: bytes, or a count of this unit.
    max_size_text: Option<String>,
    types: Vec<String>,
    text_log: bool,
    users: Vec<(String, Option<String>, String)>,
}

fn bucket() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9.-]{1,20}[a-z0-9]"
}

fn https_url() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}(\\.[a-z]{2,5}){1,2}".prop_map(|h| format!("https://{h}"))
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,20}"
}

fn settings() -> impl Strategy<Value = Settings> {
    let size = prop_oneof![
        (1u64..=5 << 40).prop_map(|n| (n, None)),
        (
            1u64..=5 * 1024,
            prop::sample::select(vec![
                ("GiB", 1u64 << 30),
                ("MiB", 1 << 20),
                ("GB", 1_000_000_000)
            ])
        )
            .prop_filter("at most 5 TiB", |(n, (_, s))| n * s <= 5 << 40)
            .prop_map(|(n, (unit, scale))| (n * scale, Some(format!("{n} {unit}")))),
    ];
    let users = prop::collection::vec((name(), prop::option::of(name()), any::<[u8; 32]>()), 0..4)
        .prop_map(|us| {
            let (mut names, mut prefixes) = (BTreeSet::new(), BTreeSet::new());
            us.into_iter()
                .filter(|(n, p, _)| {
                    names.insert(n.clone()) && prefixes.insert(p.clone().unwrap_or(n.clone()))
                })
                .map(|(n, p, h)| (n, p, h.iter().map(|b| format!("{b:02x}")).collect()))
                .collect::<Vec<_>>()
        })
        // Distinct tokens too.
        .prop_filter("distinct hashes", |us| {
            us.iter().map(|u| &u.2).collect::<BTreeSet<_>>().len() == us.len()
        });
    (
        (
            1u16..,
            bucket(),
            "[a-z]{2}-[a-z]{4,9}-[1-9]",
            prop::option::of(https_url()),
            any::<bool>(),
        ),
        (
            https_url(),
            1u64..=604_800,
            size,
            prop::collection::vec(
                prop::sample::select(vec![
                    "video/*",
                    "video/mp4",
                    "video/quicktime",
                    "video/x-matroska",
                    "application/mxf",
                ])
                .prop_map(str::to_owned),
                1..3,
            ),
            any::<bool>(),
        ),
        users,
    )
        .prop_map(
            |(
                (listen_port, bucket, region, endpoint, path_style),
                (cdn, lifetime, (max_size, max_size_text), types, text_log),
                users,
            )| {
                Settings {
                    listen_port,
                    bucket,
                    region,
                    endpoint,
                    path_style,
                    cdn,
                    lifetime,
                    max_size,
                    max_size_text,
                    types,
                    text_log,
                    users,
                }
            },
        )
}

fn write_settings(s: &Settings) -> String {
    let mut out = format!("listen = \"127.0.0.1:{}\"\n", s.listen_port);
    out += &format!(
        "bucket = {}\nregion = {}\n",
        toml_str(&s.bucket),
        toml_str(&s.region)
    );
    if let Some(e) = &s.endpoint {
        out += &format!("endpoint = {}\n", toml_str(e));
    }
    out += &format!(
        "path_style = {}\ncdn_base_url = {}\n",
        s.path_style,
        toml_str(&s.cdn)
    );
    out += &format!("url_lifetime_secs = {}\n", s.lifetime);
    match &s.max_size_text {
        Some(t) => out += &format!("max_object_size = {}\n", toml_str(t)),
        None => out += &format!("max_object_size = {}\n", s.max_size),
    }
    let types: Vec<String> = s.types.iter().map(|t| toml_str(t)).collect();
    out += &format!("allowed_content_types = [{}]\n", types.join(", "));
    out += &format!(
        "log_format = \"{}\"\n",
        if s.text_log { "text" } else { "json" }
    );
    out += "\n[rate_limit]\nrequests_per_minute = 60\nburst = 10\n";
    for (name, prefix, hash) in &s.users {
        out += &format!("\n[[users]]\nname = {}\n", toml_str(name));
        if let Some(p) = prefix {
            out += &format!("prefix = {}\n", toml_str(p));
        }
        out += &format!("token_sha256 = \"{hash}\"\n");
    }
    out
}

fn check_loaded(c: &ServerConfig, s: &Settings) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.listen.port(), s.listen_port);
    prop_assert_eq!(&c.bucket, &s.bucket);
    prop_assert_eq!(&c.region, &s.region);
    prop_assert_eq!(&c.endpoint, &s.endpoint);
    prop_assert_eq!(c.path_style, s.path_style);
    prop_assert_eq!(&c.cdn_base_url, &s.cdn);
    prop_assert_eq!(c.url_lifetime_secs, s.lifetime);
    prop_assert_eq!(c.max_object_size, ByteSize(s.max_size));
    prop_assert_eq!(&c.allowed_content_types, &s.types);
    prop_assert_eq!(
        c.log_format,
        if s.text_log {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    );
    prop_assert_eq!(c.users.len(), s.users.len());
    for (u, (name, prefix, hash)) in c.users.iter().zip(&s.users) {
        prop_assert_eq!(&u.name, name);
        prop_assert_eq!(u.prefix(), prefix.as_deref().unwrap_or(name));
        prop_assert_eq!(&u.token_sha256.0, &vec![hash.clone()]);
    }
    Ok(())
}

/// Mistakes operators make, each on one line of its own.
#[derive(Debug, Clone, Copy)]
enum Mistake {
    /// Not TOML, from the first column.
    Syntax,
    /// A setting of the wrong type, among the top-level settings.
    WrongType,
    /// A CDN that is plain http.
    HttpCdn,
}

proptest! {
    #![proptest_config(cases(96))]

    /// Through `ServerConfig::load`, as `reelup-server serve` and `check` read it, with
    /// overrides from the environment on top.
    #[test]
    fn written_configs_load_back_equal_with_overrides(
        s in settings(),
        bucket in prop::option::of(bucket()),
        lifetime in prop::option::of(1u64..=604_800),
        path_style in prop::option::of(prop::sample::select(vec![("true", true), ("0", false), ("YES", true), ("no", false)])),
        text_log in prop::option::of(any::<bool>()),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reelup-server.toml");
        std::fs::write(&path, write_settings(&s)).expect("write");
        let mut env = vec![("HOME".to_owned(), "/root".to_owned()), ("REELUP_SERVER_CONFIG".to_owned(), "x".to_owned())];
        let mut want = s.clone();
        if let Some(b) = bucket {
            env.push(("REELUP_SERVER_BUCKET".into(), b.clone()));
            want.bucket = b;
        }
        if let Some(l) = lifetime {
            env.push(("REELUP_SERVER_URL_LIFETIME_SECS".into(), l.to_string()));
            want.lifetime = l;
        }
        if let Some((text, value)) = path_style {
            env.push(("REELUP_SERVER_PATH_STYLE".into(), text.into()));
            want.path_style = value;
        }
        if let Some(t) = text_log {
            env.push(("REELUP_SERVER_LOG_FORMAT".into(), if t { "text" } else { "json" }.into()));
            want.text_log = t;
        }
        let loaded = ServerConfig::load(&path, env)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", write_settings(&s))))?;
        check_loaded(&loaded, &want)?;
    }

    #[test]
    fn a_mistake_is_reported_at_its_line(
        s in settings(),
        at in any::<prop::sample::Index>(),
        mistake in prop_oneof![Just(Mistake::Syntax), Just(Mistake::WrongType), Just(Mistake::HttpCdn)],
        junk in "[!@$%^&*(]{1,5}",
        wrong in prop::sample::select(vec![
            "url_lifetime_secs = \"soon\"",
            "path_style = \"maybe\"",
            "log_format = 5",
            "allowed_content_types = \"video/*\"",
            "max_object_size = true",
        ]),
    ) {
        let text = write_settings(&s);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // Top-level settings end where the first table starts.
        let top = lines.iter().position(|l| l.starts_with('[')).unwrap_or(lines.len());
        let line = match mistake {
            Mistake::Syntax => {
                let i = at.index(lines.len() + 1);
                lines.insert(i, junk);
                i
            }
            Mistake::WrongType => {
                // In place of the same setting if it is there, else as a new one.
                let key = wrong.split(' ').next().expect("key");
                match lines[..top].iter().position(|l| l.starts_with(&format!("{key} = "))) {
                    Some(i) => {
                        lines[i] = wrong.to_owned();
                        i
                    }
                    None => {
                        let i = at.index(top + 1);
                        lines.insert(i, wrong.to_owned());
                        i
                    }
                }
            }
            Mistake::HttpCdn => {
                let i = lines.iter().position(|l| l.starts_with("cdn_base_url = ")).expect("cdn line");
                lines[i] = "cdn_base_url = \"http://cdn.example.com\"".into();
                i
            }
        };
        let text = lines.join("\n");
        let e = parse(&text, &[]).expect_err(&text);
        let want = format!("{FILE}:{}", line + 1);
        prop_assert!(
            e.problems.iter().any(|p| p.at == want),
            "want a problem at {}, got:\n{}\n---\n{}",
            want,
            e,
            text
        );
    }

    #[test]
    fn bad_overrides_are_named(
        s in settings(),
        (name, value) in prop::sample::select(vec![
            ("REELUP_SERVER_PATH_STYLE", "maybe"),
            ("REELUP_SERVER_URL_LIFETIME_SECS", "soon"),
            ("REELUP_SERVER_BURST", "1.5"),
            ("REELUP_SERVER_LOG_FORMAT", "xml"),
            ("REELUP_SERVER_BUKET", "videos"),
        ]),
    ) {
        let env = vec![(name.to_owned(), value.to_owned())];
        let e = parse(&write_settings(&s), &env).expect_err(name);
        prop_assert!(e.problems.iter().any(|p| p.at == name), "{}", e);
    }
}

// ------------------------------------------------------------------------------------ keys

/// A user as the server knows them: from the config, found by their token.
fn user(name: &str, prefix: &str) -> Arc<User> {
    let token = format!("rlp_{name}_{prefix}");
    let config = UserConfig {
        name: name.into(),
        prefix: Some(prefix.into()),
        token_sha256: hash_token(&token)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into(),
    };
    Users::from_config(&[config])
        .authenticate(&token)
        .expect("the user's own token")
}

fn key_parts() -> impl Strategy<Value = (String, String, Option<String>)> {
    (
        name(),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string()),
        prop::option::of("[a-z0-9]{1,8}"),
    )
}

fn key_of(prefix: &str, id: &str, ext: &Option<String>) -> String {
    match ext {
        Some(e) => format!("{prefix}/{id}.{e}"),
        None => format!("{prefix}/{id}"),
    }
}

/// Ways to bend a key a user owns into one that names something else.
fn bend(key: &str, prefix: &str, id: &str, ext: &Option<String>, how: u8) -> String {
    let rest = &key[prefix.len() + 1..];
    match how % 14 {
        0 => format!("{prefix}/../{rest}"),
        1 => format!("{prefix}/x/{rest}"),
        2 => format!("{prefix}%2F{rest}"),
        3 => format!("{prefix}/{rest}%00"),
        4 => key_of(prefix, &id.to_uppercase(), ext),
        5 => format!("{key}."),
        6 => format!(
            "{prefix}/{id}.{}",
            ext.as_deref().unwrap_or("mp4").to_uppercase()
        ),
        7 => format!("{prefix}/{id}.mp4x12345"),
        8 => format!("/{key}"),
        9 => format!("{prefix}//{rest}"),
        10 => format!("{prefix}/{}", id.replace('-', "")),
        11 => format!("{prefix}/{{{id}}}"),
        12 => format!("{key}/"),
        _ => format!("{prefix}/{id}..{}", ext.as_deref().unwrap_or("mp4")),
    }
}

// ------------------------------------------------------------- checksum values from clients

proptest! {
    #![proptest_config(cases(1024))]

    /// Every CRC parses back from its S3 form, and changing any one character of that form
    /// gives another CRC or a refusal, never the same one.
    #[test]
    fn crc64nvme_values_round_trip_and_every_edit_is_seen(
        value in any::<u64>(),
        at in 0usize..12,
        to in any::<char>(),
    ) {
        use reelup_server::checksum::Crc64Nvme;
        let text = Crc64Nvme(value).to_base64();
        prop_assert_eq!(text.len(), 12);
        prop_assert_eq!(Crc64Nvme::parse(&text), Ok(Crc64Nvme(value)));
        let mut chars: Vec<char> = text.chars().collect();
        prop_assume!(chars[at] != to);
        chars[at] = to;
        let edited: String = chars.into_iter().collect();
        prop_assert_ne!(Crc64Nvme::parse(&edited), Ok(Crc64Nvme(value)), "{}", edited);
    }

    /// Any text at all: a CRC or a refusal that says what was wrong, briefly.
    #[test]
    fn arbitrary_checksum_text_never_panics(text in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9+/=_-]{10,14}",
    ]) {
        use reelup_server::checksum::Crc64Nvme;
        match Crc64Nvme::parse(&text) {
            Ok(crc) => prop_assert_eq!(crc.to_base64(), text),
            Err(message) => prop_assert!(message.len() < 400, "{}", message),
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn keys_are_owned_by_their_user_only_and_bent_keys_by_nobody(
        (prefix, id, ext) in key_parts(),
        other in name(),
        how in any::<u8>(),
    ) {
        let key = key_of(&prefix, &id, &ext);
        let owner = user("u", &prefix);
        prop_assert!(owner.owns(&key), "{}", key);
        if other != prefix {
            prop_assert!(!user("o", &other).owns(&key), "{} owned by {}", key, other);
        }
        let bent = bend(&key, &prefix, &id, &ext, how);
        // Upper-casing digits changes nothing.
        prop_assume!(bent != key);
        prop_assert!(!owner.owns(&bent), "{} owns the bent key {}", prefix, bent);
    }

    #[test]
    fn arbitrary_keys_are_owned_only_in_the_server_shape(key in prop_oneof![
        any::<String>(),
        "alice/[0-9a-fA-F-]{30,40}(\\.[a-zA-Z0-9.]{0,10})?",
    ]) {
        let owned = user("a", "alice").owns(&key);
        if owned {
            let rest = key.strip_prefix("alice/").expect("prefix");
            let (id, ext) = rest.split_once('.').map_or((rest, None), |(i, e)| (i, Some(e)));
            prop_assert_eq!(uuid::Uuid::parse_str(id).ok().map(|u| u.hyphenated().to_string()), Some(id.to_owned()));
            prop_assert!(ext.is_none_or(|e| (1..=8).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())), "{}", key);
        }
    }
}

// --------------------------------------------------------------- the routes, over real HTTP

const ALICE: &str = "rlp_alice_props_token";
const BOB: &str = "rlp_bob_props_token";

struct Stack {
    rt: tokio::runtime::Runtime,
    stack: Option<LocalStack>,
    http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = LocalOptions::new(dir.path().to_owned());
        let user = |name: &str, token: &str| UserConfig {
            name: name.into(),
            prefix: None,
            token_sha256: hash_token(token)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into(),
        };
        opts.users = Some(Users::from_config(&[
            user("alice", ALICE),
            user("bob", BOB),
        ]));
        let stack = rt.block_on(LocalStack::start(opts)).expect("local stack");
        Self {
            rt,
            stack: Some(stack),
            http: reqwest::blocking::Client::new(),
            _dir: dir,
        }
    }

    fn endpoint(&self) -> &str {
        &self.stack.as_ref().expect("running").endpoint
    }

    /// Sends a request as alice; the status and the body, which must be JSON.
    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<(u16, Value), TestCaseError> {
        let req = req
            .bearer_auth(ALICE)
            .build()
            .map_err(|e| TestCaseError::reject(e.to_string()))?;
        let shown = format!("{} {}", req.method(), req.url());
        let resp = self.http.execute(req).expect("the server answers");
        let status = resp.status().as_u16();
        let body = resp.text().expect("body");
        prop_assert!(status < 500, "{} -> {}: {}", shown, status, body);
        let json: Value = serde_json::from_str(&body)
            .map_err(|_| TestCaseError::fail(format!("{shown} -> {status}: not JSON: {body}")))?;
        if status >= 400 {
            prop_assert!(
                json["error"].is_string() && json["message"].is_string(),
                "{}",
                json
            );
        }
        Ok((status, json))
    }

    fn create(&self, filename: &str) -> (String, String) {
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/s3/multipart", self.endpoint()))
                    .json(&json!({"filename": filename, "type": "video/mp4"})),
            )
            .expect("create");
        assert_eq!(status, 200, "{body}");
        (
            body["key"].as_str().expect("key").to_owned(),
            body["uploadId"].as_str().expect("uploadId").to_owned(),
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(s) = self.stack.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn alice_owns(key: &str) -> bool {
    user("alice", "alice").owns(key)
}

fn bob_owns(key: &str) -> bool {
    user("bob", "bob").owns(key)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Query strings: pairs of known and unknown names with any values, raw junk, or both.
fn query() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            prop::sample::select(vec![
                "filename",
                "type",
                "size",
                "metadata[name]",
                "metadata[]",
                "key",
                "partNumbers"
            ])
            .prop_map(str::to_owned),
            any::<String>(),
        ],
        prop_oneof![
            Just("clip.mp4".to_owned()),
            Just("video/mp4".to_owned()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<String>(),
        ],
        any::<bool>(),
    )
        .prop_map(|(k, v, raw)| {
            if raw {
                format!("{k}={v}")
            } else {
                format!("{}={}", enc(&k), enc(&v))
            }
        });
    prop_oneof![
        prop::collection::vec(pair, 0..5).prop_map(|p| p.join("&")),
        "[ -~]{0,30}",
    ]
}

/// JSON values of every shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::from),
        Just(Value::from("video/mp4")),
        Just(Value::from("clip.mp4")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "filename",
                        "type",
                        "metadata",
                        "parts",
                        "PartNumber",
                        "ETag"
                    ])
                    .prop_map(str::to_owned),
                    any::<String>(),
                ],
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn filenames_give_keys_of_their_user_only() {
    let s = Stack::start();
    let check = |filename: String| {
        prop_assume!(!filename.is_empty());
        let (status, body) = s.send(
            s.http
                .post(format!("{}/s3/multipart", s.endpoint()))
                .json(&json!({"filename": filename, "type": "video/mp4"})),
        )?;
        prop_assert_eq!(status, 200, "{}", body);
        let key = body["key"].as_str().expect("key");
        prop_assert!(
            alice_owns(key) && !bob_owns(key),
            "{} for {:?}",
            key,
            filename
        );
        let (status, body) = s.send(s.http.get(format!(
            "{}/s3/params?filename={}&type=video%2Fmp4",
            s.endpoint(),
            enc(&filename)
        )))?;
        prop_assert_eq!(status, 200, "{}", body);
        let key = body["fields"]["key"].as_str().expect("key");
        prop_assert!(
            alice_owns(key) && !bob_owns(key),
            "{} for {:?}",
            key,
            filename
        );
        Ok(())
    };
    // Found by this test at 1 run in 20: names a store reads as RFC 2047 encoded words
    // (s3s panicked on `=?=`, and the create answered 502).
    for found in ["=?=", "=?utf-8?B?w6k=?=", "=?x?Z?abc?=", "=?utf-8?Q?=ZZ?="] {
        check(found.to_owned()).unwrap_or_else(|e| panic!("{found:?}: {e}"));
    }
    let mut runner = TestRunner::new(cases(64));
    runner.run(&any::<String>(), check).unwrap();
}

#[test]
fn query_strings_and_json_bodies_never_get_a_5xx_or_a_key_outside_the_prefix() {
    let s = Stack::start();
    let (key, upload_id) = s.create("seed.mp4");
    let id = enc(&upload_id);
    let mut runner = TestRunner::new(cases(96));
    runner
        .run(&(0u8..5, query(), json_value()), |(route, query, body)| {
            let e = s.endpoint();
            let req = match route {
                0 => s.http.get(format!("{e}/s3/params?{query}")),
                1 => s.http.get(format!(
                    "{e}/s3/multipart/{id}/batch?key={}&{query}",
                    enc(&key)
                )),
                2 => s.http.post(format!("{e}/s3/multipart")).json(&body),
                3 => s.http.get(format!("{e}/s3/multipart/{id}?{query}")),
                _ => s
                    .http
                    .post(format!("{e}/s3/multipart/{id}/complete?{query}"))
                    .json(&body),
            };
            let (status, json) = s.send(req)?;
            if status == 200 {
                for k in [&json["key"], &json["fields"]["key"]] {
                    if let Some(k) = k.as_str() {
                        prop_assert!(alice_owns(k), "route {} handed out {}", route, k);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn part_number_lists_sign_exactly_the_valid_numbers() {
    let s = Stack::start();
    let (key, upload_id) = s.create("seed.mp4");
    let item = prop_oneof![
        4 => (1u32..=10_000).prop_map(|n| n.to_string()),
        1 => Just("0".to_owned()),
        1 => Just("10001".to_owned()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just(String::new()),
        1 => "[ +-]?[0-9a-z ]{1,4}",
        1 => Just("007".to_owned()),
    ];
    let mut runner = TestRunner::new(cases(128));
    runner
        .run(&prop::collection::vec(item, 0..12), |items| {
            let list = items.join(",");
            let (status, json) = s.send(s.http.get(format!(
                "{}/s3/multipart/{}/batch?key={}&partNumbers={}",
                s.endpoint(),
                enc(&upload_id),
                enc(&key),
                enc(&list)
            )))?;
            let numbers: Option<BTreeSet<u32>> = items
                .iter()
                .filter(|i| !i.is_empty())
                .map(|i| i.parse::<u32>().ok().filter(|n| (1..=10_000).contains(n)))
                .collect();
            match numbers {
                Some(numbers) if !numbers.is_empty() => {
                    prop_assert_eq!(status, 200, "{}: {}", list, json);
                    let urls = json["presignedUrls"].as_object().expect("presignedUrls");
                    let signed: BTreeSet<u32> =
                        urls.keys().map(|k| k.parse().expect("number")).collect();
                    prop_assert_eq!(signed, numbers);
                    for (n, url) in urls {
                        let url = url::Url::parse(url.as_str().expect("url")).expect("a URL");
                        let want = format!("/reelup/{key}");
                        prop_assert_eq!(url.path(), want.as_str());
                        let part = url
                            .query_pairs()
                            .find(|(k, _)| k == "partNumber")
                            .map(|(_, v)| v.into_owned());
                        prop_assert_eq!(part.as_deref(), Some(n.as_str()));
                    }
                }
                _ => {
                    prop_assert_eq!(status, 400, "{}: {}", list, json);
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn completing_with_parts_never_uploaded_is_the_clients_mistake() {
    let s = Stack::start();
    let mut runner = TestRunner::new(cases(12));
    runner
        .run(
            &prop::collection::vec(prop_oneof![Just(1u32), 2u32..=10_000], 1..5),
            |numbers| {
                let (key, upload_id) = s.create("clip.mp4");
                let (id, k) = (enc(&upload_id), enc(&key));
                // Part 1 is uploaded (a last part may be small); the others never are.
                let (status, signed) = s.send(
                    s.http
                        .get(format!("{}/s3/multipart/{id}/1?key={k}", s.endpoint())),
                )?;
                prop_assert_eq!(status, 200, "{}", signed);
                let put = s
                    .http
                    .put(signed["url"].as_str().expect("url"))
                    .body(vec![7u8; 1024])
                    .send()
                    .expect("PUT");
                prop_assert!(put.status().is_success(), "{:?}", put.status());
                let etag = put.headers()["etag"].to_str().expect("etag").to_owned();
                let parts: Vec<Value> = numbers
                    .iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|n| json!({"PartNumber": n, "ETag": etag}))
                    .collect();
                let (status, body) = s.send(
                    s.http
                        .post(format!(
                            "{}/s3/multipart/{id}/complete?key={k}",
                            s.endpoint()
                        ))
                        .json(&json!({ "parts": parts })),
                )?;
                if numbers.iter().all(|n| *n == 1) {
                    prop_assert_eq!(status, 200, "{}", body);
                } else {
                    prop_assert_eq!(status, 400, "{}", body);
                    prop_assert_eq!(body["error"].as_str(), Some("invalid_part"), "{}", body);
                }
                Ok(())
            },
        )
        .unwrap();
}

// ------------------------------------------------------------------- CloudFront signed URLs

/// What a viewer puts in a CDN URL's query: any text, or signing parameters with hostile
/// values. None may panic the CDN's check, and none but a real signature may pass it.
#[test]
fn no_query_a_viewer_sends_passes_the_signature_check_without_the_key() {
    use reelup_server::cloudfront::verify::SignedQuery;
    use reelup_server::cloudfront::{KeyGroup, LinkSigner, Policy, Verifier};
    let signer = LinkSigner::generate_p256("KPROP").expect("key");
    let verifier = Verifier::new(
        KeyGroup::default()
            .with("KPROP", signer.public_key())
            .expect("id"),
        Arc::new(reelup_server::store::SystemClock),
    );
    let resource = "http://127.0.0.1:7300/cdn/alice/0b7c9a3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b.mp4";
    let good = signer.sign_canned(resource, 4_000_000_000);
    let good_query = good.url.split_once('?').expect("query").1.to_owned();
    let ip = "127.0.0.1".parse().expect("ip");
    assert_eq!(
        verifier.check(resource, &SignedQuery::parse(Some(&good_query)), ip),
        Ok(())
    );
    let param = prop_oneof![
        Just("Expires".to_owned()),
        Just("Policy".to_owned()),
        Just("Signature".to_owned()),
        Just("Key-Pair-Id".to_owned()),
        "[A-Za-z-]{1,12}"
    ];
    let value = prop_oneof!["[A-Za-z0-9~_=+/%-]{0,400}", Just("KPROP".to_owned())];
    let query = prop_oneof![
        ".{0,300}",
        prop::collection::vec((param, value), 0..6).prop_map(|pairs| pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")),
        // The real link with one character changed.
        (0..good_query.len(), any::<char>()).prop_map({
            let good_query = good_query.clone();
            move |(at, c)| {
                let mut chars: Vec<char> = good_query.chars().collect();
                chars[at] = c;
                chars.into_iter().collect::<String>()
            }
        }),
    ];
    TestRunner::new(cases(512))
        .run(&query, |q| {
            let passed = verifier
                .check(resource, &SignedQuery::parse(Some(&q)), ip)
                .is_ok();
            prop_assert!(q == good_query || !passed, "{q}");
            Ok(())
        })
        .expect("property");
    // Any bytes as a Policy document: parsed or refused, never a panic.
    TestRunner::new(cases(512))
        .run(&prop::collection::vec(any::<u8>(), 0..300), |bytes| {
            let _ = Policy::parse(&bytes);
            Ok(())
        })
        .expect("property");
}
