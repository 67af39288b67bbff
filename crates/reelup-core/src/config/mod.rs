//! Profiles: where uploads go and how, kept in one TOML file in the config dir that the app
//! and the CLI share. Tokens are never in this file; they live in the OS keyring
//! ([`crate::credentials`]).
//!
//! ```toml
//! default = "local"
//!
//! [profiles.local]
//! endpoint = "http://127.0.0.1:8765"
//! cdn = "http://127.0.0.1:8765/cdn"
//! faststart = "always"   # or "ask", or "off"
//!
//! [[profiles.local.watch]]
//! path = "/home/me/Videos/Recordings"
//! recursive = true
//! after-upload = "move"
//! ```
//!
//! What must stay true: a mistake in the file never stops the app; [`ProfileConfig::load`]
//! names the file, the line and the fix, and writing keeps the user's comments elsewhere
//! in the file.

pub mod follow;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use crate::media::faststart::FaststartSetting;

/// The config file: `$REELUP_CONFIG_DIR/config.toml`, or `config.toml` in the OS config
/// dir (`~/.config/reelup` on Linux).
pub fn default_config_path() -> PathBuf {
    std::env::var_os("REELUP_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("dev", "reelup", "reelup")
                .map(|d| d.config_dir().to_owned())
        })
        .unwrap_or_else(|| PathBuf::from(".reelup"))
        .join("config.toml")
}

/// Which routes the endpoint speaks. Both speak Uppy Companion's S3 routes; a
/// reelup-server also has `/whoami`, so a token can be checked before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    #[default]
    ReelupServer,
    Companion,
}

impl Flavour {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReelupServer => "reelup-server",
            Self::Companion => "companion",
        }
    }
}

impl std::str::FromStr for Flavour {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reelup-server" => Ok(Self::ReelupServer),
            "companion" => Ok(Self::Companion),
            other => Err(format!(
                "unknown flavour {other:?}; use \"reelup-server\" or \"companion\""
            )),
        }
    }
}

/// What happens to a watched file once its upload is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterUpload {
    #[default]
    Leave,
    /// Into an `uploaded/` subfolder of the watched folder.
    Move,
}

pub const DEFAULT_PARTS_IN_FLIGHT: u16 = 4;
pub const DEFAULT_PART_SIZE_MIB: u64 = 16;
pub const DEFAULT_STABLE_SECS: u64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WatchFolder {
    pub path: PathBuf,
    #[serde(default)]
    pub recursive: bool,
    #[serde(default)]
    pub after_upload: AfterUpload,
    /// Extensions (no dot) to pick up; empty means every video type Reelup knows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<String>,
    /// How long size and mtime must stay the same before a file counts as finished.
    #[serde(default = "default_stable_secs")]
    pub stable_secs: u64,
}

impl WatchFolder {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            recursive: false,
            after_upload: AfterUpload::Leave,
            extensions: Vec::new(),
            stable_secs: DEFAULT_STABLE_SECS,
        }
    }
}

fn default_stable_secs() -> u64 {
    DEFAULT_STABLE_SECS
}
fn default_parts() -> u16 {
    DEFAULT_PARTS_IN_FLIGHT
}
fn default_part_size() -> u64 {
    DEFAULT_PART_SIZE_MIB
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// The presign endpoint's base URL (without `/s3`).
    pub endpoint: String,
    pub flavour: Flavour,
    /// The CDN base URL streaming URLs start with. None: the endpoint names each URL
    /// (reelup-server does), or the object URL is used.
    pub cdn: Option<String>,
    pub parts_in_flight: u16,
    /// Bytes per second for all of this profile's uploads together; None is unlimited.
    pub bandwidth_limit: Option<u64>,
    pub part_size_mib: u64,
    pub watch: Vec<WatchFolder>,
    /// Ask for CloudFront signed links valid this long (a reelup-server with a CloudFront
    /// key signs them); None: plain links, unless the server requires signed ones.
    pub link_lifetime: Option<Duration>,
    /// Whether videos whose index is at the end are re-laid to start instantly.
    pub faststart: FaststartSetting,
}

/// The shortest and longest signed-link lifetime a profile may ask for; the server holds
/// its own bounds too.
pub const LINK_LIFETIME_SECS: std::ops::RangeInclusive<u64> = 60..=366 * 24 * 3600;

impl Profile {
    pub fn new(name: &str, endpoint: &str) -> Self {
        Self {
            name: name.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            flavour: Flavour::default(),
            cdn: None,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            bandwidth_limit: None,
            part_size_mib: DEFAULT_PART_SIZE_MIB,
            watch: Vec::new(),
            link_lifetime: None,
            faststart: FaststartSetting::default(),
        }
    }

    /// The CDN base streaming URLs start with: the profile's `cdn`, else a reelup-server's
    /// own `/cdn` route.
    pub fn cdn_base(&self) -> Result<String, ProfileError> {
        match (&self.cdn, self.flavour) {
            (Some(cdn), _) => Ok(cdn.trim_end_matches('/').to_owned()),
            (None, Flavour::ReelupServer) => Ok(format!("{}/cdn", self.endpoint)),
            (None, Flavour::Companion) => Err(ProfileError::NoCdn {
                profile: self.name.clone(),
            }),
        }
    }

    /// Where this profile's uploads go, as the queue stores it with each item.
    pub fn target(&self) -> Result<crate::queue::store::Target, ProfileError> {
        let mut t = crate::queue::store::Target::new(&self.endpoint, &self.cdn_base()?);
        t.profile = Some(self.name.clone());
        t.faststart = self.faststart;
        Ok(t)
    }

    /// Checks the values a person types; the problem names the setting and what to change.
    pub fn validate(&self) -> Result<(), ProfileProblem> {
        check_name(&self.name)?;
        check_profile_url(&self.endpoint, ProfileField::Endpoint)?;
        if let Some(cdn) = &self.cdn {
            check_profile_url(cdn, ProfileField::Cdn)?;
        }
        if !(1..=32).contains(&self.parts_in_flight) {
            return Err(ProfileProblem::PartsInFlight(self.parts_in_flight));
        }
        if !(5..=5120).contains(&self.part_size_mib) {
            return Err(ProfileProblem::PartSize(self.part_size_mib));
        }
        if let Some(secs) = self
            .link_lifetime
            .map(|d| d.as_secs())
            .filter(|s| !LINK_LIFETIME_SECS.contains(s))
        {
            return Err(ProfileProblem::LinkLifetime(secs));
        }
        match self.bandwidth_limit {
            Some(0) => return Err(ProfileProblem::BandwidthZero),
            // TOML integers are i64: a larger limit could be saved but never read back.
            Some(b) if b > i64::MAX as u64 => return Err(ProfileProblem::BandwidthTooLarge(b)),
            _ => {}
        }
        for w in &self.watch {
            if !w.path.is_absolute() {
                return Err(ProfileProblem::WatchNotAbsolute {
                    path: w.path.clone(),
                });
            }
            if w.stable_secs == 0 || w.stable_secs > 600 {
                return Err(ProfileProblem::StableSecs {
                    path: w.path.clone(),
                    secs: w.stable_secs,
                });
            }
        }
        Ok(())
    }
}

/// Which setting of a profile a problem is about: the app marks that field of its form,
/// the CLI names its option. Serialised in camelCase for the app's IPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum ProfileField {
    Name,
    Endpoint,
    Flavour,
    Cdn,
    PartsInFlight,
    PartSizeMib,
    BandwidthLimit,
    Watch,
    LinkLifetime,
}

impl ProfileField {
    /// The key in `config.toml` (and the CLI's option without `--`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Endpoint => "endpoint",
            Self::Flavour => "flavour",
            Self::Cdn => "cdn",
            Self::PartsInFlight => "parts-in-flight",
            Self::PartSizeMib => "part-size-mib",
            Self::BandwidthLimit => "bandwidth-limit",
            Self::Watch => "watch",
            Self::LinkLifetime => "link-lifetime-secs",
        }
    }
}

impl fmt::Display for ProfileField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What is wrong with a URL a person typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("is not a URL ({0}); write e.g. https://uploads.example.com")]
    NotAUrl(String),
    #[error(
        "is plain http; use https:// (http is only allowed for this machine: localhost, 127.0.0.1, ::1)"
    )]
    PlainHttp,
    #[error("has scheme {0:?}; use an https:// URL")]
    Scheme(String),
    /// `https://uploads.studio.example@evil.example` connects to evil.example: what comes
    /// before `@` is a user name, which reads like a host to a person.
    #[error(
        "has a user name or password before its host (connecting to {host}); remove the part \
         up to and including '@', and check that {host} is really where you mean to upload"
    )]
    UserInfo { host: String },
    /// Browsers and the `url` crate read `\` as `/`; other parsers do not, so the same
    /// text can name two hosts.
    #[error("has a backslash (\\); write the URL with '/' only")]
    Backslash,
}

/// A value of a profile that cannot be saved: which setting ([`ProfileProblem::field`]) and
/// what kind of mistake (the variant). The message names the `config.toml` key and the
/// allowed values; a front end that shows the setting under another name phrases its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileProblem {
    #[error("profile name {0:?} is not allowed; use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("a profile named {0:?} already exists; pick another name")]
    NameTaken(String),
    #[error("{field} {value:?} {problem}")]
    Url {
        field: ProfileField,
        value: String,
        problem: UrlProblem,
    },
    #[error("parts-in-flight is {0}; use a number from 1 to 32")]
    PartsInFlight(u16),
    #[error("part-size-mib is {0}; S3 takes parts from 5 to 5120 MiB")]
    PartSize(u64),
    #[error("bandwidth-limit is 0; remove it for no limit, or give bytes per second")]
    BandwidthZero,
    #[error("bandwidth-limit is {0}; the most is {max} bytes per second, or remove it for no limit", max = i64::MAX)]
    BandwidthTooLarge(u64),
    #[error("watch folder {:?} is not an absolute path; give the full path", path)]
    WatchNotAbsolute { path: PathBuf },
    #[error("stable-secs is {secs} for {}; use 1 to 600 seconds", path.display())]
    StableSecs { path: PathBuf, secs: u64 },
    #[error("link-lifetime-secs is {0}; use 60 seconds to 366 days, or remove it for plain links")]
    LinkLifetime(u64),
}

impl ProfileProblem {
    pub fn field(&self) -> ProfileField {
        match self {
            Self::BadName(_) | Self::NameTaken(_) => ProfileField::Name,
            Self::Url { field, .. } => *field,
            Self::PartsInFlight(_) => ProfileField::PartsInFlight,
            Self::PartSize(_) => ProfileField::PartSizeMib,
            Self::BandwidthZero | Self::BandwidthTooLarge(_) => ProfileField::BandwidthLimit,
            Self::WatchNotAbsolute { .. } | Self::StableSecs { .. } => ProfileField::Watch,
            Self::LinkLifetime(_) => ProfileField::LinkLifetime,
        }
    }
}

/// Why no profile (or no usable one) is there to upload with. The message says what is
/// missing, not which command or button fixes it: the CLI and the app each add their own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// None is named and none is saved.
    #[error("no profile yet")]
    NoneYet,
    #[error("there is no profile {name:?}")]
    Unknown {
        name: String,
        /// The profiles there are, in the file's order.
        known: Vec<String>,
    },
    #[error("the default profile {0:?} is gone")]
    DefaultGone(String),
    #[error("several profiles and no default")]
    NoDefault { known: Vec<String> },
    /// A Companion profile without a CDN URL: a Companion does not serve one.
    #[error("profile {profile:?} has no CDN URL, and a Companion does not serve one")]
    NoCdn { profile: String },
}

impl ProfileError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            Self::NoCdn { .. } => crate::ErrorCode::NoCdn,
            _ => crate::ErrorCode::NoProfile,
        }
    }
}

/// Profile names become keyring entries and command-line arguments: keep them plain.
pub fn check_name(name: &str) -> Result<(), ProfileProblem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ProfileProblem::BadName(name.to_owned()))
    }
}

/// Endpoints and CDNs carry tokens and streaming URLs: https, except on this machine.
pub fn url_problem(text: &str) -> Result<(), UrlProblem> {
    if text.contains('\\') {
        return Err(UrlProblem::Backslash);
    }
    let url = url::Url::parse(text).map_err(|e| UrlProblem::NotAUrl(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::UserInfo {
            host: host_of(&url),
        });
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(UrlProblem::PlainHttp),
        other => Err(UrlProblem::Scheme(other.to_owned())),
    }
}

/// Where a URL connects, as a person should read it: the host on its own (an
/// internationalised name as punycode, as it is looked up, so look-alike letters show),
/// with the port when it is not the scheme's default.
pub fn host_of(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// [`host_of`] for URL text; `None` if it is not a URL with a host.
pub fn host_of_text(text: &str) -> Option<String> {
    url::Url::parse(text)
        .ok()
        .filter(|u| u.host_str().is_some())
        .map(|u| host_of(&u))
}

/// [`url_problem`] for a value that is not a profile's (the CLI's `--endpoint`), with
/// `what` naming it in the message.
pub fn check_url(text: &str, what: &str) -> Result<(), String> {
    url_problem(text).map_err(|problem| format!("{what} {text:?} {problem}"))
}

fn check_profile_url(text: &str, field: ProfileField) -> Result<(), ProfileProblem> {
    url_problem(text).map_err(|problem| ProfileProblem::Url {
        field,
        value: text.to_owned(),
        problem,
    })
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or ::1. The one place where
/// plain http may carry a token or a video.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Each profile's current target, read from the profiles file at `path` at every call, so
/// an endpoint edited in the app or with `reelup profile` counts at once. A queued item is
/// bound to the endpoint it was queued for; this is how the queue notices a profile moved
/// (see [`crate::UploadQueue::resume`]). `Ok(None)`: no such profile; an error: the file
/// cannot be read or has a mistake (with its line), which is not the same as no profile.
pub fn targets_in(path: PathBuf) -> crate::ProfileTargets {
    std::sync::Arc::new(move |name: &str| {
        let config = ProfileConfig::load(&path)?;
        Ok(config.get(name).and_then(|p| p.target().ok()))
    })
}

/// App-only settings that live beside the profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AppSettings {
    #[serde(default = "yes")]
    pub close_to_tray: bool,
    #[serde(default)]
    pub start_at_login: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            close_to_tray: true,
            start_at_login: false,
        }
    }
}

/// A mistake in the config file: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Unwritable { path: PathBuf, message: String },
    /// A profile to save has a value that cannot be saved.
    #[error(transparent)]
    Profile(#[from] ProfileProblem),
    #[error("there is no profile {0:?}")]
    NoSuchProfile(String),
    /// What is being saved cannot be written as TOML (nothing a person typed).
    #[error("{0}")]
    Rejected(String),
}

impl ConfigError {
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode;
        match self {
            Self::Invalid { .. } => ErrorCode::ConfigInvalid,
            Self::Unreadable { .. } => ErrorCode::ConfigUnreadable,
            Self::Unwritable { .. } => ErrorCode::ConfigUnwritable,
            Self::Profile(_) | Self::Rejected(_) => ErrorCode::InvalidInput,
            Self::NoSuchProfile(_) => ErrorCode::NoProfile,
        }
    }

    /// The profile setting a refused save is about, if it is one.
    pub fn field(&self) -> Option<ProfileField> {
        match self {
            Self::Profile(p) => Some(p.field()),
            _ => None,
        }
    }
}

/// The whole file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileConfig {
    pub path: PathBuf,
    pub default: Option<String>,
    /// In the order of the file.
    pub profiles: Vec<Profile>,
    pub app: AppSettings,
}

// What the file holds, with spans so that a value that parses but is wrong (an http URL,
// a default naming no profile) is reported at its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default: Option<Spanned<String>>,
    #[serde(default)]
    app: AppSettings,
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Spanned<RawProfile>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawProfile {
    endpoint: Spanned<String>,
    #[serde(default)]
    flavour: Flavour,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cdn: Option<Spanned<String>>,
    #[serde(default = "default_parts")]
    parts_in_flight: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bandwidth_limit: Option<u64>,
    #[serde(default = "default_part_size")]
    part_size_mib: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    watch: Vec<WatchFolder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link_lifetime_secs: Option<u64>,
    /// `off`, `ask` or `always` (the default, not written).
    #[serde(default, skip_serializing_if = "is_default_faststart")]
    faststart: FaststartSetting,
}

fn is_default_faststart(s: &FaststartSetting) -> bool {
    *s == FaststartSetting::default()
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `[profiles.NAME]`, for problems found after parsing (a table's own span
/// covers only its keys).
fn line_of_profile(text: &str, name: &str) -> usize {
    let header = format!("[profiles.{name}]");
    let quoted = format!("[profiles.\"{name}\"]");
    text.lines()
        .position(|l| {
            let l = l.trim();
            l == header || l == quoted
        })
        .map_or(1, |i| i + 1)
}

impl ProfileConfig {
    pub fn empty(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            default: None,
            profiles: Vec::new(),
            app: AppSettings::default(),
        }
    }

    /// Reads the file; a missing file is an empty config (a fresh install).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty(path)),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_owned(),
                    message: format!("{e}; check the file's permissions"),
                });
            }
        };
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let invalid = |line: usize, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_at(text, s.start));
            invalid(line, format!("{}; fix the TOML there", e.message().trim()))
        })?;
        let mut profiles = Vec::new();
        for (name, spanned) in raw.profiles {
            let line = line_of_profile(text, &name).max(line_at(text, spanned.span().start));
            check_name(&name).map_err(|m| invalid(line, m.to_string()))?;
            let p = spanned.into_inner();
            let at = |s: &Spanned<String>| line_at(text, s.span().start);
            check_profile_url(p.endpoint.get_ref(), ProfileField::Endpoint)
                .map_err(|m| invalid(at(&p.endpoint), m.to_string()))?;
            if let Some(cdn) = &p.cdn {
                check_profile_url(cdn.get_ref(), ProfileField::Cdn)
                    .map_err(|m| invalid(at(cdn), m.to_string()))?;
            }
            let profile = Profile {
                name: name.clone(),
                endpoint: p.endpoint.into_inner().trim_end_matches('/').to_owned(),
                flavour: p.flavour,
                cdn: p.cdn.map(Spanned::into_inner),
                parts_in_flight: p.parts_in_flight,
                bandwidth_limit: p.bandwidth_limit,
                part_size_mib: p.part_size_mib,
                watch: p.watch,
                link_lifetime: p.link_lifetime_secs.map(Duration::from_secs),
                faststart: p.faststart,
            };
            profile
                .validate()
                .map_err(|m| invalid(line, format!("profile {name:?}: {m}")))?;
            profiles.push(profile);
        }
        let default = match raw.default {
            Some(d) if !profiles.iter().any(|p| &p.name == d.get_ref()) => {
                let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
                return Err(invalid(
                    line_at(text, d.span().start),
                    format!(
                        "default = {:?} names no profile; use one of [{}] or add [profiles.{}]",
                        d.get_ref(),
                        names.join(", "),
                        d.get_ref()
                    ),
                ));
            }
            d => d.map(Spanned::into_inner),
        };
        Ok(Self {
            path: path.to_owned(),
            default,
            profiles,
            app: raw.app,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile to use: the one named, else the default, else the only one.
    pub fn resolve(&self, name: Option<&str>) -> Result<&Profile, ProfileError> {
        let names = || self.profiles.iter().map(|p| p.name.clone()).collect();
        match name {
            Some(n) => self.get(n).ok_or_else(|| ProfileError::Unknown {
                name: n.to_owned(),
                known: names(),
            }),
            None => match (&self.default, self.profiles.as_slice()) {
                (Some(d), _) => self
                    .get(d)
                    .ok_or_else(|| ProfileError::DefaultGone(d.clone())),
                (None, [only]) => Ok(only),
                (None, []) => Err(ProfileError::NoneYet),
                (None, _) => Err(ProfileError::NoDefault { known: names() }),
            },
        }
    }

    /// Adds or replaces a profile (renaming `previous` when given), keeping comments.
    pub fn save_profile(
        &mut self,
        previous: Option<&str>,
        profile: Profile,
    ) -> Result<(), ConfigError> {
        profile.validate()?;
        let old = previous.unwrap_or(&profile.name).to_owned();
        if old != profile.name && self.get(&profile.name).is_some() {
            return Err(ProfileProblem::NameTaken(profile.name.clone()).into());
        }
        let mut doc = self.document()?;
        // With one profile and no `default`, that one is used implicitly. A second would
        // make it ambiguous, and uploads would stop; so it is pinned as the default.
        if let (None, [only]) = (&self.default, self.profiles.as_slice())
            && only.name != old
        {
            doc["default"] = toml_edit::value(only.name.clone());
        }
        let raw = RawProfile {
            endpoint: Spanned::new(0..0, profile.endpoint.clone()),
            flavour: profile.flavour,
            cdn: profile.cdn.clone().map(|c| Spanned::new(0..0, c)),
            parts_in_flight: profile.parts_in_flight,
            bandwidth_limit: profile.bandwidth_limit,
            part_size_mib: profile.part_size_mib,
            watch: profile.watch.clone(),
            link_lifetime_secs: profile.link_lifetime.map(|d| d.as_secs()),
            faststart: profile.faststart,
        };
        let table_text = toml::to_string(&raw).map_err(|e| ConfigError::Rejected(e.to_string()))?;
        let table: toml_edit::DocumentMut = table_text
            .parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Rejected(e.to_string()))?;
        let profiles = doc
            .entry("profiles")
            .or_insert_with(|| {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                toml_edit::Item::Table(t)
            })
            .as_table_mut()
            .ok_or_else(|| {
                ConfigError::Rejected("`profiles` in the config is not a table".into())
            })?;
        let mut new_table = table.as_table().clone();
        new_table.set_implicit(false);
        if old != profile.name {
            profiles.remove(&old);
            if self.default.as_deref() == Some(old.as_str()) {
                doc["default"] = toml_edit::value(profile.name.clone());
            }
        }
        let profiles = doc["profiles"].as_table_mut().expect("just made");
        match profiles
            .get_mut(&profile.name)
            .and_then(|i| i.as_table_mut())
        {
            // Keep the table's place and leading comment in the file.
            Some(existing) => {
                let decor = existing.decor().clone();
                *existing = new_table;
                *existing.decor_mut() = decor;
            }
            None => {
                profiles.insert(&profile.name, toml_edit::Item::Table(new_table));
            }
        }
        self.write(doc)
    }

    pub fn remove_profile(&mut self, name: &str) -> Result<bool, ConfigError> {
        if self.get(name).is_none() {
            return Ok(false);
        }
        let mut doc = self.document()?;
        if let Some(profiles) = doc.get_mut("profiles").and_then(|p| p.as_table_mut()) {
            profiles.remove(name);
        }
        if self.default.as_deref() == Some(name) {
            doc.remove("default");
        }
        self.write(doc)?;
        Ok(true)
    }

    pub fn set_default(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.get(name).is_none() {
            return Err(ConfigError::NoSuchProfile(name.to_owned()));
        }
        let mut doc = self.document()?;
        doc["default"] = toml_edit::value(name);
        // `default` must come before any table to be a top-level key; toml_edit keeps
        // top-level values ahead of tables when it writes.
        self.write(doc)
    }

    pub fn set_app(&mut self, app: AppSettings) -> Result<(), ConfigError> {
        let mut doc = self.document()?;
        let table = doc
            .entry("app")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        table["close-to-tray"] = toml_edit::value(app.close_to_tray);
        table["start-at-login"] = toml_edit::value(app.start_at_login);
        self.write(doc)
    }

    /// The file as it is on disk now (another process may have changed it since load).
    fn document(&self) -> Result<toml_edit::DocumentMut, ConfigError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    path: self.path.clone(),
                    message: e.to_string(),
                });
            }
        };
        // Refuse to rewrite a file we cannot read properly: that would lose the user's text.
        Self::parse(&self.path, &text)?;
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
                path: self.path.clone(),
                line: 1,
                message: e.to_string(),
            })
    }

    /// Writes atomically (temp file, then rename), then reloads what was written.
    fn write(&mut self, doc: toml_edit::DocumentMut) -> Result<(), ConfigError> {
        let unwritable = |e: std::io::Error| ConfigError::Unwritable {
            path: self.path.clone(),
            message: format!("{e}; check that the folder exists and is writable"),
        };
        let text = doc.to_string();
        let reread = Self::parse(&self.path, &text)?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(unwritable)?;
        }
        let tmp = self.path.with_extension("toml.tmp");
        std::fs::write(&tmp, text.as_bytes()).map_err(unwritable)?;
        std::fs::rename(&tmp, &self.path).map_err(unwritable)?;
        *self = reread;
        Ok(())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name:            {}", self.name)?;
        writeln!(f, "endpoint:        {}", self.endpoint)?;
        writeln!(f, "flavour:         {}", self.flavour.as_str())?;
        writeln!(
            f,
            "cdn:             {}",
            self.cdn.as_deref().unwrap_or("(from the endpoint)")
        )?;
        writeln!(f, "parts in flight: {}", self.parts_in_flight)?;
        writeln!(f, "part size:       {} MiB", self.part_size_mib)?;
        writeln!(f, "faststart:       {}", self.faststart.as_str())?;
        match self.bandwidth_limit {
            Some(b) => writeln!(f, "bandwidth limit: {b} bytes/s")?,
            None => writeln!(f, "bandwidth limit: none")?,
        }
        match self.link_lifetime {
            Some(d) => writeln!(f, "signed links:    {} s", d.as_secs())?,
            None => writeln!(f, "signed links:    no (plain links)")?,
        }
        if self.watch.is_empty() {
            writeln!(f, "watch folders:   none")?;
        }
        for w in &self.watch {
            writeln!(
                f,
                "watch folder:    {}{} (after upload: {})",
                w.path.display(),
                if w.recursive { " (and subfolders)" } else { "" },
                match w.after_upload {
                    AfterUpload::Leave => "leave",
                    AfterUpload::Move => "move to uploaded/",
                }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProfileConfig, ConfigError> {
        ProfileConfig::parse(Path::new("/cfg/config.toml"), text)
    }

    #[test]
    fn reads_profiles_with_defaults() {
        let c = parse(
            "default = \"b\"\n[profiles.a]\nendpoint = \"https://a.example.com/\"\n\
             [profiles.b]\nendpoint = \"http://127.0.0.1:9\"\nflavour = \"companion\"\n\
             cdn = \"https://d1.cloudfront.net\"\nparts-in-flight = 8\n\
             [[profiles.b.watch]]\npath = \"/rec\"\nafter-upload = \"move\"\n",
        )
        .unwrap();
        assert_eq!(c.profiles.len(), 2);
        let a = c.get("a").unwrap();
        assert_eq!(a.endpoint, "https://a.example.com");
        assert_eq!(a.parts_in_flight, 4);
        assert_eq!(a.flavour, Flavour::ReelupServer);
        let b = c.resolve(None).unwrap();
        assert_eq!(b.name, "b");
        assert_eq!(b.flavour, Flavour::Companion);
        assert_eq!(b.watch[0].after_upload, AfterUpload::Move);
        assert_eq!(b.watch[0].stable_secs, 3);
        assert!(c.app.close_to_tray);
    }

    #[test]
    fn mistakes_name_the_line_and_the_fix() {
        let e = parse("[profiles.a]\nendpoint = \"https://a\"\n\n[profiles.b]\nendpoint = \"http://uploads.example.com\"\n")
            .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/cfg/config.toml:5:"), "{text}");
        assert!(text.contains("use https://"), "{text}");

        let e = parse("default = \"nope\"\n[profiles.a]\nendpoint = \"https://a\"\n").unwrap_err();
        assert!(e.to_string().starts_with("/cfg/config.toml:1:"), "{e}");
        assert!(e.to_string().contains("[a]"), "{e}");

        let e =
            parse("[profiles.a]\nendpoint = \"https://a\"\nparts-in-flight = 99\n").unwrap_err();
        assert!(e.to_string().contains("1 to 32"), "{e}");

        let e = parse("[profiles.a]\nendpoint = https://a\n").unwrap_err();
        assert!(e.to_string().starts_with("/cfg/config.toml:2:"), "{e}");

        let e = parse("[profiles.a]\nendpont = \"https://a\"\n").unwrap_err();
        assert!(e.to_string().contains("endpont"), "{e}");
    }

    #[test]
    fn a_profile_asks_for_signed_links_within_bounds() {
        let c = parse(
            "[profiles.a]\nendpoint = \"https://a.example.com\"\nlink-lifetime-secs = 604800\n",
        )
        .unwrap();
        assert_eq!(
            c.profiles[0].link_lifetime,
            Some(Duration::from_secs(604_800))
        );
        assert!(
            c.profiles[0]
                .to_string()
                .contains("signed links:    604800 s")
        );
        let e =
            parse("[profiles.a]\nendpoint = \"https://a.example.com\"\nlink-lifetime-secs = 5\n")
                .unwrap_err();
        assert!(e.to_string().contains("link-lifetime-secs is 5"), "{e}");
        let plain = parse("[profiles.a]\nendpoint = \"https://a.example.com\"\n").unwrap();
        assert_eq!(plain.profiles[0].link_lifetime, None);
    }

    #[test]
    fn only_loopback_may_use_http() {
        for ok in [
            "https://x.example.com",
            "http://localhost:8765",
            "http://127.0.0.1",
            "http://[::1]:80",
        ] {
            check_url(ok, "endpoint").unwrap();
        }
        for bad in [
            "http://192.168.1.2",
            "ftp://x",
            "nonsense",
            "http://localhost.evil.com",
        ] {
            assert!(check_url(bad, "endpoint").is_err(), "{bad}");
        }
    }

    #[test]
    fn saving_keeps_comments_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "# my notes\n[profiles.a] # first\nendpoint = \"https://a\"\n",
        )
        .unwrap();
        let mut c = ProfileConfig::load(&path).unwrap();
        let mut b = Profile::new("b", "https://b.example.com");
        b.watch.push(WatchFolder::new("/rec"));
        b.bandwidth_limit = Some(5_000_000);
        c.save_profile(None, b.clone()).unwrap();
        c.set_default("b").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# my notes") && text.contains("# first"),
            "{text}"
        );
        let again = ProfileConfig::load(&path).unwrap();
        assert_eq!(again.get("b"), Some(&b));
        assert_eq!(again.default.as_deref(), Some("b"));

        // Rename keeps the default pointing at it; removing clears it.
        let mut renamed = b.clone();
        renamed.name = "client".into();
        let mut c = again;
        c.save_profile(Some("b"), renamed).unwrap();
        assert_eq!(c.default.as_deref(), Some("client"));
        assert!(c.get("b").is_none());
        assert!(c.remove_profile("client").unwrap());
        assert_eq!(c.default, None);
        assert_eq!(ProfileConfig::load(&path).unwrap().profiles.len(), 1);
    }

    #[test]
    fn adding_a_second_profile_keeps_the_first_as_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut c = ProfileConfig::empty(&path);
        c.save_profile(None, Profile::new("own", "https://own.example.com"))
            .unwrap();
        assert_eq!(c.default, None, "one profile needs no default");
        assert_eq!(c.resolve(None).unwrap().name, "own");
        c.save_profile(None, Profile::new("client", "https://client.example.com"))
            .unwrap();
        assert_eq!(c.default.as_deref(), Some("own"));
        assert_eq!(
            ProfileConfig::load(&path)
                .unwrap()
                .resolve(None)
                .unwrap()
                .name,
            "own"
        );
    }

    #[test]
    fn a_broken_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[profiles.a\n").unwrap();
        let mut c = ProfileConfig::empty(&path);
        assert!(
            c.save_profile(None, Profile::new("b", "https://b"))
                .is_err()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[profiles.a\n");
    }

    #[test]
    fn resolve_says_what_is_missing() {
        let c = parse("").unwrap();
        assert_eq!(c.resolve(None).unwrap_err(), ProfileError::NoneYet);
        let c = parse(
            "[profiles.a]\nendpoint = \"https://a\"\n[profiles.b]\nendpoint = \"https://b\"\n",
        )
        .unwrap();
        let known = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            c.resolve(None).unwrap_err(),
            ProfileError::NoDefault {
                known: known.clone()
            }
        );
        assert_eq!(
            c.resolve(Some("zz")).unwrap_err(),
            ProfileError::Unknown {
                name: "zz".into(),
                known
            }
        );
    }

    #[test]
    fn urls_with_user_info_or_backslashes_are_refused_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut c = ProfileConfig::empty(&path);
        for (bad, says) in [
            (
                "https://uploads.studio.example@evil.example",
                "connecting to evil.example",
            ),
            (
                "https://user:pw@uploads.example.com",
                "user name or password",
            ),
            ("https://:pw@uploads.example.com", "user name or password"),
            ("http://evil\\@localhost/", "backslash"),
            ("https://uploads.example.com\\@evil.example", "backslash"),
        ] {
            // A profile's endpoint and CDN, as the app and `reelup profile` save them.
            let e = c.save_profile(None, Profile::new("a", bad)).expect_err(bad);
            assert_eq!(e.field(), Some(ProfileField::Endpoint), "{bad}");
            assert!(e.to_string().contains(says), "{bad}: {e}");
            let mut p = Profile::new("a", "https://uploads.example.com");
            p.cdn = Some(bad.into());
            let e = c.save_profile(None, p).expect_err(bad);
            assert_eq!(e.field(), Some(ProfileField::Cdn), "{bad}");
            // `--endpoint` of the CLI.
            assert!(check_url(bad, "--endpoint").unwrap_err().contains(says));
            // A hand-edited file: refused at its line.
            let text = format!("[profiles.a]\nendpoint = {bad:?}\n");
            let e = ProfileConfig::parse(&path, &text).expect_err(bad);
            assert!(
                matches!(e, ConfigError::Invalid { line: 2, .. }) && e.to_string().contains(says),
                "{bad}: {e}"
            );
        }
        // The host a person should read: punycode for IDN, the port when not the default.
        assert_eq!(
            host_of_text("https://bücher.example:8443/x").as_deref(),
            Some("xn--bcher-kva.example:8443")
        );
        assert_eq!(
            host_of_text("https://UPLOADS.example.com:443").as_deref(),
            Some("uploads.example.com")
        );
    }

    #[test]
    fn a_refused_profile_names_its_field_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ProfileConfig::empty(&dir.path().join("config.toml"));
        let refused = |c: &mut ProfileConfig, p: Profile| c.save_profile(None, p).unwrap_err();

        let mut p = Profile::new("a", "http://uploads.example.com");
        let e = refused(&mut c, p.clone());
        assert_eq!(e.field(), Some(ProfileField::Endpoint));
        assert!(matches!(
            e,
            ConfigError::Profile(ProfileProblem::Url {
                problem: UrlProblem::PlainHttp,
                ..
            })
        ));
        p.endpoint = "https://uploads.example.com".into();
        p.cdn = Some("ftp://cdn".into());
        assert_eq!(refused(&mut c, p.clone()).field(), Some(ProfileField::Cdn));
        p.cdn = None;
        let mut w = WatchFolder::new("/rec");
        w.stable_secs = 0;
        p.watch.push(w);
        assert_eq!(
            refused(&mut c, p.clone()),
            ConfigError::Profile(ProfileProblem::StableSecs {
                path: "/rec".into(),
                secs: 0
            })
        );
        p.watch.clear();
        p.parts_in_flight = 0;
        assert_eq!(
            refused(&mut c, p.clone()).field(),
            Some(ProfileField::PartsInFlight)
        );
        p.parts_in_flight = 4;
        c.save_profile(None, p.clone()).unwrap();
        let other = Profile::new("b", "https://b.example.com");
        c.save_profile(None, other.clone()).unwrap();
        let e = c
            .save_profile(
                Some("b"),
                Profile {
                    name: "a".into(),
                    ..other
                },
            )
            .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Profile(ProfileProblem::NameTaken("a".into()))
        );
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
    }
}
