//! Profiles, tokens and app options as the settings screen sees them. The file format, the
//! checks and the keyring are `reelup_core`'s; this maps them to IPC shapes.
//!
//! What must stay true: a token goes from the UI straight into the keyring and never comes
//! back out (the UI only learns whether one is stored); a broken config file is shown, with
//! its line and fix, while the app keeps running.

use std::path::Path;
use std::sync::{Arc, Mutex};

use reelup_core::config::{self, AppSettings, Profile, ProfileConfig, ProfileError, WatchFolder};
use reelup_core::credentials::{self, CredentialStore, StoredToken, TokenCache};
use reelup_core::endpoint::identity::check_endpoint;
use reelup_core::queue::store::Target;
use reelup_core::watch::uploads::FolderTarget;
use reelup_core::{ErrorCode, Secret};

use crate::ipc::{
    self, AppOptions, Connection, ConnectionCheck, IpcError, ProfileInput, ProfileView, Settings,
    SignedLink,
};

pub struct ProfileSettings {
    config: Mutex<ProfileConfig>,
    /// The config file's mistake, if it has one; cleared by the next good read.
    problem: Mutex<Option<String>>,
    keyring: Arc<dyn CredentialStore>,
    tokens: Arc<TokenCache>,
}

/// Core says which profile is missing; the app says where in the window to fix it.
fn profile_error(e: ProfileError) -> IpcError {
    let fix = match &e {
        ProfileError::NoneYet => "add one in Settings → Add profile",
        ProfileError::Unknown { .. } => "save it in Settings first",
        ProfileError::DefaultGone(_) | ProfileError::NoDefault { .. } => {
            "choose the default in Settings"
        }
        ProfileError::NoCdn { .. } => "add its CDN URL in Settings",
    };
    IpcError::new(e.code(), format!("{e}; {fix}"))
}

// `to_profile` and `to_input` name every field of both sides (no `..`, no defaults), so a
// field added to a core profile or watch folder does not compile until it crosses IPC: the
// form hands back what it was given, and a save never drops a setting it does not show.

fn to_profile(input: ProfileInput) -> Profile {
    let ProfileInput {
        name,
        endpoint,
        flavour,
        cdn,
        parts_in_flight,
        bandwidth_limit,
        part_size_mib,
        watch,
        link_lifetime_secs,
        faststart,
    } = input;
    Profile {
        name: name.trim().to_owned(),
        endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
        flavour: match flavour {
            ipc::Flavour::ReelupServer => config::Flavour::ReelupServer,
            ipc::Flavour::Companion => config::Flavour::Companion,
        },
        cdn: cdn
            .map(|c| c.trim().trim_end_matches('/').to_owned())
            .filter(|c| !c.is_empty()),
        parts_in_flight,
        bandwidth_limit,
        part_size_mib,
        watch: watch.into_iter().map(to_folder).collect(),
        link_lifetime: link_lifetime_secs.map(std::time::Duration::from_secs),
        faststart,
    }
}

fn to_folder(w: ipc::WatchFolder) -> WatchFolder {
    let ipc::WatchFolder {
        path,
        recursive,
        after_upload,
        extensions,
        stable_secs,
    } = w;
    WatchFolder {
        path: path.trim().into(),
        recursive,
        after_upload: match after_upload {
            ipc::AfterUpload::Leave => config::AfterUpload::Leave,
            ipc::AfterUpload::Move => config::AfterUpload::Move,
        },
        extensions,
        // Absent for a folder added in Settings: the engine's default.
        stable_secs: stable_secs.unwrap_or(config::DEFAULT_STABLE_SECS),
    }
}

fn to_input(p: &Profile) -> ProfileInput {
    let Profile {
        name,
        endpoint,
        flavour,
        cdn,
        parts_in_flight,
        bandwidth_limit,
        part_size_mib,
        watch,
        link_lifetime,
        faststart,
    } = p;
    ProfileInput {
        name: name.clone(),
        endpoint: endpoint.clone(),
        flavour: match flavour {
            config::Flavour::ReelupServer => ipc::Flavour::ReelupServer,
            config::Flavour::Companion => ipc::Flavour::Companion,
        },
        cdn: cdn.clone(),
        parts_in_flight: *parts_in_flight,
        bandwidth_limit: *bandwidth_limit,
        part_size_mib: *part_size_mib,
        watch: watch.iter().map(to_ipc_folder).collect(),
        link_lifetime_secs: link_lifetime.map(|d| d.as_secs()),
        faststart: *faststart,
    }
}

fn to_ipc_folder(w: &WatchFolder) -> ipc::WatchFolder {
    let WatchFolder {
        path,
        recursive,
        after_upload,
        extensions,
        stable_secs,
    } = w;
    ipc::WatchFolder {
        path: path.display().to_string(),
        recursive: *recursive,
        after_upload: match after_upload {
            config::AfterUpload::Leave => ipc::AfterUpload::Leave,
            config::AfterUpload::Move => ipc::AfterUpload::Move,
        },
        extensions: extensions.clone(),
        stable_secs: Some(*stable_secs),
    }
}

impl ProfileSettings {
    pub fn load(path: &Path, keyring: Arc<dyn CredentialStore>, tokens: Arc<TokenCache>) -> Self {
        let (config, problem) = match ProfileConfig::load(path) {
            Ok(c) => (c, None),
            Err(e) => {
                tracing::error!(error = %e, "the profiles file has a mistake");
                (ProfileConfig::empty(path), Some(e.to_string()))
            }
        };
        Self {
            config: Mutex::new(config),
            problem: Mutex::new(problem),
            keyring,
            tokens,
        }
    }

    fn config(&self) -> std::sync::MutexGuard<'_, ProfileConfig> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.config().path.clone()
    }

    pub fn keyring(&self) -> &dyn CredentialStore {
        self.keyring.as_ref()
    }

    pub fn has_profile(&self, name: &str) -> bool {
        self.config().get(name).is_some()
    }

    pub fn profile(&self, name: &str) -> Option<Profile> {
        self.config().get(name).cloned()
    }

    /// Reads the profiles file again after something else wrote it (an accepted invite,
    /// the CLI, an editor), and forgets cached tokens, which may have changed with it.
    /// True when what the app holds changed (the profiles, or the file's mistake): only
    /// then need the queue, the watch folders and the windows follow. A file that no
    /// longer reads keeps the last good profiles, and its mistake is shown.
    pub fn reload(&self) -> bool {
        // The config, then the problem: the order `edit` takes them in.
        let mut config = self.config();
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        match ProfileConfig::load(&config.path) {
            Ok(c) => {
                let changed = *config != c || problem.is_some();
                if changed {
                    for p in config.profiles.iter().chain(&c.profiles) {
                        self.tokens.forget(&p.name);
                    }
                    *config = c;
                }
                *problem = None;
                changed
            }
            Err(e) => {
                let e = Some(e.to_string());
                let changed = *problem != e;
                *problem = e;
                changed
            }
        }
    }

    /// Applies `change` to the config; a good write clears a reported problem.
    fn edit(
        &self,
        change: impl FnOnce(&mut ProfileConfig) -> Result<(), config::ConfigError>,
    ) -> Result<(), IpcError> {
        let mut config = self.config();
        change(&mut config)?;
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        let config = self.config().clone();
        let mut keyring_problem = None;
        let profiles = config
            .profiles
            .iter()
            .map(|p| ProfileView {
                profile: to_input(p),
                // A token stored for another endpoint is never sent: as good as none.
                has_token: match self.keyring.get(&p.name) {
                    Ok(t) => t.is_some_and(|t| {
                        t.endpoint
                            .is_none_or(|e| credentials::same_endpoint(&e, &p.endpoint))
                    }),
                    Err(e) => {
                        keyring_problem = Some(e.to_string());
                        false
                    }
                },
                is_default: config.resolve(None).is_ok_and(|d| d.name == p.name),
            })
            .collect();
        Settings {
            config_path: config.path.display().to_string(),
            problem: self
                .problem
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            profiles,
            default_profile: config.resolve(None).ok().map(|p| p.name.clone()),
            close_to_tray: config.app.close_to_tray,
            start_at_login: config.app.start_at_login,
            keyring_problem,
        }
    }

    pub fn app(&self) -> AppSettings {
        self.config().app
    }

    /// The profile new drops go to.
    pub fn default_profile(&self) -> Result<Profile, IpcError> {
        if let Some(problem) = self
            .problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(IpcError::new(
                ErrorCode::ConfigInvalid,
                format!("{problem}. Fix the file, or add a profile in Settings."),
            ));
        }
        self.config().resolve(None).cloned().map_err(profile_error)
    }

    pub fn default_target(&self) -> Result<Target, IpcError> {
        self.default_profile()?.target().map_err(profile_error)
    }

    pub fn connection(&self) -> Connection {
        match self.default_profile().and_then(|p| {
            let cdn = p.cdn_base().map_err(profile_error)?;
            Ok((p, cdn))
        }) {
            Ok((p, cdn)) => Connection {
                profile: Some(p.name.clone()),
                endpoint: Some(p.endpoint.clone()),
                cdn: Some(cdn),
                problem: None,
            },
            Err(e) => Connection {
                profile: None,
                endpoint: None,
                cdn: None,
                problem: Some(e.message),
            },
        }
    }

    /// Every watch folder of every profile, with where its files go.
    pub fn watch_folders(&self) -> Vec<(String, FolderTarget)> {
        let config = self.config();
        config
            .profiles
            .iter()
            .filter_map(|p| p.target().ok().map(|t| (p, t)))
            .flat_map(|(p, target)| {
                p.watch.iter().map(move |w| {
                    (
                        p.name.clone(),
                        FolderTarget {
                            folder: w.clone(),
                            target: target.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    pub fn save_profile(
        &self,
        previous: Option<String>,
        input: ProfileInput,
    ) -> Result<(), IpcError> {
        let profile = to_profile(input);
        let new_name = profile.name.clone();
        self.edit(|c| c.save_profile(previous.as_deref(), profile))?;
        if let Some(old) = previous.filter(|old| *old != new_name) {
            credentials::rename(self.keyring.as_ref(), &old, &new_name)?;
            self.tokens.forget(&old);
            self.tokens.forget(&new_name);
        }
        Ok(())
    }

    pub fn remove_profile(&self, name: &str) -> Result<(), IpcError> {
        let mut removed = false;
        self.edit(|c| c.remove_profile(name).map(|r| removed = r))?;
        if !removed {
            return Err(IpcError::new(
                ErrorCode::NoProfile,
                format!("there is no profile {name:?}; it was removed already"),
            ));
        }
        self.keyring.delete(name)?;
        self.tokens.forget(name);
        Ok(())
    }

    pub fn set_default(&self, name: &str) -> Result<(), IpcError> {
        self.edit(|c| c.set_default(name))
    }

    pub fn set_app(&self, options: AppOptions) -> Result<(), IpcError> {
        self.edit(|c| {
            c.set_app(AppSettings {
                close_to_tray: options.close_to_tray,
                start_at_login: options.start_at_login,
            })
        })
    }

    fn known(&self, profile: &str) -> Result<Profile, IpcError> {
        self.config().get(profile).cloned().ok_or_else(|| {
            profile_error(ProfileError::Unknown {
                name: profile.to_owned(),
                known: Vec::new(),
            })
        })
    }

    /// Stores a token straight in the keyring; nothing else keeps it.
    pub fn set_token(&self, profile: &str, token: &str) -> Result<(), IpcError> {
        let p = self.known(profile)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(IpcError::new(
                ErrorCode::InvalidInput,
                "the token is empty; paste the token your endpoint's admin gave you",
            ));
        }
        // Bound to where the profile points now: if the profile is later moved, the token
        // stays with this endpoint (see `credentials::token_for`).
        self.keyring.set(
            profile,
            &StoredToken::bound(&p.endpoint, Secret::new(token)),
        )?;
        self.tokens.forget(profile);
        Ok(())
    }

    pub fn clear_token(&self, profile: &str) -> Result<(), IpcError> {
        self.keyring.delete(profile)?;
        self.tokens.forget(profile);
        Ok(())
    }

    /// A new signed link to `key` from `profile`'s reelup-server, for the profile's link
    /// lifetime (else the server's default). The private key stays on the server.
    pub async fn sign_link(
        &self,
        profile: &str,
        key: String,
        poster_key: Option<String>,
    ) -> Result<SignedLink, IpcError> {
        let p = self.known(profile)?;
        let token = credentials::token_for(self.keyring.as_ref(), profile, &p.endpoint)?;
        let client = reelup_core::CompanionClient::new(reqwest::Client::new(), &p.endpoint, token);
        let request = |key| reelup_core::LinkRequest {
            key,
            lifetime_secs: p.link_lifetime.map(|d| d.as_secs()),
            policy: reelup_core::LinkPolicy::Canned,
            ip_range: None,
        };
        let link = client.sign_link(p.flavour, &request(key)).await?;
        let poster_url = match poster_key {
            Some(k) => Some(client.sign_link(p.flavour, &request(k)).await?.url),
            None => None,
        };
        Ok(SignedLink {
            url: link.url,
            expires_at: link.expires_at,
            poster_url,
        })
    }

    /// Asks the endpoint whether the stored token works.
    pub async fn test_connection(&self, profile: &str) -> Result<ConnectionCheck, IpcError> {
        let p = self.known(profile)?;
        let token = credentials::token_for(self.keyring.as_ref(), profile, &p.endpoint)?;
        let http = reqwest::Client::new();
        Ok(
            match check_endpoint(&http, &p.endpoint, p.flavour, token.as_ref()).await {
                Ok(who) => ConnectionCheck {
                    ok: true,
                    message: match &who.user {
                        Some(user) => format!("Connected to {} as {user}", p.endpoint),
                        None => format!("Connected to {}", p.endpoint),
                    },
                    user: who.user,
                    prefix: who.prefix,
                },
                Err(e) => ConnectionCheck {
                    ok: false,
                    message: if token.is_none() {
                        format!("{e} (no token is stored for this profile; paste one above)")
                    } else {
                        e.to_string()
                    },
                    user: None,
                    prefix: None,
                },
            },
        )
    }
}
