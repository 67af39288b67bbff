//! Reelup's desktop shell: state, commands, events, tray and window. Upload logic lives in
//! `reelup-core`; this crate only wires it to the webview.

mod commands;
mod config;
pub mod ipc;
mod tray;
mod uploads;

use std::sync::Arc;

use tauri::{DragDropEvent, Emitter, Manager, WindowEvent};

use uploads::Uploads;

pub(crate) fn show_main_window(app: &tauri::AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REELUP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();

    let uploads = Arc::new(Uploads::new());
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(uploads)
        .invoke_handler(tauri::generate_handler![
            commands::connection,
            commands::list_uploads,
            commands::copy_text,
        ])
        .setup(|app| {
            tray::build(app.handle())?;
            app.state::<Arc<Uploads>>().start(app.handle());
            Ok(())
        })
        .on_window_event(|window, event| match event {
            // Drops are taken here, not in the webview: the paths never pass through JS.
            WindowEvent::DragDrop(DragDropEvent::Drop { paths, .. }) => {
                let app = window.app_handle();
                let notices: Vec<String> = match app.state::<Arc<Uploads>>().add(paths.clone()) {
                    Ok(added) => added
                        .rejected
                        .into_iter()
                        .map(|r| format!("{}: {}", r.path, r.reason))
                        .collect(),
                    Err(e) => vec![e.message],
                };
                for message in notices {
                    let _ = app.emit(ipc::EVENT_NOTICE, ipc::Notice { message });
                }
            }
            // Closing the window while uploads run keeps them running; the tray brings it back.
            WindowEvent::CloseRequested { api, .. }
                if window.app_handle().state::<Arc<Uploads>>().unfinished() > 0 =>
            {
                api.prevent_close();
                let _ = window.hide();
            }
            _ => {}
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Reelup could not start: {e}");
        std::process::exit(1);
    }
}
