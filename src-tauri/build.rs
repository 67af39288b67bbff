/// The app's own commands, declared so each needs a permission like a plugin's: the main
/// window's capability (capabilities/main.json) grants exactly the ones the UI uses.
const COMMANDS: &[&str] = &[
    "connection",
    "list_uploads",
    "add_paths",
    "pause_upload",
    "resume_upload",
    "cancel_upload",
    "remove_upload",
    "pause_all",
    "resume_all",
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
    "set_app_options",
    "watch_status",
    "tray_menu",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script failed");
}
