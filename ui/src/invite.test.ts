import { clearMocks } from "@tauri-apps/api/mocks";
import { events as appEvents } from "./bindings";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootBare, byTestId, commandCalls, settle } from "../test/support";
import type { InvitePreview } from "./ipc";

const LINK = "reelup://connect?endpoint=https%3A%2F%2Fup.example.com&cdn=https%3A%2F%2Fcdn.example.com&code=abc";
const PREVIEW: InvitePreview = {
  link: LINK,
  endpoint: "https://up.example.com",
  host: "up.example.com",
  cdn: "https://cdn.example.com",
  cdnHost: "cdn.example.com",
  profile: "up-example-com",
  replaces: false,
  previousHost: null,
  watchFolders: [],
};

async function boot(extra: Record<string, unknown> = {}) {
  return bootBare({
    inspect_invite: () => PREVIEW,
    accept_invite: () => ({ profile: "up-example-com", user: "ana", check: { ok: true, message: "ok", user: "ana", prefix: "ana" } }),
    ...extra,
  });
}

function visible(id: string): boolean {
  return !byTestId(id).hidden;
}

describe("invite links", () => {
  beforeEach(() => {
    document.documentElement.innerHTML = "";
  });
  afterEach(() => clearMocks());

  it("reads a pasted link, shows where it connects, and redeems only after Connect", async () => {
    const calls = await boot();
    byTestId<HTMLInputElement>("invite-link").value = `  ${LINK}  `;
    byTestId("invite-open").click();
    await settle();
    expect(commandCalls(calls, "inspect_invite")).toEqual([{ link: LINK }]);
    expect(visible("invite-confirm")).toBe(true);
    expect(byTestId("invite-endpoint").textContent).toBe("https://up.example.com");
    expect(byTestId("invite-profile").textContent).toBe("up-example-com (new)");
    expect(commandCalls(calls, "accept_invite")).toHaveLength(0);
    byTestId("invite-accept").click();
    await settle();
    expect(commandCalls(calls, "accept_invite")).toEqual([{ link: LINK }]);
    expect(visible("invite-confirm")).toBe(false);
    expect(byTestId("invite-status").textContent).toBe("Connected as ana: profile up-example-com is ready.");
  });

  it("cancel redeems nothing", async () => {
    const calls = await boot();
    await appEvents.reelupInvite.emit(PREVIEW);
    await settle();
    byTestId("invite-cancel").click();
    expect(visible("invite-confirm")).toBe(false);
    expect(commandCalls(calls, "accept_invite")).toHaveLength(0);
  });

  it("an opened link goes to Settings for consent, also one the app started with", async () => {
    const calls = await boot({ take_opened_invite: () => ({ ...PREVIEW, replaces: true }) });
    expect(commandCalls(calls, "take_opened_invite")).toHaveLength(1);
    expect(byTestId("view-settings").hidden).toBe(false);
    expect(visible("invite-confirm")).toBe(true);
    expect(byTestId("invite-profile").textContent).toMatch(/exists/);
    expect(commandCalls(calls, "accept_invite")).toHaveLength(0);
  });

  it("shows the server's refusal of a used code and keeps the form", async () => {
    await boot({
      accept_invite: () => {
        throw { code: "invite_used", message: "This invite link was used already: ask for a new one." };
      },
    });
    await appEvents.reelupInvite.emit(PREVIEW);
    await settle();
    byTestId("invite-accept").click();
    await settle();
    expect(byTestId("invite-error").textContent).toBe("This invite link was used already: ask for a new one.");
    expect(visible("invite-error")).toBe(true);
  });

  it("explains a link that is not an invite", async () => {
    await boot({
      inspect_invite: () => {
        throw { code: "invite_link", message: "This is not a Reelup invite link." };
      },
    });
    byTestId<HTMLInputElement>("invite-link").value = "https://example.com";
    byTestId("invite-open").click();
    await settle();
    expect(byTestId("invite-error").textContent).toBe("This is not a Reelup invite link.");
    expect(visible("invite-confirm")).toBe(false);
  });

  it("shows the host on its own and never focuses Connect", async () => {
    await boot();
    const before = document.activeElement;
    await appEvents.reelupInvite.emit({
      ...PREVIEW,
      endpoint: "https://xn--bcher-kva.example:8443",
      host: "xn--bcher-kva.example:8443",
    });
    await settle();
    expect(byTestId("invite-host").textContent).toBe("xn--bcher-kva.example:8443");
    expect(document.activeElement).not.toBe(byTestId("invite-accept"));
    expect(document.activeElement).toBe(byTestId("invite-cancel"));
    expect(before).not.toBe(byTestId("invite-accept"));
    // Enter on what has focus cancels; it never redeems.
    expect(visible("invite-watch")).toBe(false);
  });

  it("says which watch folders of a re-pointed profile would upload to the new host", async () => {
    const calls = await boot();
    await appEvents.reelupInvite.emit({
      ...PREVIEW,
      profile: "studio",
      replaces: true,
      previousHost: "uploads.studio.example",
      host: "evil.example",
      endpoint: "https://evil.example",
      watchFolders: ["/rec/a", "/rec/b"],
    });
    await settle();
    expect(byTestId("invite-profile").textContent).toBe(
      "studio (exists: moves from uploads.studio.example to evil.example)",
    );
    expect(visible("invite-watch")).toBe(true);
    expect(byTestId("invite-watch-title").textContent).toBe("These 2 watch folders will start uploading to evil.example:");
    const items = [...byTestId("invite-watch-list").querySelectorAll("li")].map((li) => li.textContent);
    expect(items).toEqual(["/rec/a", "/rec/b"]);
    expect(document.activeElement).toBe(byTestId("invite-cancel"));
    expect(commandCalls(calls, "accept_invite")).toHaveLength(0);

    // A new preview without folders hides the list again.
    await appEvents.reelupInvite.emit(PREVIEW);
    await settle();
    expect(visible("invite-watch")).toBe(false);
  });
});
