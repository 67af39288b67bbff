//! Content types as the server accepts them: exactly `type/subtype`, each an RFC 6838
//! restricted name, and nothing else.
//!
//! The type a client names is stored with the object and sent back by the CDN as its
//! `Content-Type`, so anything a browser could read as a second type or a parameter
//! (`video/mp4,text/html`, `video/mp4;text/html`, `video/../text/html`) must be refused
//! here, not merely compared by its text before the `/`.

use std::fmt;

/// Longest type or subtype RFC 6838 allows (`restricted-name-first *126restricted-name-chars`).
const MAX_NAME: usize = 127;

/// A well-formed `type/subtype`, lowercased: the form the server signs and stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType {
    essence: String,
    slash: usize,
}

impl ContentType {
    pub fn type_(&self) -> &str {
        &self.essence[..self.slash]
    }

    pub fn subtype(&self) -> &str {
        &self.essence[self.slash + 1..]
    }

    /// `type/subtype`, lowercased.
    pub fn as_str(&self) -> &str {
        &self.essence
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.essence)
    }
}

/// Why a text is not a content type the server accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a content type of the form type/subtype ({reason}); send just the type, \
     e.g. video/mp4, with no parameters, commas or spaces"
)]
pub struct ParseError {
    /// The text as given, cut to a length fit for a message.
    pub given: String,
    pub reason: &'static str,
}

fn restricted_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c)
}

/// Checks one half against RFC 6838's `restricted-name`.
fn check_name(name: &str, which: &'static str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    match bytes.first() {
        None => Err(if which == "type" {
            "the type before '/' is empty"
        } else {
            "the subtype after '/' is empty"
        }),
        _ if bytes.len() > MAX_NAME => Err("a name is longer than 127 characters"),
        Some(first) if !first.is_ascii_alphanumeric() => Err(if which == "type" {
            "the type must start with a letter or digit"
        } else {
            "the subtype must start with a letter or digit"
        }),
        _ if !bytes.iter().all(|c| restricted_name_char(*c)) => {
            Err("only letters, digits and ! # $ & - ^ _ . + may appear in a name")
        }
        _ => Ok(()),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Parses `text` strictly as `type/subtype` (RFC 6838 restricted names, one `/`, no
/// parameters, commas or whitespace anywhere) and lowercases it.
pub fn parse(text: &str) -> Result<ContentType, ParseError> {
    let fail = |reason| ParseError {
        given: shown(text),
        reason,
    };
    if text.bytes().any(|b| b == b',') {
        return Err(fail("a comma would make it a list of types"));
    }
    if text.bytes().any(|b| b == b';') {
        return Err(fail("parameters after ';' are not accepted"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(fail("it contains a space"));
    }
    let Some((type_, subtype)) = text.split_once('/') else {
        return Err(fail("there is no '/'"));
    };
    if subtype.contains('/') {
        return Err(fail("there is more than one '/'"));
    }
    check_name(type_, "type").map_err(fail)?;
    check_name(subtype, "subtype").map_err(fail)?;
    Ok(ContentType {
        essence: text.to_ascii_lowercase(),
        slash: type_.len(),
    })
}

/// One entry of `allowed_content_types`: an exact type, or `type/*` for any well-formed
/// subtype of that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(ContentType),
    AnySubtype(String),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text.strip_suffix("/*") {
            Some(type_) => {
                check_name(type_, "type").map_err(|reason| ParseError {
                    given: shown(text),
                    reason,
                })?;
                Ok(Self::AnySubtype(type_.to_ascii_lowercase()))
            }
            None => parse(text).map(Self::Exact),
        }
    }

    pub fn matches(&self, t: &ContentType) -> bool {
        match self {
            Self::Exact(exact) => exact == t,
            Self::AnySubtype(type_) => t.type_() == type_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_parse_and_are_lowercased() {
        let t = parse("Video/QuickTime").expect("valid");
        assert_eq!(t.as_str(), "video/quicktime");
        assert_eq!((t.type_(), t.subtype()), ("video", "quicktime"));
        for ok in [
            "video/mp4",
            "application/mxf",
            "video/x-matroska",
            "video/vnd.dlna.mpeg-tts",
            "application/vnd.api+json",
            "a/b",
            "video/3gpp2",
            "x/a!#$&-^_.+",
        ] {
            assert_eq!(parse(ok).expect(ok).to_string(), ok.to_ascii_lowercase());
        }
    }

    #[test]
    fn anything_that_is_not_exactly_type_slash_subtype_is_refused() {
        for bad in [
            "video/mp4,text/html",
            "video/mp4;text/html",
            "video/mp4; codecs=avc1",
            "video/",
            "/mp4",
            "video",
            "",
            "video/../text/html",
            "video/..",
            "video/mp4 text/html",
            " video/mp4",
            "video/mp4\t",
            "video/mp4\n",
            "video/mp4\r\nX-Injected: 1",
            "video/mp4/x",
            "video/*",
            "*/*",
            "video/mp\u{e9}4",
            "video/mp4\"",
            "video/(mp4)",
            "video/mp4=1",
            "-video/mp4",
            "video/.mp4",
            "video/mp4%2Ctext%2Fhtml",
            "video/mp4\0",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains("type/subtype"), "{bad}: {err}");
        }
        let long = format!("video/{}", "a".repeat(128));
        assert!(parse(&long).is_err());
        assert!(parse(&format!("video/{}", "a".repeat(127))).is_ok());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let reason = |t: &str| parse(t).expect_err(t).reason;
        assert_eq!(
            reason("video/mp4,text/html"),
            "a comma would make it a list of types"
        );
        assert_eq!(
            reason("video/mp4;x=1"),
            "parameters after ';' are not accepted"
        );
        assert_eq!(reason("video/"), "the subtype after '/' is empty");
        assert_eq!(reason("video/../text/html"), "there is more than one '/'");
        assert_eq!(reason("video/mp4 x"), "it contains a space");
    }

    #[test]
    fn patterns_match_exactly_or_any_well_formed_subtype() {
        let video = Pattern::parse("video/*").expect("pattern");
        let mxf = Pattern::parse("Application/MXF").expect("pattern");
        let t = |s: &str| parse(s).expect(s);
        assert!(video.matches(&t("video/mp4")));
        assert!(video.matches(&t("VIDEO/x-anything")));
        assert!(!video.matches(&t("videos/mp4")));
        assert!(!video.matches(&t("text/html")));
        assert!(mxf.matches(&t("application/mxf")));
        assert!(!mxf.matches(&t("application/mxf2")));
        assert!(!mxf.matches(&t("application/pdf")));
        for bad in [
            "*/*",
            "video/",
            "video/*;x",
            "vid eo/*",
            "*",
            "video/**",
            "",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
