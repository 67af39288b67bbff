//! `reelup link`: a new CloudFront signed link to one of your uploads, from the profile's
//! reelup-server (which holds the private key; Reelup never does).

use std::process::ExitCode;
use std::time::Duration;

use reelup_core::config::LINK_LIFETIME_SECS;
use reelup_core::credentials::token_for;
use reelup_core::queue::store::{ItemState, QueueItem, QueueStore, default_queue_path};
use reelup_core::{CompanionClient, LinkPolicy, LinkRequest};

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// A finished upload's queue ID (`reelup queue` lists them), or its object key.
    what: String,
    /// How long the link works: 90s, 30m, 12h, 7d, 2w (default: the profile's
    /// link lifetime, else the server's default).
    #[arg(long, value_parser = parse_lifetime)]
    expires: Option<Duration>,
    /// `canned` (the shortest URL) or `custom` (needed for --ip).
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// Only viewers from this address or CIDR range (e.g. 203.0.113.0/24) may play it;
    /// implies --policy custom.
    #[arg(long, value_name = "RANGE")]
    ip: Option<String>,
    /// One JSON object: {"url", "expiresAt"} (Unix seconds).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PolicyArg {
    Canned,
    Custom,
}

/// `90s`, `30m`, `12h`, `7d`, `2w`, or plain seconds; within the lifetimes a server takes.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a lifetime; write e.g. 90s, 30m, 12h or 7d"))?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => return Err(format!("{other:?} is not a unit; use s, m, h, d or w")),
    };
    let secs = n.saturating_mul(scale);
    if !LINK_LIFETIME_SECS.contains(&secs) {
        return Err(format!(
            "{text} is outside 60s to 366d, the lifetimes a link may have"
        ));
    }
    Ok(Duration::from_secs(secs))
}

pub async fn run(args: LinkArgs, profile_name: Option<&str>) -> Result<ExitCode, String> {
    let config = crate::load_config()?;
    // A queue ID names its item's key and profile; a key goes with the chosen profile.
    let (key, item_profile) = match args.what.parse::<i64>() {
        Ok(id) => {
            let store = QueueStore::open(&default_queue_path()).map_err(|e| e.to_string())?;
            let item = store.get(id).map_err(|e| e.to_string())?;
            let key = match (item.state, item.key) {
                (ItemState::Done, Some(key)) => key,
                _ => {
                    return Err(format!(
                        "upload {id} has not finished, so there is nothing to link to yet; `reelup queue` shows where it is"
                    ));
                }
            };
            (key, item.target.profile)
        }
        Err(_) => (args.what.clone(), None),
    };
    let profile = config
        .resolve(profile_name.or(item_profile.as_deref()))
        .map_err(crate::profile_error)?;
    let policy = match (args.policy, &args.ip) {
        (Some(PolicyArg::Canned), Some(_)) => {
            return Err("--ip needs a custom policy; leave out --policy canned".into());
        }
        (Some(PolicyArg::Custom), _) | (None, Some(_)) => LinkPolicy::Custom,
        _ => LinkPolicy::Canned,
    };
    let request = LinkRequest {
        key,
        lifetime_secs: args.expires.or(profile.link_lifetime).map(|d| d.as_secs()),
        policy,
        ip_range: args.ip,
    };
    let client = signing_client(profile)?;
    let link = match client.sign_link(profile.flavour, &request).await {
        Ok(link) => link,
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "error": e.code(), "message": e.to_string() })
                );
            }
            return Err(e.to_string());
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "url": link.url, "expiresAt": link.expires_at })
        );
    } else {
        // The URL alone on stdout, for `$(reelup link 3)`; when it expires on stderr.
        println!("{}", link.url);
        eprintln!("expires {}", expiry_text(link.expires_at));
    }
    Ok(ExitCode::SUCCESS)
}

/// The link `reelup upload` prints for a finished upload whose profile asks for signed links
/// (`link-lifetime-secs`): `Some(Ok((url, expires_at)))`; None when it does not ask. A
/// failure to sign comes back as its message: the caller says it and prints the plain link,
/// so an upload's outcome is never lost.
pub async fn upload_link(item: &QueueItem) -> Option<Result<(String, u64), String>> {
    let config = crate::load_config().ok()?;
    let profile = config.resolve(item.target.profile.as_deref()).ok()?;
    let lifetime = profile.link_lifetime?;
    let key = item.key.clone()?;
    let sign = async {
        let request = LinkRequest {
            key,
            lifetime_secs: Some(lifetime.as_secs()),
            policy: LinkPolicy::Canned,
            ip_range: None,
        };
        signing_client(profile)?
            .sign_link(profile.flavour, &request)
            .await
            .map(|link| (link.url, link.expires_at))
            .map_err(|e| e.to_string())
    };
    Some(sign.await)
}

/// A client for the profile's endpoint with its token, for `reelup link` and the links
/// `reelup upload` prints.
fn signing_client(profile: &reelup_core::config::Profile) -> Result<CompanionClient, String> {
    let token = token_for(crate::keyring().as_ref(), &profile.name, &profile.endpoint)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no token for profile {:?}; store it with `reelup login --profile {}`",
                profile.name, profile.name
            )
        })?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot set up HTTP: {e}"))?;
    Ok(CompanionClient::new(http, &profile.endpoint, Some(token)))
}

/// `2026-12-06T11:00:00Z (in 7 days)`.
fn expiry_text(expires_at: u64) -> String {
    let at = i64::try_from(expires_at)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| expires_at.to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = expires_at.saturating_sub(now);
    let within = match left {
        l if l >= 2 * 86_400 => format!("{} days", l / 86_400),
        l if l >= 2 * 3600 => format!("{} hours", l / 3600),
        l if l >= 120 => format!("{} minutes", l / 60),
        l => format!("{l} seconds"),
    };
    format!("{at} (in {within})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_write_them() {
        assert_eq!(parse_lifetime("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_lifetime("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_lifetime("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_lifetime("5s").unwrap_err().contains("60s to 366d"));
        assert!(parse_lifetime("400d").is_err());
        assert!(parse_lifetime("7 fortnights").is_err());
        assert!(parse_lifetime("").is_err());
    }
}
