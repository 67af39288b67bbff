import { clearMocks } from "@tauri-apps/api/mocks";
import { events as appEvents } from "./bindings";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bootBare, byTestId, commandCalls, settle } from "../test/support";
import type { UpdateStatus } from "./ipc";
import { updateText } from "./updates";

const CURRENT: UpdateStatus = { version: "0.1.0", updatesEnabled: true, available: null };
const NEWER: UpdateStatus = { version: "0.1.0", updatesEnabled: true, available: { version: "0.1.1", notes: "Faster" } };

async function boot(extra: Record<string, unknown> = {}) {
  return bootBare({ update_status: () => CURRENT, ...extra });
}

describe("updates", () => {
  beforeEach(() => {
    document.documentElement.innerHTML = "";
  });
  afterEach(() => clearMocks());

  it("words each state", () => {
    expect(updateText({ version: "1", updatesEnabled: false, available: null })).toMatch(/from source/);
    expect(updateText(CURRENT)).toBe("Up to date.");
    expect(updateText(NEWER)).toBe("Version 0.1.1 is available.");
  });

  it("shows the version, and no update buttons in a build from source", async () => {
    await boot({ update_status: () => ({ version: "0.1.0", updatesEnabled: false, available: null }) });
    expect(byTestId("app-version").textContent).toBe("0.1.0");
    expect(byTestId("update-check").hidden).toBe(true);
    expect(byTestId("update-install").hidden).toBe(true);
  });

  it("checks on demand and installs only when asked", async () => {
    const calls = await boot({ check_update: () => NEWER, install_update: () => undefined });
    expect(byTestId("update-install").hidden).toBe(true);
    byTestId("update-check").click();
    await settle();
    expect(byTestId("update-status").textContent).toBe("Version 0.1.1 is available.");
    const install = byTestId<HTMLButtonElement>("update-install");
    expect(install.hidden).toBe(false);
    expect(commandCalls(calls, "install_update")).toHaveLength(0);
    install.click();
    await settle();
    expect(commandCalls(calls, "install_update")).toHaveLength(1);
  });

  it("says why an update was refused and leaves the buttons usable", async () => {
    await boot({
      check_update: () => NEWER,
      install_update: () => {
        throw { code: "update_signature", message: "The update was refused: its signature does not match." };
      },
    });
    byTestId("update-check").click();
    await settle();
    byTestId("update-install").click();
    await settle();
    const text = byTestId("update-status");
    expect(text.dataset.code).toBe("update_signature");
    expect(text.textContent).toMatch(/refused/);
    expect(byTestId<HTMLButtonElement>("update-install").disabled).toBe(false);
    expect(document.querySelector("[data-testid=notice]")?.textContent ?? document.body.textContent).toMatch(/refused/);
  });

  it("announces an update found by the check on start", async () => {
    await boot();
    await appEvents.reelupUpdate.emit(NEWER);
    await settle();
    expect(byTestId("update-install").hidden).toBe(false);
    expect(document.querySelector("[data-testid=notice-update]")).not.toBeNull();
  });
});
