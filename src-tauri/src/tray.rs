//! The tray icon: it is how a closed window comes back, and it shows whether uploads run.

use tauri::AppHandle;
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;

const TRAY_ID: &str = "main";
const IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const UPLOADING: &[u8] = include_bytes!("../../icons/tray-uploading.png");

pub fn build(app: &AppHandle) -> tauri::Result<()> {
    let open = MenuItem::with_id(app, "open", "Open Reelup", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open, &quit])?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(IDLE)?)
        .tooltip("Reelup")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => crate::show_main_window(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(())
}

/// Shows the uploading icon while anything is queued or running.
pub fn refresh(app: &AppHandle, unfinished: usize) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let icon = if unfinished > 0 { UPLOADING } else { IDLE };
    if let Ok(image) = Image::from_bytes(icon) {
        let _ = tray.set_icon(Some(image));
    }
    let tip = match unfinished {
        0 => "Reelup".to_owned(),
        n => format!("Reelup: uploading {n}"),
    };
    let _ = tray.set_tooltip(Some(tip));
}
