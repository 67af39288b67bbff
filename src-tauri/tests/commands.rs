//! The app's commands through Tauri's real IPC layer (`tauri::test`, mock runtime): the
//! shapes the UI gets back, errors as `{code, message}`, and tokens that never come back.
//! The real keyring and the real window are covered by tests/app (pytest, tauri-driver).

use std::path::Path;
use std::sync::Arc;

use reelup_app::{Shell, handler};
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, MockRuntime, mock_builder};
use tauri::webview::InvokeRequest;

mod support;
use support::MemoryKeyring;

struct Rig {
    _app: tauri::App<MockRuntime>,
    shell: Arc<Shell>,
    webview: tauri::WebviewWindow<MockRuntime>,
    keyring: Arc<MemoryKeyring>,
    dir: tempfile::TempDir,
}

fn rig_with_config(config: Option<&str>) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config/config.toml");
    if let Some(text) = config {
        std::fs::create_dir_all(config_path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&config_path, text).expect("write config");
    }
    let keyring = Arc::new(MemoryKeyring::default());
    let shell = Arc::new(Shell::open_at(
        keyring.clone(),
        &config_path,
        Some(dir.path().join("data/queue.sqlite3")),
    ));
    let app = mock_builder()
        .manage(shell.clone())
        .invoke_handler(handler())
        // The app's own config and capabilities, so commands are checked as in the app.
        .build(tauri::generate_context!())
        .expect("app");
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("webview");
    Rig {
        _app: app,
        shell,
        webview,
        keyring,
        dir,
    }
}

impl Rig {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        tauri::test::get_ipc_response(
            &self.webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                // The origin the app's own pages have on Linux and macOS.
                url: "tauri://localhost".parse().expect("url"),
                body: tauri::ipc::InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().expect("json"))
    }
}

fn profile(name: &str, endpoint: &str) -> Value {
    json!({
        "name": name, "endpoint": endpoint, "flavour": "reelup-server", "cdn": null,
        "partsInFlight": 4, "bandwidthLimit": null, "partSizeMib": 16, "watch": []
    })
}

fn files_containing(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .expect("read")
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(p);
        }
    }
    found
}

#[test]
fn profiles_are_saved_checked_and_tokens_never_come_back() {
    let rig = rig_with_config(None);
    let s = rig.invoke("get_settings", json!({})).expect("settings");
    assert_eq!(s["profiles"], json!([]));
    assert!(s["problem"].is_null());
    // Core says what is missing; the app says where in the window to fix it (not the CLI).
    let c = rig.invoke("connection", json!({})).expect("connection");
    let problem = c["problem"].as_str().expect("no profile yet");
    assert!(problem.contains("Settings → Add profile"), "{problem}");
    assert!(!problem.contains("reelup profile"), "{problem}");

    // Plain http off this machine is refused, with the fix in the message.
    let e = rig
        .invoke(
            "save_profile",
            json!({ "previousName": null, "profile": profile("lan", "http://10.0.0.5:8765") }),
        )
        .expect_err("http is refused");
    assert_eq!(e["code"], "invalid_input");
    // The setting it is about, for Settings to mark, whatever the message says.
    assert_eq!(e["field"], "endpoint");
    assert!(
        e["message"]
            .as_str()
            .expect("message")
            .contains("use https://"),
        "{e}"
    );

    let s = rig
        .invoke(
            "save_profile",
            json!({ "previousName": null, "profile": profile("local", "http://127.0.0.1:9") }),
        )
        .expect("saved");
    assert_eq!(s["profiles"][0]["name"], "local");
    assert_eq!(s["profiles"][0]["isDefault"], true);
    assert_eq!(s["profiles"][0]["hasToken"], false);
    let c = rig.invoke("connection", json!({})).expect("connection");
    assert_eq!(c["cdn"], "http://127.0.0.1:9/cdn");

    let token = "tok-never-shown-4711";
    let s = rig
        .invoke("set_token", json!({ "profile": "local", "token": token }))
        .expect("token saved");
    assert_eq!(s["profiles"][0]["hasToken"], true);
    assert!(
        !s.to_string().contains(token),
        "settings never carry the token"
    );
    let stored = rig.keyring.0.lock().unwrap()["local"].clone();
    assert_eq!(stored.token.expose(), token);
    // Bound to where the profile pointed when it was pasted.
    assert_eq!(stored.endpoint.as_deref(), Some("http://127.0.0.1:9"));
    assert!(
        files_containing(rig.dir.path(), token).is_empty(),
        "token on disk"
    );

    // Renaming carries the token along; removing takes it away.
    let s = rig
        .invoke(
            "save_profile",
            json!({ "previousName": "local", "profile": profile("studio", "http://127.0.0.1:9") }),
        )
        .expect("renamed");
    assert_eq!(s["profiles"][0]["name"], "studio");
    assert_eq!(s["profiles"][0]["hasToken"], true);
    rig.invoke("remove_profile", json!({ "name": "studio" }))
        .expect("removed");
    assert!(rig.keyring.0.lock().unwrap().is_empty());

    let e = rig
        .invoke("set_token", json!({ "profile": "ghost", "token": "x" }))
        .expect_err("no such profile");
    assert_eq!(e["code"], "no_profile");
}

#[test]
fn a_broken_config_is_shown_not_fatal() {
    let rig = rig_with_config(Some(
        "[profiles.local]\nendpoint = \"http://127.0.0.1:9\"\nparts-in-flight = 0\n",
    ));
    let s = rig
        .invoke("get_settings", json!({}))
        .expect("settings still load");
    let problem = s["problem"].as_str().expect("problem");
    assert!(
        problem.contains("config.toml:1:") && problem.contains("1 to 32"),
        "{problem}"
    );
    let c = rig.invoke("connection", json!({})).expect("connection");
    assert!(
        c["problem"]
            .as_str()
            .expect("problem")
            .contains("config.toml:1:")
    );
    let e = rig
        .shell
        .add(vec!["/tmp/x.mp4".into()])
        .expect_err("nowhere to upload");
    assert_eq!(e.code, reelup_core::ErrorCode::ConfigInvalid);
}

#[test]
fn queue_commands_map_onto_the_engine() {
    let rig = rig_with_config(Some(
        "[profiles.local]\nendpoint = \"http://127.0.0.1:9\"\n",
    ));
    let video = rig.dir.path().join("take one.mp4");
    let notes = rig.dir.path().join("notes.txt");
    std::fs::write(&video, vec![7u8; 4096]).expect("video");
    std::fs::write(&notes, "hello").expect("notes");
    // Files come in by a drop or a second launch (Rust side), never from the webview.
    let added =
        serde_json::to_value(rig.shell.add(vec![video, notes]).expect("added")).expect("json");
    assert_eq!(added["added"].as_array().expect("added").len(), 1);
    assert_eq!(added["added"][0]["name"], "take one.mp4");
    assert_eq!(added["added"][0]["profile"], "local");
    assert_eq!(added["added"][0]["state"], "queued");
    assert!(
        added["rejected"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("not a video")
    );
    let id = added["added"][0]["id"].as_i64().expect("id");

    rig.invoke("pause_upload", json!({ "id": id }))
        .expect("paused");
    let list = rig.invoke("list_uploads", json!({})).expect("list");
    assert_eq!(list[0]["state"], "paused");
    let e = rig
        .invoke("remove_upload", json!({ "id": id }))
        .expect_err("still active");
    assert_eq!(e["code"], "still_active");
    assert!(e["field"].is_null(), "not about a profile setting: {e}");
    // A failure keeps its own code through cancel, not a blanket `queue`.
    let e = rig
        .invoke("cancel_upload", json!({ "id": id + 1000 }))
        .expect_err("no such item");
    assert_eq!(e["code"], "no_such_item", "{e}");
    rig.invoke("resume_all", json!({})).expect("resumed");
    assert_eq!(
        rig.invoke("list_uploads", json!({})).expect("list")[0]["state"],
        "queued"
    );

    let e = rig
        .invoke("open_url", json!({ "url": "file:///etc/passwd" }))
        .expect_err("only web links");
    assert_eq!(e["code"], "invalid_input");
}

#[test]
fn the_webview_cannot_add_paths() {
    let rig = rig_with_config(Some(
        "[profiles.local]\nendpoint = \"http://127.0.0.1:9\"\n",
    ));
    let secret = rig.dir.path().join("secret.mp4");
    std::fs::write(&secret, b"not for upload").expect("write");
    // A script in the page (an XSS, a compromised dependency) must not queue any file.
    let e = rig
        .invoke("add_paths", json!({ "paths": [secret] }))
        .expect_err("add_paths is not granted to the webview");
    let text = e.to_string();
    assert!(text.contains("not allowed"), "{text}");
    assert_eq!(
        rig.invoke("list_uploads", json!({})).expect("list"),
        json!([])
    );
}

/// Every `invoke("...")` in the UI's sources (tests excluded): what the UI calls. The
/// commands are in the generated `bindings.ts` (as `__TAURI_INVOKE("...")`, hence the
/// lowercase scan); a direct `invoke` anywhere else counts too.
fn ui_invokes() -> std::collections::BTreeSet<String> {
    let ui = support::manifest_dir().join("../ui/src");
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&ui).expect("ui/src").flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".ts") || name.ends_with(".test.ts") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .to_ascii_lowercase();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("invoke") {
            rest = &rest[at + "invoke".len()..];
            // invoke("cmd" ... or invoke<T>("cmd" ...
            let after = rest.trim_start_matches(|c: char| c != '(' && c != '\n');
            let Some(args) = after.strip_prefix('(') else {
                continue;
            };
            let args = args.trim_start();
            let Some(quote) = args
                .chars()
                .next()
                .filter(|c| matches!(c, '"' | '\'' | '`'))
            else {
                continue;
            };
            let body = &args[1..];
            if let Some(end) = body.find(quote) {
                found.insert(body[..end].to_owned());
            }
        }
    }
    found
}

#[test]
fn the_capability_grants_only_what_the_ui_invokes() {
    let text = std::fs::read_to_string(support::manifest_dir().join("capabilities/main.json"))
        .expect("capability");
    let capability: Value = serde_json::from_str(&text).expect("json");
    let granted: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p.as_str().expect("a permission name").to_owned())
        .collect();
    let invoked = ui_invokes();
    assert!(
        invoked.contains("list_uploads") && invoked.contains("save_profile"),
        "the scan of ui/src finds the UI's calls: {invoked:?}"
    );
    // Read by the end-to-end tests (tests/app) through the webview: the appindicator's menu
    // cannot be read from outside on every desktop. It only reads menu texts.
    let test_hooks = ["tray_menu"];
    let mut commands = std::collections::BTreeSet::new();
    for permission in &granted {
        match permission.as_str() {
            // The UI listens to the app's events (ipc.ts `events`).
            "core:event:allow-listen" | "core:event:allow-unlisten" => {}
            p => {
                let command = p
                    .strip_prefix("allow-")
                    .unwrap_or_else(|| panic!("{p}: only the app's own commands are granted"))
                    .replace('-', "_");
                assert!(
                    invoked.contains(&command) || test_hooks.contains(&command.as_str()),
                    "{p} is granted but the UI never invokes {command:?}; remove it from capabilities/main.json"
                );
                commands.insert(command);
            }
        }
    }
    for command in &invoked {
        assert!(
            commands.contains(command),
            "the UI invokes {command:?} but capabilities/main.json does not grant allow-{}",
            command.replace('_', "-")
        );
    }
}

#[test]
fn a_second_launch_resolves_relative_paths_against_its_own_directory() {
    let second = Path::new("/home/someone/Videos");
    let args = [
        "reelup",
        "clip.mp4",
        "day1/take.mov",
        "/abs/b.mp4",
        "--in-tray",
        // An invite link handed over by the desktop (deep link): not a file.
        "reelup://connect?endpoint=https%3A%2F%2Fa.example&cdn=https%3A%2F%2Fb.example&code=x",
    ]
    .map(String::from);
    assert_eq!(
        reelup_app::path_args(args, second),
        vec![
            second.join("clip.mp4"),
            second.join("day1/take.mov"),
            Path::new("/abs/b.mp4").to_path_buf(),
        ]
    );
}

#[test]
fn a_build_from_source_has_no_update_channel() {
    let rig = rig_with_config(None);
    let status = rig
        .invoke("update_status", json!({}))
        .expect("update_status");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["updatesEnabled"], false);
    assert_eq!(status["available"], Value::Null);
    let err = rig.invoke("check_update", json!({})).unwrap_err();
    assert_eq!(err["code"], "update_disabled", "{err}");
    let err = rig.invoke("install_update", json!({})).unwrap_err();
    assert_eq!(err["code"], "update_none", "{err}");
}

#[test]
fn an_invite_link_is_read_without_being_redeemed() {
    let rig = rig_with_config(Some(
        "default = \"studio\"\n\n[profiles.studio]\nendpoint = \"https://up.example.com\"\n",
    ));
    let code = "A".repeat(40);
    // Nothing listens at these addresses: reading the link must not contact them.
    let link = format!(
        "reelup://connect?endpoint=https%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fcdn.example.com&code={code}&name=studio"
    );
    let preview = rig
        .invoke("inspect_invite", json!({ "link": format!("  {link}\n") }))
        .expect("inspect_invite");
    assert_eq!(preview["endpoint"], "https://up.example.com");
    assert_eq!(preview["cdn"], "https://cdn.example.com");
    assert_eq!(preview["profile"], "studio");
    assert_eq!(
        preview["replaces"], true,
        "studio exists: its endpoint and CDN would change"
    );
    assert_eq!(preview["link"], link, "trimmed");
    assert!(
        !preview.to_string().contains(&format!("\"{code}\"")),
        "the one-time code is not a field of its own"
    );

    for (bad, code) in [
        ("https://up.example.com/connect", "invite_link_invalid"),
        (
            "reelup://connect?endpoint=http%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fc.example.com&code=AAAAAAAAAAAAAAAAAAAA",
            "invite_link_invalid",
        ),
    ] {
        let err = rig
            .invoke("inspect_invite", json!({ "link": bad }))
            .unwrap_err();
        assert_eq!(err["code"], code, "{bad}: {err}");
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains("new invite link")),
            "{err}"
        );
    }
    assert_eq!(
        rig.invoke("take_opened_invite", json!({})).expect("take"),
        Value::Null
    );
    // Nothing was written: the profile is as it was.
    let text = std::fs::read_to_string(rig.dir.path().join("config/config.toml")).expect("read");
    assert!(!text.contains("cdn.example.com"), "{text}");
}

/// The consent panel's facts: where the link connects (the host on its own, IDN as
/// punycode), and, for a profile that exists, where it points now and which watch folders
/// will start uploading to the new host. A link whose URLs hide their host behind user info,
/// or that is not exactly reelup://connect with the known parameters, is refused.
#[test]
fn an_invite_preview_names_the_host_and_the_folders_that_would_move() {
    let rig = rig_with_config(Some(
        "default = \"studio\"\n\n[profiles.studio]\nendpoint = \"https://up.example.com\"\n\n\
         [[profiles.studio.watch]]\npath = \"/rec/a\"\n\n[[profiles.studio.watch]]\npath = \"/rec/b\"\n",
    ));
    let code = "A".repeat(40);
    let link = format!(
        "reelup://connect?endpoint=https%3A%2F%2Fb%C3%BCcher.example%3A8443&cdn=https%3A%2F%2Fcdn.example.com&code={code}&name=studio"
    );
    let preview = rig
        .invoke("inspect_invite", json!({ "link": link }))
        .expect("inspect_invite");
    assert_eq!(preview["host"], "xn--bcher-kva.example:8443");
    assert_eq!(preview["cdnHost"], "cdn.example.com");
    assert_eq!(preview["previousHost"], "up.example.com");
    assert_eq!(preview["watchFolders"], json!(["/rec/a", "/rec/b"]));

    for (bad, says) in [
        (
            format!(
                "reelup://connect?endpoint=https%3A%2F%2Fup.example.com%40evil.example&cdn=https%3A%2F%2Fc.example.com&code={code}"
            ),
            "connecting to evil.example",
        ),
        (
            format!(
                "reelup://connect?endpoint=https%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fc.example.com&code={code}&then=x"
            ),
            "parameter \"then\"",
        ),
        (
            format!(
                "reelup://evil?endpoint=https%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fc.example.com&code={code}"
            ),
            "not a connect link",
        ),
    ] {
        let err = rig
            .invoke("inspect_invite", json!({ "link": bad }))
            .unwrap_err();
        assert_eq!(err["code"], "invite_link_invalid", "{bad}: {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| m.contains(says)),
            "{err}"
        );
    }
}

/// The preview carries the link back to the page, so its `Debug` (what a log line or a
/// panic would print) must not show the one-time code.
#[test]
fn an_invite_preview_never_shows_its_code_in_debug() {
    let rig = rig_with_config(None);
    let code = "C0de".repeat(10);
    let link = format!(
        "reelup://connect?endpoint=https%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fcdn.example.com&code={code}"
    );
    let value = rig
        .invoke("inspect_invite", json!({ "link": link }))
        .expect("inspect_invite");
    assert_eq!(value["link"], link, "the page gets the link to hand back");
    let preview: reelup_app::ipc::InvitePreview = serde_json::from_value(value).expect("shape");
    let shown = format!("{preview:?}");
    assert!(!shown.contains(&code), "{shown}");
    assert!(shown.contains("up.example.com"), "{shown}");
}

/// Saving a profile from Settings keeps the watch-folder fields the form does not show:
/// the IPC type once lacked them, so any edit reset `stable-secs` to 3 and dropped
/// `extensions`.
#[test]
fn editing_a_profile_keeps_every_watch_folder_field() {
    let rig = rig_with_config(Some(
        "default = \"studio\"\n\n[profiles.studio]\nendpoint = \"https://up.example.com\"\n\n\
         [[profiles.studio.watch]]\npath = \"/srv/rec\"\nstable-secs = 10\nextensions = [\"mov\", \"mxf\"]\n",
    ));
    let settings = rig.invoke("get_settings", json!({})).expect("get_settings");
    let mut profile = settings["profiles"][0].clone();
    assert_eq!(profile["watch"][0]["stableSecs"], 10);
    assert_eq!(profile["watch"][0]["extensions"], json!(["mov", "mxf"]));
    // What the form sends back: the profile as shown, one field changed.
    let object = profile.as_object_mut().expect("object");
    object.remove("hasToken");
    object.remove("isDefault");
    object.insert("partsInFlight".into(), json!(6));
    rig.invoke(
        "save_profile",
        json!({ "previousName": "studio", "profile": profile }),
    )
    .expect("save_profile");
    let text = std::fs::read_to_string(rig.dir.path().join("config/config.toml")).expect("read");
    assert!(text.contains("parts-in-flight = 6"), "{text}");
    assert!(text.contains("stable-secs = 10"), "{text}");
    assert!(text.contains("extensions = [\"mov\", \"mxf\"]"), "{text}");

    // A folder added in Settings (no stableSecs, no extensions) gets the engine's defaults.
    let mut added = profile.clone();
    added["watch"]
        .as_array_mut()
        .expect("watch")
        .push(json!({ "path": "/srv/new", "recursive": false, "afterUpload": "leave" }));
    rig.invoke(
        "save_profile",
        json!({ "previousName": "studio", "profile": added }),
    )
    .expect("save_profile");
    let settings = rig.invoke("get_settings", json!({})).expect("get_settings");
    assert_eq!(settings["profiles"][0]["watch"][1]["stableSecs"], 3);
    assert_eq!(settings["profiles"][0]["watch"][1]["extensions"], json!([]));
}
