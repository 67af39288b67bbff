import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from "vitest";
import type { Notify } from "./notices";
import { allByTestId, byTestId, commandCalls, loadPage, mockBackend, profile, settings, settle, type, type Call, type Handler } from "../test/support";
import { commands, type ProfileInput, type Settings } from "./ipc";
import { SettingsView } from "./settings";

function profileRow(name: string): HTMLElement {
  return allByTestId("profile-row").find((r) => r.dataset.name === name)!;
}

const input = <T extends HTMLElement = HTMLInputElement>(testid: string) => byTestId<T>(testid);

describe("SettingsView", () => {
  let calls: Call[];
  let view: SettingsView;
  let notify: Mock<Notify>;
  let onChange: Mock<(s: Settings) => void>;
  let state: Settings;

  function setup(handlers: Record<string, Handler | unknown> = {}) {
    calls = mockBackend({
      save_profile: (a: Record<string, unknown>) => {
        const p = a.profile as ProfileInput;
        const others = state.profiles.filter((x) => x.name !== (a.previousName ?? p.name));
        state = settings({ profiles: [...others, { ...p, hasToken: false, isDefault: others.length === 0 }] });
        return state;
      },
      set_token: (a: Record<string, unknown>) => {
        state = settings({ profiles: state.profiles.map((p) => (p.name === a.profile ? { ...p, hasToken: true } : p)) });
        return state;
      },
      clear_token: (a: Record<string, unknown>) => {
        state = settings({ profiles: state.profiles.map((p) => (p.name === a.profile ? { ...p, hasToken: false } : p)) });
        return state;
      },
      ...handlers,
    });
    view.render(state);
  }

  beforeEach(() => {
    loadPage();
    notify = vi.fn<Notify>(() => null);
    onChange = vi.fn<(s: Settings) => void>();
    state = settings({
      profiles: [
        profile({ name: "studio", isDefault: true, hasToken: true, watch: [{ path: "/home/me/Rec", recursive: true, afterUpload: "move" }] }),
        profile({ name: "archive", endpoint: "https://archive.example.com", isDefault: false, hasToken: false, bandwidthLimit: 2_000_000 }),
      ],
    });
    view = new SettingsView(byTestId("view-settings"), { commands, notify, onChange });
  });
  afterEach(() => clearMocks());

  it("lists profiles with endpoint, default badge and token status", () => {
    setup();
    const studio = profileRow("studio");
    const archive = profileRow("archive");
    expect(byTestId("profile-endpoint-text", studio).textContent).toBe("https://uploads.example.com");
    expect(byTestId("profile-default-badge", studio).textContent).toBe("default");
    expect(archive.querySelector("[data-testid=profile-default-badge]")).toBeNull();
    expect(byTestId("token-status", studio).textContent).toBe("Token saved");
    expect(byTestId("token-status", archive).textContent).toBe("No token");
    // Already the default: no button to make it so.
    expect(studio.querySelector("[data-testid=profile-default]")).toBeNull();
    expect(byTestId("config-problem").hidden).toBe(true);
    expect(byTestId("keyring-problem").hidden).toBe(true);
    expect(byTestId("config-path").textContent).toBe("/home/me/.config/reelup/config.toml");
    expect(byTestId("profile-details", studio).textContent).toBe("reelup-server · 4 parts at once · 16 MiB parts · no speed limit");
    expect(byTestId("profile-details", archive).textContent).toContain("limit 2 MB/s");
  });

  it("says part, not parts, for one part at once", () => {
    state = settings({ profiles: [profile({ partsInFlight: 1 })] });
    setup();
    expect(byTestId("profile-details", profileRow("studio")).textContent).toContain("· 1 part at once ·");
  });

  it("shows config and keyring problems prominently", () => {
    setup();
    view.render(settings({ problem: "config.toml:3: endpoint is plain http", keyringProblem: "No Secret Service on this system." }));
    const problem = byTestId("config-problem");
    expect(problem.hidden).toBe(false);
    expect(problem.textContent).toContain("config.toml:3: endpoint is plain http");
    expect(problem.textContent).toContain("/home/me/.config/reelup/config.toml");
    expect(byTestId("keyring-problem").hidden).toBe(false);
    expect(byTestId("keyring-problem").textContent).toContain("No Secret Service on this system.");
  });

  it("makes a profile the default and removes one after an inline confirmation", async () => {
    setup({
      set_default_profile: () => settings(),
      remove_profile: () => settings(),
    });
    byTestId("profile-default", profileRow("archive")).click();
    await settle();
    expect(commandCalls(calls, "set_default_profile")).toEqual([{ name: "archive" }]);
    expect(onChange).toHaveBeenCalledTimes(1);

    view.render(state);
    const confirmSpy = vi.spyOn(window, "confirm");
    byTestId("profile-remove", profileRow("archive")).click();
    expect(commandCalls(calls, "remove_profile")).toEqual([]);
    expect(byTestId("profile-remove-confirm", profileRow("archive"))).toBe(document.activeElement);
    byTestId("profile-remove-keep", profileRow("archive")).click();
    expect(profileRow("archive").querySelector("[data-testid=profile-remove-confirm]")).toBeNull();
    byTestId("profile-remove", profileRow("archive")).click();
    byTestId("profile-remove-confirm", profileRow("archive")).click();
    await settle();
    expect(commandCalls(calls, "remove_profile")).toEqual([{ name: "archive" }]);
    expect(confirmSpy).not.toHaveBeenCalled();
    expect(allByTestId("profile-row").map((r) => r.dataset.name)).toEqual(["studio"]);
  });

  it("tests a connection and shows the outcome", async () => {
    let answer: (v: unknown) => void = () => {};
    setup({ test_connection: () => new Promise((r) => (answer = r)) });
    byTestId("profile-test", profileRow("studio")).click();
    await settle();
    expect(commandCalls(calls, "test_connection")).toEqual([{ profile: "studio" }]);
    expect(byTestId("profile-test-result", profileRow("studio")).dataset.state).toBe("pending");
    answer({ ok: true, message: "Connected.", user: "ana", prefix: "u/ana/" });
    await settle();
    const ok = byTestId("profile-test-result", profileRow("studio"));
    expect(ok.dataset.state).toBe("ok");
    expect(ok.classList.contains("ok")).toBe(true);
    expect(ok.textContent).toContain("Connected.");
    expect(ok.textContent).toContain("ana");
    expect(ok.textContent).toContain("u/ana/");
  });

  it("shows a failed connection test as a failure", async () => {
    setup({ test_connection: () => Promise.reject({ code: "unauthorized", message: "The endpoint rejected the token." }) });
    byTestId("profile-test", profileRow("archive")).click();
    await settle();
    const fail = byTestId("profile-test-result", profileRow("archive"));
    expect(fail.dataset.state).toBe("fail");
    expect(fail.classList.contains("fail")).toBe(true);
    expect(fail.textContent).toBe("The endpoint rejected the token.");
  });

  it("adds a profile: form values become a ProfileInput, then the token can go in", async () => {
    setup();
    byTestId("profile-add").click();
    expect(byTestId("profile-form").hidden).toBe(false);
    expect(byTestId("token-section").hidden).toBe(true);
    type(input("profile-name"), "travel");
    type(input("profile-endpoint"), "https://travel.example.com/");
    type(input<HTMLSelectElement>("profile-flavour"), "companion");
    type(input("profile-cdn"), "");
    type(input("profile-parts"), "6");
    type(input("profile-bandwidth"), "2.5");
    type(input("profile-part-size"), "32");
    type(input<HTMLSelectElement>("profile-faststart"), "ask");
    byTestId("profile-save").click();
    await settle();
    expect(commandCalls(calls, "save_profile")).toEqual([
      {
        previousName: null,
        profile: {
          name: "travel",
          endpoint: "https://travel.example.com",
          flavour: "companion",
          cdn: null,
          partsInFlight: 6,
          bandwidthLimit: 2_500_000,
          partSizeMib: 32,
          watch: [],
          linkLifetimeSecs: null,
          faststart: "ask",
        },
      },
    ]);
    expect(allByTestId("profile-row").map((r) => r.dataset.name)).toContain("travel");
    // Still open, now on the saved profile, with an empty token field.
    expect(byTestId("profile-form").hidden).toBe(false);
    expect(byTestId("token-section").hidden).toBe(false);
    expect(input("profile-token").value).toBe("");
    expect(byTestId("token-status", byTestId("profile-form")).textContent).toBe("No token");

    type(input("profile-token"), "s3cr3t");
    byTestId("token-save").click();
    await settle();
    expect(commandCalls(calls, "set_token")).toEqual([{ profile: "travel", token: "s3cr3t" }]);
    expect(input("profile-token").value).toBe("");
    expect(byTestId("token-status", byTestId("profile-form")).textContent).toBe("Token saved");
    expect(byTestId("token-status", profileRow("travel")).textContent).toBe("Token saved");
  });

  it("never shows a stored token: the field opens empty every time", async () => {
    setup();
    byTestId("profile-edit", profileRow("studio")).click();
    const token = input("profile-token");
    expect(byTestId("token-section").hidden).toBe(false);
    expect(token.type).toBe("password");
    expect(token.value).toBe("");
    expect(byTestId("token-status", byTestId("profile-form")).textContent).toBe("Token saved");
    type(token, "typed but not saved");
    byTestId("profile-cancel").click();
    expect(token.value).toBe("");
    byTestId("profile-edit", profileRow("studio")).click();
    expect(token.value).toBe("");
    // Switching straight to another profile's form does not carry a typed token over.
    type(token, "meant for studio");
    byTestId("profile-edit", profileRow("archive")).click();
    expect(token.value).toBe("");
    byTestId("profile-edit", profileRow("studio")).click();
    // No command could have read one back.
    expect(calls.map((c) => c.cmd).filter((c) => /token/.test(c))).toEqual([]);

    byTestId("token-save").click();
    await settle();
    expect(commandCalls(calls, "set_token")).toEqual([]);

    byTestId("token-clear").click();
    await settle();
    expect(commandCalls(calls, "clear_token")).toEqual([{ profile: "studio" }]);
    expect(byTestId("token-status", byTestId("profile-form")).textContent).toBe("No token");
  });

  it("edits a profile under its previous name and closes on save", async () => {
    setup();
    byTestId("profile-edit", profileRow("archive")).click();
    expect(input("profile-name").value).toBe("archive");
    expect(input("profile-bandwidth").value).toBe("2");
    type(input("profile-name"), "old-archive");
    type(input("profile-bandwidth"), "");
    byTestId("profile-save").click();
    await settle();
    const [call] = commandCalls(calls, "save_profile");
    expect(call.previousName).toBe("archive");
    expect((call.profile as ProfileInput).name).toBe("old-archive");
    expect((call.profile as ProfileInput).bandwidthLimit).toBeNull();
    expect(byTestId("profile-form").hidden).toBe(true);
    expect(onChange).toHaveBeenCalled();
  });

  it("shows field errors before saving, and the app's message when it refuses", async () => {
    // The field the app names is marked, whatever the message's words: here the message
    // reads as if about the endpoint, but the app said the CDN.
    setup({
      save_profile: () =>
        Promise.reject({ code: "invalid_input", message: 'endpoint "https://x" did not answer', field: "cdn" }),
    });
    byTestId("profile-add").click();
    type(input("profile-name"), "studio");
    type(input("profile-endpoint"), "http://uploads.example.com");
    type(input("profile-parts"), "40");
    byTestId("profile-save").click();
    await settle();
    expect(commandCalls(calls, "save_profile")).toEqual([]);
    const error = byTestId("profile-error");
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain("already a profile named");
    expect(error.textContent).toContain("plain http");
    expect(error.textContent).toContain("1 to 32");
    expect(input("profile-name").getAttribute("aria-invalid")).toBe("true");
    expect(input("profile-endpoint").getAttribute("aria-invalid")).toBe("true");
    expect(input("profile-cdn").hasAttribute("aria-invalid")).toBe(false);

    type(input("profile-name"), "new");
    type(input("profile-endpoint"), "https://x");
    type(input("profile-parts"), "4");
    byTestId("profile-save").click();
    await settle();
    expect(commandCalls(calls, "save_profile")).toHaveLength(1);
    expect(error.textContent).toBe('endpoint "https://x" did not answer');
    expect(input("profile-cdn").getAttribute("aria-invalid")).toBe("true");
    expect(input("profile-endpoint").hasAttribute("aria-invalid")).toBe(false);
    expect(input("profile-name").hasAttribute("aria-invalid")).toBe(false);
    expect(byTestId("profile-form").hidden).toBe(false);
  });

  it("edits watch folders: pick, add, options, remove, live state", async () => {
    setup({ pick_folder: "/home/me/Clips" });
    view.setWatch([{ profile: "studio", path: "/home/me/Rec", state: "missing", message: "The folder is gone." }]);
    const studioState = byTestId("watch-state", profileRow("studio"));
    expect(studioState.dataset.state).toBe("missing");
    expect(studioState.textContent).toContain("The folder is gone.");

    byTestId("profile-edit", profileRow("studio")).click();
    let rows = allByTestId("watch-row");
    expect(rows).toHaveLength(1);
    expect(byTestId("watch-state", rows[0]).dataset.state).toBe("missing");
    expect(byTestId<HTMLInputElement>("watch-recursive", rows[0]).checked).toBe(true);
    expect(byTestId<HTMLSelectElement>("watch-after", rows[0]).value).toBe("move");

    byTestId("watch-pick").click();
    await settle();
    expect(commandCalls(calls, "pick_folder")).toHaveLength(1);
    expect(input("watch-path").value).toBe("/home/me/Clips");
    byTestId("watch-add").click();
    expect(input("watch-path").value).toBe("");
    rows = allByTestId("watch-row");
    expect(rows.map((r) => r.dataset.path)).toEqual(["/home/me/Rec", "/home/me/Clips"]);
    const recursive = byTestId<HTMLInputElement>("watch-recursive", rows[1]);
    recursive.click();
    type(byTestId<HTMLSelectElement>("watch-after", rows[1]), "move");
    byTestId("watch-remove", rows[0]).click();

    // A relative path is refused with a message.
    type(input("watch-path"), "Videos");
    byTestId("watch-add").click();
    expect(byTestId("profile-error").textContent).toContain("not a full path");
    expect(allByTestId("watch-row")).toHaveLength(1);

    // Live state arrives for the folder once watched.
    view.setWatch([{ profile: "studio", path: "/home/me/Clips", state: "watching", message: null }]);
    expect(byTestId("watch-state", allByTestId("watch-row")[0]).dataset.state).toBe("watching");

    byTestId("profile-save").click();
    await settle();
    const [call] = commandCalls(calls, "save_profile");
    expect((call.profile as ProfileInput).watch).toEqual([{ path: "/home/me/Clips", recursive: true, afterUpload: "move" }]);
  });

  it("hands back the watch-folder fields the form does not show", async () => {
    state = settings({
      profiles: [
        profile({
          name: "studio",
          isDefault: true,
          watch: [{ path: "/srv/rec", recursive: false, afterUpload: "leave", extensions: ["mov"], stableSecs: 10 }],
        }),
      ],
    });
    setup();
    byTestId("profile-edit", profileRow("studio")).click();
    type(input("profile-parts"), "6");
    byTestId("profile-save").click();
    await settle();
    const [call] = commandCalls(calls, "save_profile");
    const sent = call.profile as ProfileInput;
    expect(sent.partsInFlight).toBe(6);
    expect(sent.watch).toEqual([{ path: "/srv/rec", recursive: false, afterUpload: "leave", extensions: ["mov"], stableSecs: 10 }]);
  });

  it("keeps what is typed in the form when settings change underneath", () => {
    setup();
    byTestId("profile-add").click();
    type(input("profile-name"), "half-typed");
    view.render(settings({ profiles: [...state.profiles, profile({ name: "from-cli", isDefault: false })] }));
    expect(input("profile-name").value).toBe("half-typed");
    expect(allByTestId("profile-row").map((r) => r.dataset.name)).toContain("from-cli");
  });

  it("takes changes made elsewhere into an open form, keeping what the creator changed", async () => {
    setup();
    byTestId("profile-edit", profileRow("archive")).click();
    type(input("profile-parts"), "6");
    // `reelup profile set archive --limit-rate 5MB --parts 3` while the form is open.
    const fromCli = state.profiles.map((p) => (p.name === "archive" ? { ...p, bandwidthLimit: 5_000_000, partsInFlight: 3 } : p));
    state = settings({ profiles: fromCli });
    view.apply(state);
    expect(input("profile-bandwidth").value).toBe("5");
    expect(input("profile-parts").value).toBe("6");
    expect(byTestId("profile-status").textContent).toMatch(/changes made to this profile elsewhere/);
    byTestId("profile-save").click();
    await settle();
    const [call] = commandCalls(calls, "save_profile");
    expect((call.profile as ProfileInput).bandwidthLimit).toBe(5_000_000);
    expect((call.profile as ProfileInput).partsInFlight).toBe(6);
  });

  it("saves app options and puts them back when the app refuses", async () => {
    setup({
      set_app_options: (a: Record<string, unknown>) => {
        const o = a.options as { closeToTray: boolean; startAtLogin: boolean };
        if (o.startAtLogin) return Promise.reject({ code: "autostart", message: "Cannot register the login item." });
        return settings({ closeToTray: o.closeToTray, startAtLogin: o.startAtLogin });
      },
    });
    const tray = input("opt-close-to-tray");
    const login = input("opt-start-at-login");
    expect(tray.checked).toBe(true);
    expect(login.checked).toBe(false);
    tray.click();
    await settle();
    expect(commandCalls(calls, "set_app_options")).toEqual([{ options: { closeToTray: false, startAtLogin: false } }]);
    expect(tray.checked).toBe(false);
    login.click();
    await settle();
    expect(commandCalls(calls, "set_app_options")[1]).toEqual({ options: { closeToTray: false, startAtLogin: true } });
    expect(notify).toHaveBeenCalledWith("Cannot register the login item.", { kind: "error" });
    expect(login.checked).toBe(false);
  });
});
