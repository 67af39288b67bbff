//! Property tests for the engine's parsers of outside input: S3 XML from whatever answers as
//! the store, the profile file people edit by hand, bandwidth rates as people type them, and
//! file names anyone with write access to a watched folder picks. Generated inputs, a few
//! hundred per property, so the whole file runs in a few seconds; `scripts/fuzz.sh` runs the
//! same parsers under libFuzzer for as long as it is given.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config;
use reelup_core::BandwidthLimit;
use reelup_core::VIDEO_EXTENSIONS;
use reelup_core::config::{AfterUpload, ConfigError, Flavour, Profile, ProfileConfig, WatchFolder};
use reelup_core::s3_xml::{elements, error, text_of};
use reelup_core::watch::is_ignored;

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        // Failures are shrunk and printed; nothing is written into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// A TOML string literal, escaped as TOML wants.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Text made of XML's and TOML's own punctuation as well as anything at all, so generated
/// inputs hit the parsers' edges rather than only their first byte.
fn markup() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just("<".to_owned()),
                Just("</".to_owned()),
                Just(">".to_owned()),
                Just("Part".to_owned()),
                Just("Code".to_owned()),
                Just("<Part>".to_owned()),
                Just("</Part>".to_owned()),
                Just("<Code>".to_owned()),
                Just("</Code>".to_owned()),
                "[a-z \n\"=\\[\\]]{1,4}",
                any::<char>().prop_map(String::from),
            ],
            0..40,
        )
        .prop_map(|v| v.concat()),
    ]
}

// ---------------------------------------------------------------------------------- s3_xml

#[derive(Debug, Clone)]
struct Part {
    number: u16,
    etag: String,
    size: u64,
}

/// Element text as S3 sends it: XML-escaped, so never a raw `<`.
fn xml_text() -> impl Strategy<Value = String> {
    "[^<]{0,24}"
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn s3_xml_never_panics_and_agrees_with_itself(xml in markup(), tag in "[A-Za-z]{0,8}") {
        let close = format!("</{tag}>");
        let first = text_of(&xml, &tag);
        if let Some(t) = first {
            prop_assert!(!t.contains(&close));
            let whole = format!("<{tag}>{t}{close}");
            prop_assert!(xml.contains(&whole));
        }
        let all = elements(&xml, &tag);
        prop_assert_eq!(all.first().copied(), first);
        for e in &all {
            prop_assert!(!e.contains(&close));
        }
        if let Some((code, _)) = error(&xml) {
            prop_assert_eq!(Some(code.as_str()), text_of(&xml, "Code"));
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn list_parts_round_trips(
        parts in prop::collection::vec(
            (1u16..=10_000, xml_text(), any::<u64>())
                .prop_map(|(number, etag, size)| Part { number, etag, size }),
            0..20,
        ),
        truncated in any::<bool>(),
        indent in "[ \t\n]{0,3}",
    ) {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        );
        xml += &format!("{indent}<Bucket>b</Bucket>{indent}<IsTruncated>{truncated}</IsTruncated>");
        for p in &parts {
            xml += &format!(
                "{indent}<Part>{indent}<PartNumber>{}</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>{indent}<ETag>{}</ETag><Size>{}</Size></Part>",
                p.number, p.etag, p.size
            );
        }
        xml += "</ListPartsResult>";
        let found = elements(&xml, "Part");
        prop_assert_eq!(found.len(), parts.len());
        for (got, want) in found.iter().zip(&parts) {
            let number = want.number.to_string();
            let size = want.size.to_string();
            prop_assert_eq!(text_of(got, "PartNumber"), Some(number.as_str()));
            prop_assert_eq!(text_of(got, "ETag"), Some(want.etag.as_str()));
            prop_assert_eq!(text_of(got, "Size"), Some(size.as_str()));
        }
        let truncated = truncated.to_string();
        prop_assert_eq!(text_of(&xml, "IsTruncated"), Some(truncated.as_str()));
    }

    #[test]
    fn error_bodies_round_trip(code in "[A-Za-z]{1,30}", message in xml_text(), with_message in any::<bool>()) {
        let body = if with_message {
            format!("<?xml version=\"1.0\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>1</RequestId></Error>")
        } else {
            format!("<Error><Code>{code}</Code></Error>")
        };
        let want_message = if with_message { message } else { String::new() };
        prop_assert_eq!(error(&body), Some((code, want_message)));
    }
}

// -------------------------------------------------------------------------------- profiles

const CONFIG: &str = "/cfg/config.toml";

fn parse_profiles(text: &str) -> Result<ProfileConfig, ConfigError> {
    ProfileConfig::parse(Path::new(CONFIG), text)
}

/// Lines of the shape a profile file has, with keys and values that are often wrong.
fn profile_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("\"x y\"".to_owned()),
        "[a-z.]{0,4}"
    ];
    let key = prop_oneof![
        Just("endpoint"),
        Just("cdn"),
        Just("flavour"),
        Just("parts-in-flight"),
        Just("part-size-mib"),
        Just("bandwidth-limit"),
        Just("path"),
        Just("recursive"),
        Just("after-upload"),
        Just("extensions"),
        Just("stable-secs"),
        Just("default"),
        Just("close-to-tray"),
        Just("nope"),
    ];
    let value = prop_oneof![
        Just("\"https://a.example.com\"".to_owned()),
        Just("\"http://127.0.0.1:9\"".to_owned()),
        Just("\"http://evil.example.com\"".to_owned()),
        Just("\"/rec\"".to_owned()),
        Just("\"move\"".to_owned()),
        Just("\"companion\"".to_owned()),
        Just("[\"mp4\"]".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<String>().prop_map(|s| toml_str(&s)),
        "[^\n]{0,6}",
    ];
    prop_oneof![
        name.clone().prop_map(|n| format!("[profiles.{n}]")),
        name.prop_map(|n| format!("[[profiles.{n}.watch]]")),
        Just("[app]".to_owned()),
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "[^\n]{0,10}",
    ]
}

fn profile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(profile_line(), 0..14).prop_map(|l| l.join("\n")),
    ]
}

fn assert_loads_or_names_a_line(text: &str) -> Result<(), TestCaseError> {
    let lines = text.matches('\n').count() + 1;
    match parse_profiles(text) {
        Ok(config) => {
            for p in &config.profiles {
                prop_assert_eq!(p.validate(), Ok(()));
            }
            if let Some(d) = &config.default {
                prop_assert!(config.get(d).is_some());
            }
        }
        Err(ConfigError::Invalid {
            path,
            line,
            message,
        }) => {
            prop_assert_eq!(path, PathBuf::from(CONFIG));
            prop_assert!(
                (1..=lines).contains(&line),
                "line {line} of {lines}: {message}"
            );
            prop_assert!(!message.trim().is_empty());
        }
        Err(other) => prop_assert!(false, "parse gave {other:?}"),
    }
    Ok(())
}

/// Host names a user could write. A label starting `xn--` is punycode, which the URL
/// parser rightly refuses unless it decodes (`https://xn--` is "not a URL"), so none is made.
fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}"
        .prop_filter("not a punycode label", |h: &String| !h.starts_with("xn--"))
}

fn https_url() -> impl Strategy<Value = String> {
    (host(), prop::option::of(1u16..), "(/[a-z0-9._-]{1,6}){0,2}").prop_map(|(h, port, path)| {
        match port {
            Some(p) => format!("https://{h}:{p}{path}"),
            None => format!("https://{h}{path}"),
        }
    })
}

fn endpoint() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => https_url(),
        1 => (1u16..).prop_map(|p| format!("http://127.0.0.1:{p}")),
        1 => (1u16..).prop_map(|p| format!("http://localhost:{p}")),
        1 => (1u16..).prop_map(|p| format!("http://[::1]:{p}")),
    ]
}

fn watch_folder() -> impl Strategy<Value = WatchFolder> {
    (
        // Any characters a folder name may have, quotes and backslashes included.
        prop::collection::vec("[^/\\x00\n\r]{1,10}", 1..4),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec("[a-z0-9]{1,5}", 0..3),
        1u64..=600,
    )
        .prop_map(
            |(parts, recursive, move_after, extensions, stable_secs)| WatchFolder {
                path: PathBuf::from(format!("/{}", parts.join("/"))),
                recursive,
                after_upload: if move_after {
                    AfterUpload::Move
                } else {
                    AfterUpload::Leave
                },
                extensions,
                stable_secs,
            },
        )
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        "[A-Za-z0-9._-]{1,20}",
        endpoint(),
        any::<bool>(),
        prop::option::of(https_url()),
        1u16..=32,
        prop::option::of(1u64..),
        5u64..=5120,
        prop::collection::vec(watch_folder(), 0..3),
    )
        .prop_map(
            |(
                name,
                endpoint,
                companion,
                cdn,
                parts_in_flight,
                bandwidth_limit,
                part_size_mib,
                watch,
            )| {
                Profile {
                    name,
                    endpoint,
                    flavour: if companion {
                        Flavour::Companion
                    } else {
                        Flavour::ReelupServer
                    },
                    cdn,
                    parts_in_flight,
                    bandwidth_limit,
                    part_size_mib,
                    watch,
                    link_lifetime: None,
                    faststart: Default::default(),
                }
            },
        )
}

/// Profiles with distinct names.
fn profiles() -> impl Strategy<Value = Vec<Profile>> {
    prop::collection::vec(profile(), 0..4).prop_map(|mut ps| {
        let mut seen = std::collections::HashSet::new();
        ps.retain(|p| seen.insert(p.name.clone()));
        ps
    })
}

/// The file as a person would write it, independently of the app's own writer.
fn write_profiles(default: Option<&str>, profiles: &[Profile]) -> String {
    let mut out = String::new();
    if let Some(d) = default {
        out += &format!("default = {}\n", toml_str(d));
    }
    for p in profiles {
        out += &format!("\n[profiles.{}]\n", toml_str(&p.name));
        out += &format!("endpoint = {}\n", toml_str(&p.endpoint));
        out += &format!("flavour = {}\n", toml_str(p.flavour.as_str()));
        if let Some(cdn) = &p.cdn {
            out += &format!("cdn = {}\n", toml_str(cdn));
        }
        out += &format!("parts-in-flight = {}\n", p.parts_in_flight);
        if let Some(b) = p.bandwidth_limit {
            // TOML integers are i64; larger limits are written by the app as what they are.
            out += &format!("bandwidth-limit = {}\n", b.min(i64::MAX as u64));
        }
        out += &format!("part-size-mib = {}\n", p.part_size_mib);
        for w in &p.watch {
            out += &format!("[[profiles.{}.watch]]\n", toml_str(&p.name));
            out += &format!("path = {}\n", toml_str(&w.path.to_string_lossy()));
            out += &format!("recursive = {}\n", w.recursive);
            let after = match w.after_upload {
                AfterUpload::Move => "move",
                AfterUpload::Leave => "leave",
            };
            out += &format!("after-upload = \"{after}\"\n");
            let exts: Vec<String> = w.extensions.iter().map(|e| toml_str(e)).collect();
            out += &format!("extensions = [{}]\n", exts.join(", "));
            out += &format!("stable-secs = {}\n", w.stable_secs);
        }
    }
    out
}

/// Mistakes people make, each on one line of its own.
#[derive(Debug, Clone, Copy)]
enum Mistake {
    /// Not TOML at all, from the first column.
    Syntax,
    /// Not TOML, after a key.
    Value,
    /// A plain-http endpoint for a remote host.
    HttpEndpoint,
}

proptest! {
    #![proptest_config(cases(384))]

    #[test]
    fn profile_text_never_panics_and_errors_name_a_line(text in profile_text()) {
        assert_loads_or_names_a_line(&text)?;
    }
}

proptest! {
    #![proptest_config(cases(192))]

    #[test]
    fn written_profiles_load_back_equal(ps in profiles(), pick in any::<prop::sample::Index>()) {
        let default = (!ps.is_empty()).then(|| ps[pick.index(ps.len())].name.clone());
        let mut want = ps.clone();
        for p in &mut want {
            if let Some(b) = &mut p.bandwidth_limit {
                *b = (*b).min(i64::MAX as u64);
            }
        }
        let text = write_profiles(default.as_deref(), &ps);
        let loaded = parse_profiles(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(loaded.default, default);
        let mut got = loaded.profiles;
        got.sort_by(|a, b| a.name.cmp(&b.name));
        want.sort_by(|a, b| a.name.cmp(&b.name));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_mistake_is_reported_at_its_line(
        ps in profiles().prop_filter("a profile", |p| !p.is_empty()),
        at in any::<prop::sample::Index>(),
        mistake in prop_oneof![Just(Mistake::Syntax), Just(Mistake::Value), Just(Mistake::HttpEndpoint)],
        junk in "[!@$%^&*(]{1,5}",
    ) {
        let text = write_profiles(None, &ps);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let line = match mistake {
            Mistake::Syntax => {
                let i = at.index(lines.len() + 1);
                lines.insert(i, junk.clone());
                i
            }
            Mistake::Value => {
                let i = at.index(lines.len() + 1);
                lines.insert(i, format!("endpoint = {junk}"));
                i
            }
            Mistake::HttpEndpoint => {
                let endpoints: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].starts_with("endpoint = "))
                    .collect();
                let i = endpoints[at.index(endpoints.len())];
                lines[i] = "endpoint = \"http://uploads.example.com\"".into();
                i
            }
        };
        let text = lines.join("\n");
        match parse_profiles(&text) {
            Err(ConfigError::Invalid { line: got, message, .. }) => {
                prop_assert_eq!(got, line + 1, "{}\n---\n{}", message, text);
                if matches!(mistake, Mistake::HttpEndpoint) {
                    prop_assert!(message.contains("use https://"), "{}", message);
                }
            }
            other => prop_assert!(false, "{other:?} for\n{text}"),
        }
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// The app's own writer (which keeps comments) and the loader agree.
    #[test]
    fn saved_profiles_load_back_equal(ps in profiles()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# my notes\n").expect("write");
        let mut config = ProfileConfig::load(&path).expect("load");
        for p in &ps {
            let saved = config.save_profile(None, p.clone());
            if p.bandwidth_limit.is_some_and(|b| b > i64::MAX as u64) {
                // More than TOML can hold: refused with what to do, before anything is written.
                let e = saved.expect_err("a limit TOML cannot hold").to_string();
                prop_assert!(e.contains("the most is"), "{}", e);
                return Ok(());
            }
            saved.map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let again = ProfileConfig::load(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again.profiles, &config.profiles);
        for p in &ps {
            prop_assert_eq!(again.get(&p.name), Some(p));
        }
        prop_assert!(std::fs::read_to_string(&path).expect("read").contains("# my notes"));
    }
}

// ----------------------------------------------------------------------------------- rates

fn parse_rate(text: &str) -> Result<u64, String> {
    BandwidthLimit::parse_rate(text)
}

const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
];

/// `unit` in a random mix of cases.
fn any_case(unit: &str, mask: u32) -> String {
    unit.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < 32 && mask & (1 << i) != 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn rate_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9. ]{0,25}[kKmMgGiIbB/s ]{0,6}",
        "[0-9]{15,40}[kmg]?i?b?",
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn rates_never_panic_and_refuse_with_a_message(text in rate_text()) {
        match parse_rate(&text) {
            Ok(n) => {
                prop_assert!(n >= 1);
                prop_assert_eq!(parse_rate(&n.to_string()), Ok(n));
            }
            Err(m) => prop_assert!(!m.trim().is_empty()),
        }
    }

    #[test]
    fn whole_rates_round_trip_exactly(
        n in prop_oneof![1u64..10_000, 1u64..=u64::MAX],
        unit in prop::sample::select(UNITS),
        mask in any::<u32>(),
        space in prop::sample::select(vec!["", " ", "  "]),
        per_sec in any::<bool>(),
    ) {
        let (unit, scale) = unit;
        let text = format!("{n}{space}{}{}", any_case(unit, mask), if per_sec { "/s" } else { "" });
        match n.checked_mul(scale) {
            Some(bytes) => prop_assert_eq!(parse_rate(&text), Ok(bytes), "{}", text),
            // More than u64::MAX bytes a second is refused, not clamped to the maximum.
            None => {
                let e = parse_rate(&text).expect_err(&text);
                prop_assert!(e.contains("too large"), "{}: {}", text, e);
            }
        }
    }

    #[test]
    fn fractional_rates_round_trip_closely(
        bytes in 1u64..=(1 << 60),
        unit in prop::sample::select(&UNITS[2..]),
    ) {
        let (unit, scale) = unit;
        let number = format!("{:.3}", bytes as f64 / scale as f64);
        let text = format!("{number}{unit}");
        let got = parse_rate(&text);
        // Three decimals of the unit, and f64's 53 bits, are as close as the text can say.
        let slack = scale / 1000 + bytes / (1 << 50) + 1;
        let shown: f64 = number.parse().expect("a number");
        if (shown * scale as f64).round() < 1.0 {
            // Rounds to 0.000 of the unit: refused as no rate at all.
            prop_assert!(got.is_err(), "{}", text);
        } else {
            let got = got.map_err(TestCaseError::fail)?;
            prop_assert!(got.abs_diff(bytes) <= slack, "{} -> {}, want {}", text, got, bytes);
        }
    }

    #[test]
    fn numbers_beyond_u64_are_refused_as_too_large(
        digits in "[1-9][0-9]{20,60}",
        unit in prop::sample::select(UNITS),
        fraction in prop::option::of("[0-9]{1,3}"),
    ) {
        let number = match fraction {
            Some(f) => format!("{digits}.{f}"),
            None => digits,
        };
        let text = format!("{number}{}", unit.0);
        let e = parse_rate(&text).expect_err(&text);
        prop_assert!(e.contains("too large"), "{}: {}", text, e);
    }

    #[test]
    fn garbage_rates_are_refused(
        number in "[0-9.]{0,6}",
        unit in "[a-zA-Z%$ ]{1,6}",
    ) {
        prop_assume!(!UNITS.iter().any(|(u, _)| unit.trim().eq_ignore_ascii_case(u)));
        let text = format!("{number}{unit}");
        let e = parse_rate(&text).expect_err(&text);
        prop_assert!(e.contains("unit") || e.contains("not a rate"), "{}: {}", text, e);
    }
}

// ------------------------------------------------------------------------- watch-folder names

const JUNK: &[&str] = &[".part", ".crdownload", ".tmp", ".download", "~"];

/// A file name: any characters but `/` and NUL, maybe hidden, maybe a video extension in any
/// case, maybe still being downloaded.
fn file_name() -> impl Strategy<Value = (String, bool, bool, bool)> {
    (
        any::<bool>(),
        "[^/\\x00.]{0,12}",
        prop::option::of(prop_oneof![
            prop::sample::select(VIDEO_EXTENSIONS).prop_map(str::to_owned),
            "[^/\\x00.]{0,5}",
        ]),
        any::<u32>(),
        prop::option::of(prop::sample::select(JUNK)),
    )
        .prop_map(|(hidden, stem, ext, mask, junk)| {
            let mut name = if hidden { format!(".{stem}") } else { stem };
            let video = ext
                .as_deref()
                .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if let Some(ext) = ext {
                name += ".";
                name += &any_case(&ext, mask);
            }
            if let Some(j) = junk {
                name += &any_case(j, mask.rotate_left(7));
            }
            // Hidden when it starts with a dot, whether or not the stem is empty (".mp4").
            let hidden = name.starts_with('.');
            (name, hidden, video, junk.is_some())
        })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn hidden_partial_and_uploaded_names_are_never_taken(
        dirs in prop::collection::vec(
            prop_oneof![
                3 => "[^/\\x00.][^/\\x00]{0,6}",
                // A hidden folder; not "." or "..", which name no folder of their own.
                1 => "\\.[^/\\x00.][^/\\x00]{0,5}",
                1 => Just("uploaded".to_owned()),
                1 => Just("UpLoaded".to_owned()),
            ],
            0..3,
        ),
        (name, hidden, video, partial) in file_name(),
    ) {
        // An empty or "." name would make the last folder the file.
        prop_assume!(!name.is_empty() && name != ".");
        let folder = Path::new("/watched");
        let mut path = folder.to_path_buf();
        for d in &dirs {
            path.push(d);
        }
        path.push(&name);
        let ignored = is_ignored(folder, &path, &[]);
        let hidden_dir = dirs.iter().any(|d| d.starts_with('.'));
        let in_uploaded = dirs.first().is_some_and(|d| d.eq_ignore_ascii_case("uploaded"));
        // `name` may itself hold no file name at all ("", "..") or end in a junk suffix.
        let junk_name = JUNK.iter().any(|j| name.to_lowercase().ends_with(j));
        if hidden || hidden_dir || in_uploaded || partial || junk_name {
            prop_assert!(ignored, "{:?} was taken", path);
        } else {
            prop_assert_eq!(ignored, !video, "{:?}", path);
        }
        // A chosen extension list never lets them through either.
        if hidden || hidden_dir || in_uploaded || partial {
            prop_assert!(is_ignored(folder, &path, &["mp4".into(), "txt".into()]));
        }
    }
}

#[cfg(unix)]
proptest! {
    #![proptest_config(cases(512))]

    /// Unix names are bytes, not text: whatever they hold, the filter answers and never takes
    /// a hidden name or one outside the folder.
    #[test]
    fn any_bytes_as_a_name_are_handled(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let folder = Path::new("/watched");
        let path = folder.join(OsStr::from_bytes(&bytes));
        let ignored = is_ignored(folder, &path, &[]);
        let outside = path.strip_prefix(folder).is_err();
        let hidden = path
            .strip_prefix(folder)
            .map(|rel| rel.components().any(|c| c.as_os_str().as_bytes().starts_with(b".")))
            .unwrap_or(true);
        if outside || hidden {
            prop_assert!(ignored, "{:?}", path);
        }
        if !ignored {
            prop_assert!(reelup_core::is_video(&path));
        }
    }
}

// ------------------------------------------------------------------------------ invite links

/// Links built from the format's own pieces in any order and amount, with anything in
/// between, so that generated inputs reach past the scheme check.
fn invite_link() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("reelup://connect?".to_owned()),
        Just("reelup:connect?".to_owned()),
        Just("endpoint=".to_owned()),
        Just("cdn=".to_owned()),
        Just("code=".to_owned()),
        Just("name=".to_owned()),
        Just("&".to_owned()),
        Just("%".to_owned()),
        Just("%2F".to_owned()),
        Just("%FF".to_owned()),
        Just("https%3A%2F%2Fe.example.com".to_owned()),
        Just("http://127.0.0.1:7300".to_owned()),
        Just("http://[::1".to_owned()),
        Just("AQAAAABpZXNhbHQxMjM0NTY3OGFsaWNl".to_owned()),
        "[A-Za-z0-9_-]{0,40}",
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(piece, 0..12).prop_map(|p| p.concat()),
    ]
}

proptest! {
    #![proptest_config(cases(600))]

    /// Whatever a link holds, parsing answers (never panics); what it accepts is usable as is.
    #[test]
    fn invite_links_never_panic(link in invite_link()) {
        match reelup_core::credentials::invite::Invite::parse(&link) {
            Ok(invite) => {
                prop_assert!(reelup_core::config::check_url(&invite.endpoint, "e").is_ok());
                prop_assert!(reelup_core::config::check_url(&invite.cdn, "c").is_ok());
                let name = reelup_core::credentials::invite::profile_name_for(&invite, None);
                prop_assert!(name.is_ok_and(|n| reelup_core::config::check_name(&n).is_ok()));
            }
            Err(e) => prop_assert_eq!(e.code(), reelup_core::ErrorCode::InviteLinkInvalid),
        }
    }
}
