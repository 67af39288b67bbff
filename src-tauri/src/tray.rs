//! The tray: how a closed window comes back, and the app's state at a glance. On Linux the
//! appindicator shows no tooltip and sends no clicks, so everything is in the menu:
//! overall progress as text, Pause all / Resume all, the last streaming links, Open, Quit.

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_clipboard_manager::ClipboardExt;

use crate::summary::{TrayIcon, TrayStatus};
use crate::uploads::{RecentLink, Uploads};

const TRAY_ID: &str = "main";

fn icon_bytes(icon: TrayIcon) -> &'static [u8] {
    match icon {
        TrayIcon::Idle => include_bytes!("../../icons/tray-idle.png"),
        TrayIcon::Uploading(0) => include_bytes!("../../icons/tray-uploading-0.png"),
        TrayIcon::Uploading(1) => include_bytes!("../../icons/tray-uploading-1.png"),
        TrayIcon::Uploading(2) => include_bytes!("../../icons/tray-uploading-2.png"),
        TrayIcon::Uploading(_) => include_bytes!("../../icons/tray-uploading-3.png"),
        TrayIcon::Paused => include_bytes!("../../icons/tray-paused.png"),
        TrayIcon::Error => include_bytes!("../../icons/tray-error.png"),
    }
}

/// The menu as built, kept so the status line can be updated in place.
pub struct TrayMenu<R: Runtime> {
    menu: Menu<R>,
    status_item: MenuItem<R>,
    shown: Option<TrayStatus>,
    links: Vec<RecentLink>,
}

pub struct TrayState<R: Runtime>(Mutex<Option<TrayMenu<R>>>);

fn build_menu<R: Runtime>(
    app: &AppHandle<R>,
    status: &TrayStatus,
    links: &[RecentLink],
) -> tauri::Result<(Menu<R>, MenuItem<R>)> {
    let status_item = MenuItem::with_id(app, "status", &status.text, false, None::<&str>)?;
    let menu = Menu::with_items(app, &[&status_item, &PredefinedMenuItem::separator(app)?])?;
    menu.append(&MenuItem::with_id(
        app,
        "pause-all",
        "Pause all",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "resume-all",
        "Resume all",
        true,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    if links.is_empty() {
        menu.append(&MenuItem::with_id(
            app,
            "no-links",
            "No streaming links yet",
            false,
            None::<&str>,
        )?)?;
    } else {
        menu.append(&MenuItem::with_id(
            app,
            "links",
            "Copy a streaming link:",
            false,
            None::<&str>,
        )?)?;
        for (i, link) in links.iter().enumerate() {
            menu.append(&MenuItem::with_id(
                app,
                format!("link-{i}"),
                &link.name,
                true,
                None::<&str>,
            )?)?;
        }
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "open",
        "Open Reelup",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?)?;
    Ok((menu, status_item))
}

pub fn build<R: Runtime>(app: &AppHandle<R>, uploads: &Uploads) -> tauri::Result<()> {
    let status = uploads.status();
    let links = uploads.recent_links();
    let (menu, status_item) = build_menu(app, &status, &links)?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(icon_bytes(status.icon))?)
        .icon_as_template(reelup_core::platform::TRAY_ICON_IS_TEMPLATE)
        .tooltip("Reelup")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .build(app)?;
    app.manage(TrayState(Mutex::new(Some(TrayMenu {
        menu,
        status_item,
        shown: Some(status),
        links,
    }))));
    Ok(())
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let shell = app.state::<std::sync::Arc<crate::Shell>>();
    let uploads = &shell.uploads;
    let result = match id {
        "open" => {
            crate::show_main_window(app);
            Ok(())
        }
        "quit" => {
            app.exit(0);
            Ok(())
        }
        "pause-all" => uploads.pause_all(),
        "resume-all" => uploads.resume_all(),
        link if link.starts_with("link-") => {
            // The link the item was built with: the list may have moved on since.
            let url = link["link-".len()..].parse::<usize>().ok().and_then(|i| {
                let state = app.try_state::<TrayState<R>>()?;
                let guard = state.0.lock().unwrap_or_else(|e| e.into_inner());
                guard.as_ref()?.links.get(i).map(|l| l.url.clone())
            });
            match url {
                Some(url) => app.clipboard().write_text(url).map_err(|e| {
                    crate::ipc::IpcError::new(reelup_core::ErrorCode::Clipboard, e.to_string())
                }),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "tray action failed");
    }
}

/// Brings the icon and the status line up to date; the menu is rebuilt only when new
/// `links` are given.
///
/// What must stay true: no lock is held while calling into the menu or the tray. Those
/// calls wait for the main thread, and the main thread may itself be waiting for the lock
/// (a command, a menu click): holding it across them deadlocks the app.
pub fn update<R: Runtime>(app: &AppHandle<R>, status: &TrayStatus, links: Option<Vec<RecentLink>>) {
    let Some(state) = app.try_state::<TrayState<R>>() else {
        return;
    };
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let (text_changed, icon_changed, status_item) = {
        let mut guard = state.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = guard.as_mut() else {
            return;
        };
        let shown = current.shown.replace(status.clone());
        (
            shown.as_ref().map(|s| &s.text) != Some(&status.text),
            shown.as_ref().map(|s| s.icon) != Some(status.icon),
            current.status_item.clone(),
        )
    };
    if let Some(links) = links {
        if let Ok((menu, status_item)) = build_menu(app, status, &links) {
            let _ = tray.set_menu(Some(menu.clone()));
            if let Some(current) = state.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                current.menu = menu;
                current.status_item = status_item;
                current.links = links;
            }
        }
    } else if text_changed {
        let _ = status_item.set_text(&status.text);
    }
    if icon_changed && let Ok(image) = Image::from_bytes(icon_bytes(status.icon)) {
        let _ = tray.set_icon(Some(image));
        // macOS forgets the template flag with a new image.
        if reelup_core::platform::TRAY_ICON_IS_TEMPLATE {
            let _ = tray.set_icon_as_template(true);
        }
    }
}

/// The menu's item texts as they are now, read back from the menu itself.
pub fn menu_texts<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    let Some(state) = app.try_state::<TrayState<R>>() else {
        return Vec::new();
    };
    let menu = match state.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(current) => current.menu.clone(),
        None => return Vec::new(),
    };
    menu.items()
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.as_menuitem().and_then(|m| m.text().ok()))
        .collect()
}
