//! The IPC contract as TypeScript: `ui/src/bindings.ts` is generated from the commands
//! (`app_commands!` in lib.rs) and the types and events in `ipc.rs`, so the UI cannot drift
//! from them. `tests/bindings.rs` fails when the checked-in file is stale; `./dev bindings`
//! writes it again.

use std::path::Path;

use crate::{commands, ipc};

/// Where the bindings live, from the workspace root.
pub const PATH: &str = "ui/src/bindings.ts";

/// Every command, event and error type the UI sees.
pub fn builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(app_commands!(bindings))
        .events(tauri_specta::collect_events![
            ipc::UploadItem,
            ipc::UploadsAdded,
            ipc::ProgressBatch,
            ipc::UploadWaiting,
            ipc::RemovedItem,
            ipc::Notice,
            ipc::Settings,
            ipc::Connection,
            ipc::WatchStatuses,
            ipc::UpdateStatus,
            ipc::InvitePreview,
        ])
        // Commands reject with `IpcError`, as `invoke` does; the UI catches it.
        .error_handling(tauri_specta::ErrorHandlingMode::Throw)
        // One type per Rust type, in the shape Rust sends; phases would add a looser
        // `_Deserialize` twin of every type, where each `Option` may be left out.
        .disable_serde_phases()
        // Every integer that crosses (ids, byte counts, Unix seconds, bytes per second) is
        // far below 2^53, where a JavaScript number stops being exact: a byte count there
        // would be 9 PB. So they are numbers, as the UI always had them, not BigInts.
        .dangerously_cast_bigints_to_number()
}

/// Writes the bindings to `path`.
pub fn export(path: &Path) -> Result<(), String> {
    let header =
        "// Generated from src-tauri (crate::bindings) by `./dev bindings`; do not edit.\n";
    builder()
        .export(
            specta_typescript::Typescript::default().header(header),
            path,
        )
        .map_err(|e| format!("cannot write the IPC bindings to {}: {e}", path.display()))
}
