//! Invite links (`reelup://connect?…`): opened from outside (a browser or chat hands the
//! link to the app through the deep-link plugin, or to a second launch), or pasted in
//! Settings. A link is only read at first; the user sees where it connects and agrees in
//! Settings before its one-time code is redeemed (`reelup_core::credentials::invite`), so a link on a
//! web page cannot quietly point the app at someone else's server.

use std::sync::Mutex;

use reelup_core::config::host_of_text;
use reelup_core::credentials::invite::{self, Invite, InviteError};
use tauri::{AppHandle, Manager, Runtime};

use crate::ipc::{self, AcceptedInvite, ConnectionCheck, IpcError, Notice};
use crate::settings::ProfileSettings;

/// How an invite link starts; anything else on a command line is a path or an option.
pub const SCHEME_PREFIX: &str = "reelup:";

/// The invite the app was opened with, kept until the page asks for it (it may open
/// before the page listens for the invite event).
#[derive(Default)]
pub struct OpenedInvite(Mutex<Option<crate::ipc::InvitePreview>>);

/// What `link` would connect to, without redeeming anything.
pub fn preview(
    profiles: &ProfileSettings,
    link: &str,
) -> Result<crate::ipc::InvitePreview, IpcError> {
    let invite = Invite::parse(link)?;
    let profile = invite::profile_name_for(&invite, None)?;
    let existing = profiles.profile(&profile);
    // `Invite::parse` took only URLs with a host, so these are never empty.
    let host = |url: &str| host_of_text(url).unwrap_or_else(|| url.to_owned());
    Ok(crate::ipc::InvitePreview {
        link: link.trim().to_owned(),
        host: host(&invite.endpoint),
        cdn_host: host(&invite.cdn),
        replaces: existing.is_some(),
        previous_host: existing.as_ref().map(|p| host(&p.endpoint)),
        watch_folders: existing
            .iter()
            .flat_map(|p| &p.watch)
            .map(|w| w.path.display().to_string())
            .collect(),
        endpoint: invite.endpoint,
        cdn: invite.cdn,
        profile,
    })
}

/// Redeems the link's code and sets up its profile with the token (in the keyring). A
/// failed connection test after that is not an error: the profile is there, and the check
/// says what went wrong.
pub async fn accept(profiles: &ProfileSettings, link: &str) -> Result<AcceptedInvite, IpcError> {
    let http = reqwest::Client::new();
    let path = profiles.config_path();
    let result = invite::accept(&http, link, None, &path, profiles.keyring()).await;
    // Whatever happened, the file may have changed (a saved profile before a failed test).
    profiles.reload();
    match result {
        Ok(done) => Ok(AcceptedInvite {
            check: ConnectionCheck {
                ok: true,
                message: format!("Connected as {}", done.user),
                user: Some(done.user.clone()),
                prefix: done.prefix,
            },
            profile: done.profile,
            user: done.user,
        }),
        Err(InviteError::ConnectionTest { profile, source }) => Ok(AcceptedInvite {
            check: ConnectionCheck {
                ok: false,
                message: source.to_string(),
                user: None,
                prefix: None,
            },
            user: String::new(),
            profile,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Links the OS handed the app (its command line, or a second launch's): shown in
/// Settings for the user to agree to. A link that is not a good invite gets a notice.
pub fn opened<R: Runtime>(app: &AppHandle<R>, links: impl IntoIterator<Item = String>) {
    let shell = app.state::<std::sync::Arc<crate::Shell>>();
    for link in links {
        if !link.to_ascii_lowercase().starts_with(SCHEME_PREFIX) {
            continue;
        }
        crate::show_main_window(app);
        match preview(&shell.profiles, &link) {
            Ok(p) => {
                tracing::info!(endpoint = %p.endpoint, "invite link opened");
                if let Some(state) = app.try_state::<OpenedInvite>() {
                    *state.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
                }
                ipc::emit(app, p);
            }
            Err(e) => {
                ipc::emit(app, Notice { message: e.message });
            }
        }
    }
}

/// The invite the app was opened with, once.
pub fn take_opened<R: Runtime>(app: &AppHandle<R>) -> Option<crate::ipc::InvitePreview> {
    app.try_state::<OpenedInvite>()
        .and_then(|s| s.0.lock().unwrap_or_else(|e| e.into_inner()).take())
}
