//! The policy statement a CloudFront signature covers.
//!
//! A canned policy is never sent: CloudFront rebuilds it from the URL and `Expires`, so its
//! text must be byte for byte the one AWS documents, whitespace-free, in this order:
//! `{"Statement":[{"Resource":"URL","Condition":{"DateLessThan":{"AWS:EpochTime":N}}}]}`.
//! A custom policy travels in the URL (`Policy`), so any order would verify; Reelup writes
//! it in botocore's order (Resource, Condition; DateLessThan, IpAddress, DateGreaterThan)
//! so that the same inputs give the same URL as botocore's `CloudFrontSigner`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

/// What a signature allows: one resource (a URL, `*` and `?` allowed in a custom policy),
/// until `date_less_than`, optionally from `date_greater_than` and from one address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub resource: String,
    /// Unix seconds; the link works before this moment only.
    pub date_less_than: u64,
    /// Unix seconds; the link works after this moment only. Custom policies only.
    pub date_greater_than: Option<u64>,
    /// The viewer's address must be in this range. Custom policies only.
    pub source_ip: Option<IpNet>,
}

#[derive(Serialize)]
struct Statements<'a> {
    #[serde(rename = "Statement")]
    statement: [Statement<'a>; 1],
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "Resource")]
    resource: &'a str,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Serialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: EpochTime,
    #[serde(rename = "IpAddress", skip_serializing_if = "Option::is_none")]
    ip_address: Option<SourceIp>,
    #[serde(rename = "DateGreaterThan", skip_serializing_if = "Option::is_none")]
    date_greater_than: Option<EpochTime>,
}

#[derive(Serialize)]
struct EpochTime {
    #[serde(rename = "AWS:EpochTime")]
    epoch_time: u64,
}

#[derive(Serialize)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    source_ip: String,
}

/// Why a `Policy` from a URL is not one the CDN can apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub &'static str);

impl Policy {
    /// A canned policy: `resource` until `expires`.
    pub fn canned(resource: impl Into<String>, expires: u64) -> Self {
        Self {
            resource: resource.into(),
            date_less_than: expires,
            date_greater_than: None,
            source_ip: None,
        }
    }

    /// Whether this policy can travel as `Expires` (a canned policy says nothing more).
    pub fn is_canned(&self) -> bool {
        self.date_greater_than.is_none() && self.source_ip.is_none()
    }

    /// The statement's JSON: the canned form when the policy [is canned](Self::is_canned),
    /// else the custom form; both compact, in the orders the module doc gives.
    pub fn to_json(&self) -> String {
        let doc = Statements {
            statement: [Statement {
                resource: &self.resource,
                condition: Condition {
                    date_less_than: EpochTime {
                        epoch_time: self.date_less_than,
                    },
                    ip_address: self.source_ip.map(|net| SourceIp {
                        source_ip: net.to_string(),
                    }),
                    date_greater_than: self.date_greater_than.map(|t| EpochTime { epoch_time: t }),
                },
            }],
        };
        serde_json::to_string(&doc).expect("a policy always serialises")
    }

    /// A custom policy as a URL carried it. Strict: one statement, a resource, a
    /// `DateLessThan`, and no condition CloudFront would not apply.
    pub fn parse(json: &[u8]) -> Result<Self, PolicyError> {
        let bad = PolicyError;
        let doc: Value = serde_json::from_slice(json).map_err(|_| bad("Policy is not JSON"))?;
        let statements = doc
            .get("Statement")
            .and_then(Value::as_array)
            .ok_or(bad("Policy has no Statement list"))?;
        let [statement] = statements.as_slice() else {
            return Err(bad("Policy must hold exactly one statement"));
        };
        let resource = statement
            .get("Resource")
            .and_then(Value::as_str)
            .ok_or(bad("Policy has no Resource"))?;
        let condition = statement
            .get("Condition")
            .and_then(Value::as_object)
            .ok_or(bad("Policy has no Condition"))?;
        let epoch = |name: &str| -> Result<Option<u64>, PolicyError> {
            match condition.get(name) {
                None => Ok(None),
                Some(v) => v
                    .get("AWS:EpochTime")
                    .and_then(Value::as_u64)
                    .map(Some)
                    .ok_or(bad("Policy has a date that is not AWS:EpochTime seconds")),
            }
        };
        let date_less_than = epoch("DateLessThan")?.ok_or(bad("Policy has no DateLessThan"))?;
        let date_greater_than = epoch("DateGreaterThan")?;
        let source_ip = match condition.get("IpAddress") {
            None => None,
            Some(v) => Some(
                v.get("AWS:SourceIp")
                    .and_then(Value::as_str)
                    .and_then(|s| parse_range(s).ok())
                    .ok_or(bad("Policy has an IpAddress that is not a CIDR range"))?,
            ),
        };
        if condition
            .keys()
            .any(|k| !matches!(k.as_str(), "DateLessThan" | "DateGreaterThan" | "IpAddress"))
        {
            return Err(bad("Policy has a condition CloudFront does not know"));
        }
        Ok(Self {
            resource: resource.to_owned(),
            date_less_than,
            date_greater_than,
            source_ip,
        })
    }

    /// Whether `url` is this policy's resource: equal, or matched by its wildcards (`*` any
    /// run of characters, `?` one character), as CloudFront matches them.
    pub fn covers(&self, url: &str) -> bool {
        wildcard_match(self.resource.as_bytes(), url.as_bytes())
    }

    /// Whether `ip` may use the link (always, without an IP condition).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.source_ip.is_none_or(|net| net.contains(&ip))
    }
}

/// `1.2.3.4` (one address: `/32` or `/128`, as botocore writes it) or `1.2.3.0/24`, in its
/// network form (`1.2.3.9/24` is refused: it names no one range unambiguously).
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let net = if text.contains('/') {
        text.parse::<IpNet>()
            .map_err(|_| format!("{text:?} is not an address range such as 203.0.113.0/24"))?
    } else {
        let ip: IpAddr = text.parse().map_err(|_| {
            format!("{text:?} is not an IP address or a range such as 203.0.113.0/24")
        })?;
        IpNet::from(ip)
    };
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set; write the range as {}",
            net.trunc()
        ));
    }
    Ok(net)
}

fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative glob with one backtrack point: linear in practice, no recursion to blow up
    // on a hostile pattern of many stars.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_policy_is_awss_documented_text() {
        let p = Policy::canned(
            "https://d111111abcdef8.cloudfront.net/image.jpg",
            1357034400,
        );
        assert!(p.is_canned());
        assert_eq!(
            p.to_json(),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/image.jpg","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
    }

    #[test]
    fn custom_policy_follows_botocores_order_and_parses_back() {
        let p = Policy {
            resource: "https://d.example/a/*".into(),
            date_less_than: 20,
            date_greater_than: Some(10),
            source_ip: Some(parse_range("1.2.3.0/24").expect("range")),
        };
        let json = p.to_json();
        assert_eq!(
            json,
            r#"{"Statement":[{"Resource":"https://d.example/a/*","Condition":{"DateLessThan":{"AWS:EpochTime":20},"IpAddress":{"AWS:SourceIp":"1.2.3.0/24"},"DateGreaterThan":{"AWS:EpochTime":10}}}]}"#
        );
        assert_eq!(Policy::parse(json.as_bytes()), Ok(p.clone()));
        assert!(p.covers("https://d.example/a/b.mp4"));
        assert!(!p.covers("https://d.example/b/a.mp4"));
        assert!(p.allows_ip("1.2.3.77".parse().expect("ip")));
        assert!(p.allows_ip("::ffff:1.2.3.77".parse().expect("ip")));
        assert!(!p.allows_ip("1.2.4.1".parse().expect("ip")));
    }

    #[test]
    fn ranges_are_single_addresses_or_network_forms() {
        assert_eq!(
            parse_range("1.2.3.4").expect("ip").to_string(),
            "1.2.3.4/32"
        );
        assert_eq!(
            parse_range("2001:db8::/32").expect("v6").to_string(),
            "2001:db8::/32"
        );
        assert!(
            parse_range("1.2.3.4/24")
                .unwrap_err()
                .contains("1.2.3.0/24")
        );
        assert!(parse_range("example.com").is_err());
    }

    #[test]
    fn hostile_policies_are_refused_not_applied_loosely() {
        for bad in [
            &b"not json"[..],
            br#"{"Statement":[]}"#,
            br#"{"Statement":[{"Resource":"x","Condition":{}}]}"#,
            br#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":"9"}}}]}"#,
            br#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":9},"StringLike":{}}}]}"#,
            br#"{"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":9},"IpAddress":{"AWS:SourceIp":"nowhere"}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":9}}}]}"#,
        ] {
            assert!(Policy::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn wildcards_match_as_cloudfront_does() {
        assert!(wildcard_match(b"a*c", b"abbbc"));
        assert!(wildcard_match(b"a?c", b"abc"));
        assert!(!wildcard_match(b"a?c", b"ac"));
        assert!(wildcard_match(b"*", b""));
        assert!(!wildcard_match(b"abc", b"abcd"));
        // Many stars against a long miss stays fast.
        let pattern = "*a".repeat(50);
        assert!(!wildcard_match(
            pattern.as_bytes(),
            "b".repeat(5000).as_bytes()
        ));
    }
}
