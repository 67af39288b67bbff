/// The app's own commands, declared so each needs a permission like a plugin's: the main
/// window's capability (capabilities/main.json) grants exactly the ones the UI uses.
const COMMANDS: &[&str] = &[
    "connection",
    "list_uploads",
    "add_paths",
    "pause_upload",
    "resume_upload",
    "choose_layout",
    "cancel_upload",
    "remove_upload",
    "pause_all",
    "resume_all",
    "retry_all",
    "copy_text",
    "open_url",
    "get_settings",
    "save_profile",
    "remove_profile",
    "set_default_profile",
    "set_token",
    "clear_token",
    "test_connection",
    "pick_folder",
    "pick_videos",
    "set_app_options",
    "watch_status",
    "tray_menu",
    "update_status",
    "check_update",
    "install_update",
    "inspect_invite",
    "accept_invite",
    "take_opened_invite",
    "sign_link",
    "save_poster",
    "no_poster",
];

fn main() {
    // `generate_context!` embeds the built UI; without it the app would fail to compile
    // with a panic deep in a macro. Say once what to run instead.
    println!("cargo::rerun-if-changed=../ui/dist/index.html");
    if !std::path::Path::new("../ui/dist/index.html").exists() {
        println!(
            "cargo::error=the UI is not built yet (ui/dist is missing): run `./dev run` (or \
             `cd ui && npm ci && npm run build`), then build again"
        );
        return;
    }
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script failed");
}
