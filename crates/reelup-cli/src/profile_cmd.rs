//! `reelup profile ...`, `reelup login` and `reelup logout`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use reelup_core::Secret;
use reelup_core::config::{AfterUpload, FaststartSetting, Flavour, Profile, WatchFolder};
use reelup_core::credentials::CredentialStore;

use crate::{keyring, load_config, parse_rate};

#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Add a profile (or replace one with --force).
    Add(AddArgs),
    /// Change some settings of a profile; what is not given (watch folders too) stays.
    Set(SetArgs),
    /// List profiles; the default one is marked with `*`.
    List,
    /// Show a profile's settings (default: the default profile).
    Show { name: Option<String> },
    /// Remove a profile and its token.
    Remove { name: String },
    /// Make a profile the default.
    Default { name: String },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    name: String,
    /// Presign endpoint URL (https, or http on this machine), without /s3.
    #[arg(long)]
    endpoint: String,
    /// CDN base URL for streaming URLs (default: a reelup-server's own /cdn).
    #[arg(long)]
    cdn: Option<String>,
    /// reelup-server or companion (a plain Uppy Companion).
    #[arg(long, default_value = "reelup-server")]
    flavour: Flavour,
    #[arg(long, default_value_t = reelup_core::config::DEFAULT_PARTS_IN_FLIGHT)]
    parts_in_flight: u16,
    #[arg(long, default_value_t = reelup_core::config::DEFAULT_PART_SIZE_MIB)]
    part_size_mib: u64,
    /// Bandwidth limit in bytes per second: 5000000, 5MB or 4MiB.
    #[arg(long, value_parser = parse_rate)]
    limit_rate: Option<u64>,
    /// A folder to watch (repeat for more); `reelup watch` uploads new videos from it.
    #[arg(long = "watch", value_name = "DIR")]
    watch: Vec<PathBuf>,
    /// Watch the folders' subfolders too.
    #[arg(long)]
    recursive: bool,
    /// After a watched file is uploaded: leave it, or move it into uploaded/.
    #[arg(long, default_value = "leave", value_parser = ["leave", "move"])]
    after_upload: String,
    /// Videos whose index (moov) is at the end: `always` re-lays them to start instantly
    /// (no re-encoding), `ask` holds each one until you choose, `off` uploads them as they
    /// are.
    #[arg(long, default_value = "always", value_parser = crate::parse_faststart)]
    faststart: FaststartSetting,
    /// Make it the default profile.
    #[arg(long)]
    default: bool,
    /// Replace a profile of the same name.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    name: String,
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long)]
    cdn: Option<String>,
    #[arg(long)]
    flavour: Option<Flavour>,
    #[arg(long)]
    parts_in_flight: Option<u16>,
    #[arg(long)]
    part_size_mib: Option<u64>,
    /// Bandwidth limit in bytes per second: 5000000, 5MB or 4MiB.
    #[arg(long, value_parser = parse_rate, conflicts_with = "no_limit_rate")]
    limit_rate: Option<u64>,
    /// Take the bandwidth limit off.
    #[arg(long)]
    no_limit_rate: bool,
    /// Ask for CloudFront signed links valid this long: 90s, 30m, 12h, 7d (a reelup-server
    /// with a CloudFront key signs them).
    #[arg(long, value_parser = crate::link_cmd::parse_lifetime, conflicts_with = "no_link_lifetime")]
    link_lifetime: Option<std::time::Duration>,
    /// Plain links again (unless the server requires signed ones).
    #[arg(long)]
    no_link_lifetime: bool,
    /// always, ask or off (see `reelup profile add --help`).
    #[arg(long, value_parser = crate::parse_faststart)]
    faststart: Option<FaststartSetting>,
}

pub fn run(cmd: ProfileCommand, selected: Option<&str>) -> Result<ExitCode, String> {
    let mut config = load_config()?;
    match cmd {
        ProfileCommand::Add(a) => {
            if config.get(&a.name).is_some() && !a.force {
                return Err(format!(
                    "profile {:?} already exists; pass --force to replace it",
                    a.name
                ));
            }
            let mut p = Profile::new(&a.name, &a.endpoint);
            p.cdn = a.cdn;
            p.flavour = a.flavour;
            p.parts_in_flight = a.parts_in_flight;
            p.part_size_mib = a.part_size_mib;
            p.bandwidth_limit = a.limit_rate;
            p.faststart = a.faststart;
            for dir in a.watch {
                let path = std::path::absolute(&dir).unwrap_or(dir);
                let mut w = WatchFolder::new(path);
                w.recursive = a.recursive;
                if a.after_upload == "move" {
                    w.after_upload = AfterUpload::Move;
                }
                p.watch.push(w);
            }
            let previous = config.get(&a.name).map(|_| a.name.clone());
            config
                .save_profile(previous.as_deref(), p)
                .map_err(crate::config_error)?;
            // A first profile is the default without saying so; a second keeps the first.
            if a.default {
                config.set_default(&a.name).map_err(crate::config_error)?;
            }
            eprintln!(
                "added profile {:?} to {}; store its token with `reelup login --profile {}`",
                a.name,
                config.path.display(),
                a.name
            );
        }
        ProfileCommand::Set(a) => {
            let Some(current) = config.get(&a.name) else {
                return Err(format!(
                    "there is no profile {:?}; add it with `reelup profile add {} --endpoint URL`",
                    a.name, a.name
                ));
            };
            let mut p = current.clone();
            if let Some(endpoint) = a.endpoint {
                p.endpoint = endpoint;
            }
            if a.cdn.is_some() {
                p.cdn = a.cdn;
            }
            if let Some(flavour) = a.flavour {
                p.flavour = flavour;
            }
            if let Some(n) = a.parts_in_flight {
                p.parts_in_flight = n;
            }
            if let Some(mib) = a.part_size_mib {
                p.part_size_mib = mib;
            }
            if a.limit_rate.is_some() || a.no_limit_rate {
                p.bandwidth_limit = a.limit_rate;
            }
            if a.link_lifetime.is_some() || a.no_link_lifetime {
                p.link_lifetime = a.link_lifetime;
            }
            if let Some(f) = a.faststart {
                p.faststart = f;
            }
            config
                .save_profile(Some(&a.name), p)
                .map_err(crate::config_error)?;
            eprintln!("updated profile {:?} in {}", a.name, config.path.display());
        }
        ProfileCommand::List => {
            if config.profiles.is_empty() {
                eprintln!("no profiles yet; add one with `reelup profile add NAME --endpoint URL`");
            }
            let default = config.resolve(None).ok().map(|p| p.name.clone());
            for p in &config.profiles {
                let mark = if default.as_ref() == Some(&p.name) {
                    "*"
                } else {
                    " "
                };
                println!("{mark} {}\t{}\t{}", p.name, p.endpoint, p.flavour.as_str());
            }
        }
        ProfileCommand::Show { name } => {
            let p = config
                .resolve(name.as_deref().or(selected))
                .map_err(crate::profile_error)?;
            print!("{p}");
            let token = match keyring().get(&p.name) {
                Ok(Some(reelup_core::credentials::StoredToken {
                    endpoint: Some(for_endpoint),
                    ..
                })) if !reelup_core::credentials::same_endpoint(&for_endpoint, &p.endpoint) => {
                    format!(
                        "in the OS keyring, but for {for_endpoint}, so it is not sent (run `reelup login`)"
                    )
                }
                Ok(Some(_)) => "in the OS keyring".to_owned(),
                Ok(None) => "none (run `reelup login`)".to_owned(),
                Err(e) => format!("unknown: {e}"),
            };
            println!("token:           {token}");
        }
        ProfileCommand::Remove { name } => {
            if !config.remove_profile(&name).map_err(crate::config_error)? {
                return Err(format!("there is no profile {name:?}"));
            }
            if let Err(e) = keyring().delete(&name) {
                eprintln!("reelup: the profile is removed, but its token could not be: {e}");
            }
            eprintln!("removed profile {name:?}");
        }
        ProfileCommand::Default { name } => {
            config.set_default(&name).map_err(crate::config_error)?;
            eprintln!("{name:?} is now the default profile");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a token: a hidden prompt on a terminal, else the first line of stdin. Never an
/// argument, which any user of the machine could read from the process list.
fn read_token(profile: &str) -> Result<Secret, String> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Token for profile {profile:?}: "))
            .map_err(|e| format!("cannot read the token: {e}"))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
        line
    };
    let token = text.trim();
    if token.is_empty() {
        return Err("no token given; type it at the prompt or pipe it to stdin".into());
    }
    Ok(Secret::new(token))
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// A one-time invite link (reelup://connect?...) from `reelup-server token add|invite`:
    /// creates the profile (named by --profile, else by the link) and stores its token.
    #[arg(long, value_name = "LINK")]
    invite: Option<String>,
}

pub async fn login(args: LoginArgs, selected: Option<&str>) -> Result<ExitCode, String> {
    if let Some(link) = args.invite {
        return login_with_invite(&link, selected).await;
    }
    let config = load_config()?;
    let profile = config
        .resolve(selected)
        .map_err(crate::profile_error)?
        .clone();
    let token = read_token(&profile.name)?;
    let http = reqwest::Client::new();
    let who = reelup_core::endpoint::identity::check_endpoint(
        &http,
        &profile.endpoint,
        profile.flavour,
        Some(&token),
    )
    .await
    .map_err(|e| e.to_string())?;
    // Bound to the endpoint it was just checked with: it is never sent anywhere else.
    keyring()
        .set(
            &profile.name,
            &reelup_core::credentials::StoredToken::bound(&profile.endpoint, token),
        )
        .map_err(|e| e.to_string())?;
    match (who.user, who.prefix) {
        (Some(user), Some(prefix)) => eprintln!(
            "logged in to {} as {user}; uploads go under {prefix}. The token is in the OS keyring.",
            profile.endpoint
        ),
        _ => eprintln!(
            "the token works with {}; it is in the OS keyring.",
            profile.endpoint
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn login_with_invite(link: &str, selected: Option<&str>) -> Result<ExitCode, String> {
    let http = reqwest::Client::new();
    let accepted = reelup_core::credentials::invite::accept(
        &http,
        link,
        selected,
        &reelup_core::config::default_config_path(),
        keyring().as_ref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let under = accepted
        .prefix
        .map(|p| format!("; uploads go under {p}/"))
        .unwrap_or_default();
    let default = if accepted.is_default {
        " It is the default profile."
    } else {
        ""
    };
    eprintln!(
        "added profile {:?}: logged in as {}{under}. The token is in the OS keyring.{default}",
        accepted.profile, accepted.user
    );
    Ok(ExitCode::SUCCESS)
}

pub fn logout(selected: Option<&str>) -> Result<ExitCode, String> {
    let config = load_config()?;
    let profile = config.resolve(selected).map_err(crate::profile_error)?;
    if keyring().delete(&profile.name).map_err(|e| e.to_string())? {
        eprintln!(
            "removed the token of profile {:?} from the OS keyring",
            profile.name
        );
    } else {
        eprintln!("profile {:?} had no token in the OS keyring", profile.name);
    }
    Ok(ExitCode::SUCCESS)
}
