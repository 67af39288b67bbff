use reelup_core::Secret;

/// Where this app instance uploads to. Until profiles and the keyring arrive, it comes
/// from the environment the launcher (`./dev run`) sets.
#[derive(Debug, Clone)]
pub struct Target {
    pub endpoint: String,
    pub cdn: String,
    pub token: Option<Secret>,
}

pub fn from_env() -> Result<Target, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var("REELUP_ENDPOINT"), var("REELUP_CDN")) {
        (Some(endpoint), Some(cdn)) => Ok(Target {
            endpoint,
            cdn,
            token: var("REELUP_TOKEN").map(Secret::new),
        }),
        _ => Err(
            "No upload endpoint is set. Start Reelup with `./dev run`, which starts the \
                  local stack and connects to it, or set REELUP_ENDPOINT, REELUP_CDN and \
                  REELUP_TOKEN."
                .into(),
        ),
    }
}
