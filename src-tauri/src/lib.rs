//! Reelup's desktop shell: state, commands, events, tray and window. Upload logic lives in
//! `reelup-core`; this crate only wires it to the webview, the tray and the OS.

mod commands;
mod invites;
pub mod ipc;
pub mod media_scheme;
mod settings;
pub mod summary;
mod tray;
mod updates;
mod uploads;
mod watching;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use reelup_core::ErrorCode;
use reelup_core::config::default_config_path;
use reelup_core::credentials::{CredentialStore, OsKeyring, TokenCache};
use tauri::{DragDropEvent, Manager, Runtime, WindowEvent};

use ipc::{AddedFiles, IpcError, Notice, Settings};
use settings::ProfileSettings;
use uploads::Uploads;
use watching::Watching;

/// Everything the commands reach: the queue, the profiles and the watch folders.
pub struct Shell {
    pub uploads: Arc<Uploads>,
    pub profiles: ProfileSettings,
    pub watching: Watching,
    /// Follows the profiles file once started (see `follow_config`).
    config_follower: Mutex<Option<reelup_core::config::follow::Follower>>,
}

impl Shell {
    /// Opens the profiles file and the queue where the CLI finds them too (the config and
    /// data dirs, or `REELUP_CONFIG_DIR` / `REELUP_DATA_DIR`).
    pub fn open(keyring: Arc<dyn CredentialStore>) -> Self {
        Self::open_at(keyring, &default_config_path(), None)
    }

    /// With the profiles file and the queue at the given places (tests keep theirs apart).
    pub fn open_at(
        keyring: Arc<dyn CredentialStore>,
        config: &std::path::Path,
        queue_path: Option<PathBuf>,
    ) -> Self {
        let tokens = Arc::new(TokenCache::new(keyring.clone()));
        let profiles = ProfileSettings::load(config, keyring, tokens.clone());
        Self {
            uploads: Arc::new(Uploads::open(
                queue_path,
                tokens,
                reelup_core::config::targets_in(config.to_owned()),
            )),
            profiles,
            watching: Watching::default(),
            config_follower: Mutex::new(None),
        }
    }

    /// Files and folders from a drop, a second launch or the command line, for the default
    /// profile.
    pub fn add(&self, paths: Vec<PathBuf>) -> Result<AddedFiles, IpcError> {
        self.uploads.add(paths, self.profiles.default_target())
    }

    /// After any settings change: the watch folders and the queue's tuning follow, and
    /// every window hears the new settings.
    pub fn settings_changed<R: Runtime>(&self, app: &tauri::AppHandle<R>) -> Settings {
        self.follow_settings(app);
        let settings = self.profiles.settings();
        ipc::emit(app, settings.clone());
        ipc::emit(app, self.profiles.connection());
        settings
    }

    /// Starts the queue, tuned from the settings, and the watch folders.
    pub fn start<R: Runtime>(&self, app: &tauri::AppHandle<R>) {
        self.follow_settings(app);
        self.uploads.start(app);
        self.follow_config(app);
    }

    /// The profiles file changed by someone else (`reelup profile set`, an editor) is read
    /// again at once: the queue and watch folders follow it and the windows show it, so
    /// nothing uploads with, or a form saves back, what the file no longer says. The app's
    /// own saves are seen too, and change nothing (`reload` compares).
    fn follow_config<R: Runtime>(&self, app: &tauri::AppHandle<R>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let follower =
            reelup_core::config::follow::follow(&self.profiles.config_path(), move || {
                let _ = tx.send(());
            });
        match follower {
            Ok(f) => {
                *self
                    .config_follower
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(f)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the profiles file; changes made elsewhere show after a restart");
                return;
            }
        }
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            while rx.recv().await.is_some() {
                // A save is a burst of events (write, rename): read once it has settled.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
                let shell = app.state::<Arc<Shell>>();
                if shell.profiles.reload() {
                    tracing::info!("the profiles file changed; its settings apply now");
                    shell.settings_changed(&app);
                }
            }
        });
    }

    /// The queue takes the default profile's tuning (parts in flight, bandwidth, part size
    /// for uploads not yet started) and the watch folders follow the profiles.
    fn follow_settings<R: Runtime>(&self, app: &tauri::AppHandle<R>) {
        let Ok(queue) = self.uploads.queue() else {
            return;
        };
        if let Ok(p) = self.profiles.default_profile() {
            queue.set_parts_in_flight(usize::from(p.parts_in_flight));
            queue.set_bandwidth_limit(p.bandwidth_limit);
            queue.set_part_size(p.part_size_mib * 1024 * 1024);
        }
        self.watching
            .restart(app, queue.clone(), self.profiles.watch_folders());
    }
}

/// SIGTERM (a logout, a service manager) and SIGINT (Ctrl-C in `./dev run`) quit the way
/// the tray's Quit does: the window's size and place are saved. Parts in flight are cut;
/// the next start carries on from the last finished part. A second signal ends the app at
/// once, in case the first quit hangs.
fn quit_on_signals<R: Runtime>(app: &tauri::AppHandle<R>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot listen for SIGTERM/SIGINT; they end the app abruptly");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: quitting"),
                _ = int.recv() => tracing::info!("SIGINT: quitting"),
            }
            app.exit(0);
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("a second signal: ending at once");
            std::process::exit(130);
        });
    }
    #[cfg(not(unix))]
    let _ = app;
}

/// Invite links from the OS: the one this run was started with, and any opened later.
fn listen_for_invites<R: Runtime>(app: &tauri::AppHandle<R>) {
    use tauri_plugin_deep_link::DeepLinkExt;
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        invites::opened(&handle, event.urls().into_iter().map(String::from));
    });
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        invites::opened(app, urls.into_iter().map(String::from));
    }
}

pub(crate) fn show_main_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// A desktop notification; where there is no notification service (a bare X server in
/// tests) it is logged instead.
pub(crate) fn notify<R: Runtime>(app: &tauri::AppHandle<R>, title: &str, body: &str) {
    use tauri_plugin_notification::NotificationExt;
    // Off the event path: showing one is a D-Bus round trip that may wait on a slow or
    // missing notification service.
    let (app, title, body) = (app.clone(), title.to_owned(), body.to_owned());
    tauri::async_runtime::spawn_blocking(move || {
        // Absent under `tauri::test`, which runs without the plugin.
        if app
            .try_state::<tauri_plugin_notification::Notification<R>>()
            .is_none()
        {
            return;
        }
        if let Err(e) = app
            .notification()
            .builder()
            .title(&title)
            .body(&body)
            .show()
        {
            tracing::info!(title, body, error = %e, "could not show a notification");
        }
    });
}

pub(crate) fn set_start_at_login<R: Runtime>(
    app: &tauri::AppHandle<R>,
    on: bool,
) -> Result<(), IpcError> {
    // Absent under `tauri::test`, which runs without the plugin.
    let Some(launcher) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else {
        return Ok(());
    };
    let result = if on {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| {
        IpcError::new(
            ErrorCode::Autostart,
            format!("could not change start at login: {e}"),
        )
    })
}

/// Paths given on a command line (a file manager's "Open with Reelup", or a second launch).
/// The login item starts the app with this: straight to the tray, window closed (when the
/// user keeps uploads going in the tray; otherwise the window shows as usual).
const IN_TRAY_ARG: &str = "--in-tray";

fn starts_in_tray<R: Runtime>(app: &tauri::AppHandle<R>, args: &[String]) -> bool {
    args.iter().any(|a| a == IN_TRAY_ARG) && app.state::<Arc<Shell>>().profiles.app().close_to_tray
}

/// The paths in a command line `args` (program name first), relative ones resolved against
/// `cwd`: the working directory of the process that was given them. For a second launch that
/// is the second process's, which the single-instance plugin passes on; this process's own
/// would turn `reelup clip.mp4` in another folder into a file that does not exist, or worse,
/// another file of the same name.
pub fn path_args(args: impl IntoIterator<Item = String>, cwd: &std::path::Path) -> Vec<PathBuf> {
    args.into_iter()
        .skip(1)
        // Options, and invite links (the deep-link plugin takes those).
        .filter(|a| !a.starts_with('-') && !a.starts_with(invites::SCHEME_PREFIX))
        .map(|a| cwd.join(a))
        .collect()
}

/// Adds dropped or handed-over files on a blocking thread: this is called on the main
/// thread (window events, the single-instance callback), and a folder of 1,000 clips takes
/// a while to read.
fn add_and_report<R: Runtime>(app: &tauri::AppHandle<R>, paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let shell = app.state::<Arc<Shell>>();
        let notices: Vec<String> = match shell.add(paths) {
            Ok(added) => added
                .rejected
                .into_iter()
                .map(|r| format!("{}: {}", r.path, r.reason))
                .collect(),
            Err(e) => vec![e.message],
        };
        for message in notices {
            ipc::emit(&app, Notice { message });
        }
    });
}

/// Every command, listed once. `handler` expands it into Tauri's handler, generic over the
/// runtime so `tauri::test` drives the same commands on its mock runtime; `bindings` into
/// tauri-specta's description of the UI's commands, from which `ui/src/bindings.ts` is
/// generated. tauri-specta needs a generic command's runtime spelled out
/// (`::<tauri::Wry>`), which Tauri's handler does not accept, hence the lists: commands
/// without a runtime parameter; commands with one; then commands outside the UI's contract,
/// in the handler only (`add_paths` is for drops and second launches, never granted to the
/// webview; `tray_menu` is read by the end-to-end tests).
macro_rules! app_commands {
    ($mode:ident) => {
        app_commands!(@$mode
            connection, list_uploads, pause_upload, resume_upload, cancel_upload, pause_all,
            resume_all, retry_all, choose_layout, get_settings, test_connection, watch_status, inspect_invite,
            sign_link, save_poster, no_poster;
            remove_upload, copy_text, open_url, save_profile, remove_profile,
            set_default_profile, set_token, clear_token, pick_folder, pick_videos, set_app_options,
            update_status, check_update, install_update, accept_invite, take_opened_invite;
            add_paths, tray_menu
        )
    };
    (@handler $($plain:ident),*; $($generic:ident),*; $($outside:ident),*) => {
        tauri::generate_handler![
            $(commands::$plain,)* $(commands::$generic,)* $(commands::$outside,)*
        ]
    };
    (@bindings $($plain:ident),*; $($generic:ident),*; $($outside:ident),*) => {
        tauri_specta::collect_commands![
            $(commands::$plain,)* $(commands::$generic::<tauri::Wry>,)*
        ]
    };
}

// After `app_commands!`: a macro is seen only by code that follows it.
pub mod bindings;

/// The command handler, generic so `tauri::test` drives the same commands on its mock
/// runtime.
pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    app_commands!(handler)
}

/// Logs go to stderr and to `<data dir>/logs/reelup-app.<date>.log` (a week kept), so a
/// user can attach them to a bug report; a panic is logged there too. Tokens never reach a
/// log: they are `Secret`s, whose Debug and Display print `***`.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("REELUP_LOG").unwrap_or_else(|_| "info".into());
    let dir = reelup_core::queue::store::default_data_dir().join("logs");
    let file = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("reelup-app")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir);
    let file_error = file.as_ref().err().map(ToString::to_string);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(file.ok().map(|file| {
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(file)
        }))
        .init();
    if let Some(e) = file_error {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot write a log file; logging to stderr only");
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("{info}");
        default_hook(info);
    }));
}

pub fn run() {
    init_logging();

    let shell = Arc::new(Shell::open(Arc::new(OsKeyring::default())));
    let context = tauri::generate_context!();
    // The first line of every run's log: which build this is (the update test reads it).
    tracing::info!(version = %context.package_info().version, "Reelup starting");
    let mut builder = tauri::Builder::default();
    // Only packages carry an update key and feed (`./dev package`); without them the
    // plugin has no config to start from, and a build from source never updates itself.
    if updates::configured(context.config()) {
        builder = builder.plugin(tauri_plugin_updater::Builder::new().build());
    }
    let result = builder
        // First: a second launch hands over its files and focuses this one, then exits. Its
        // invite links (a browser opening `reelup://`) reach the deep-link plugin first.
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            if !starts_in_tray(app, &argv) {
                show_main_window(app);
            }
            add_and_report(app, path_args(argv, std::path::Path::new(&cwd)));
        }))
        // The window starts hidden (tauri.conf.json); this puts it at its remembered size
        // and place, and setup shows it, so it never appears somewhere first and jumps.
        // Visibility is not remembered: quitting from the tray with the window closed must
        // not make the next start invisible.
        .plugin(
            tauri_plugin_window_state::Builder::default()
                .with_state_flags(
                    tauri_plugin_window_state::StateFlags::all()
                        - tauri_plugin_window_state::StateFlags::VISIBLE,
                )
                .build(),
        )
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec![IN_TRAY_ARG]),
        ))
        // `reelup://` links: registered by the packages' desktop entry (Linux), Info.plist
        // (macOS) and the installer (Windows); handled in `invites`.
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .on_page_load(|webview, payload| {
            if payload.event() == tauri::webview::PageLoadEvent::Finished {
                tracing::info!(window = webview.label(), "page loaded");
            }
        })
        // Each queued video, by id, for the webview to draw its poster frame from.
        .register_asynchronous_uri_scheme_protocol(
            media_scheme::SCHEME,
            |ctx, request, responder| {
                let shell = ctx.app_handle().state::<Arc<Shell>>().inner().clone();
                // Off the webview's thread: reading a chunk of a large file takes a moment.
                tauri::async_runtime::spawn_blocking(move || {
                    responder.respond(media_scheme::serve(&shell, &request));
                });
            },
        )
        .manage(shell.clone())
        .manage(updates::Updates::default())
        .manage(invites::OpenedInvite::default())
        .invoke_handler(handler())
        .setup(move |app| {
            tray::build(app.handle(), &shell.uploads)?;
            if let Some(window) = app.get_webview_window("main") {
                media_scheme::allow_cross_origin(&window);
            }
            // Config windows exist by now, placed by the window-state plugin.
            let args: Vec<String> = std::env::args().collect();
            if !starts_in_tray(app.handle(), &args) {
                show_main_window(app.handle());
            }
            shell.start(app.handle());
            quit_on_signals(app.handle());
            let cwd = std::env::current_dir().unwrap_or_default();
            add_and_report(app.handle(), path_args(args, &cwd));
            updates::check_soon(app.handle());
            listen_for_invites(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| match event {
            // Drops are taken here, not in the webview: the paths never pass through JS.
            WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
                add_and_report(window.app_handle(), paths.clone());
            }
            // Uploads go on with the window closed; the tray brings it back.
            WindowEvent::CloseRequested { api, .. }
                if window
                    .app_handle()
                    .state::<Arc<Shell>>()
                    .profiles
                    .app()
                    .close_to_tray =>
            {
                api.prevent_close();
                tracing::info!("window closed: uploads go on in the tray");
                if let Err(e) = window.hide() {
                    tracing::warn!(error = %e, "could not hide the window");
                }
            }
            _ => {}
        })
        .run(context);
    if let Err(e) = result {
        eprintln!("Reelup could not start: {e}");
        std::process::exit(1);
    }
}
