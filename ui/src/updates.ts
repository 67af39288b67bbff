import { byTestId } from "./dom";
import { asIpcError, type Commands, type IpcError, type UpdateStatus } from "./ipc";
import type { Notify } from "./notices";

export type UpdateCommands = Pick<Commands, "updateStatus" | "checkUpdate" | "installUpdate">;

/** The status line under the version: what the last check found, in words. */
export function updateText(status: UpdateStatus): string {
  if (!status.updatesEnabled) return "This build was made from source and does not update itself.";
  if (status.available) return `Version ${status.available.version} is available.`;
  return "Up to date.";
}

/**
 * Settings → About: the version, a check on demand, and an install that happens only when
 * the user clicks it (the app also checks a few seconds after it starts and announces what
 * it finds through the update event). Installing holds uploads at a part boundary and
 * restarts the app as the new version; a refused signature leaves everything as it was.
 */
export class UpdatesView {
  private status: UpdateStatus | null = null;
  private busy = false;
  private el: { version: HTMLElement; text: HTMLElement; check: HTMLButtonElement; install: HTMLButtonElement };

  constructor(
    root: HTMLElement,
    private commands: UpdateCommands,
    private notify: Notify,
  ) {
    const t = <T extends HTMLElement>(id: string) => byTestId<T>(root, id);
    this.el = {
      version: t("app-version"),
      text: t("update-status"),
      check: t<HTMLButtonElement>("update-check"),
      install: t<HTMLButtonElement>("update-install"),
    };
    this.el.check.addEventListener("click", () => void this.check());
    this.el.install.addEventListener("click", () => void this.install());
  }

  async load(): Promise<void> {
    try {
      this.show(await this.commands.updateStatus());
    } catch (e) {
      this.el.text.textContent = asIpcError(e).message;
    }
  }

  show(status: UpdateStatus): void {
    this.status = status;
    this.el.version.textContent = status.version;
    this.el.text.textContent = updateText(status);
    this.el.text.dataset.state = status.available ? "available" : status.updatesEnabled ? "current" : "disabled";
    this.el.check.hidden = !status.updatesEnabled;
    this.el.install.hidden = !status.available;
    if (status.available) this.el.install.textContent = `Install ${status.available.version} and restart`;
    this.el.check.disabled = this.busy;
    this.el.install.disabled = this.busy;
  }

  private setBusy(busy: boolean, text?: string): void {
    this.busy = busy;
    this.el.check.disabled = busy;
    this.el.install.disabled = busy;
    if (text) this.el.text.textContent = text;
  }

  async check(): Promise<void> {
    if (this.busy) return;
    this.setBusy(true, "Checking for updates…");
    try {
      const status = await this.commands.checkUpdate();
      this.busy = false;
      this.show(status);
    } catch (e) {
      this.failed(e);
    }
  }

  /** An error in the status line, with its code for tests and styling; buttons usable again. */
  private failed(e: unknown): IpcError {
    this.setBusy(false);
    const err = asIpcError(e);
    this.el.text.textContent = err.message;
    this.el.text.dataset.state = "error";
    this.el.text.dataset.code = err.code;
    return err;
  }

  async install(): Promise<void> {
    if (this.busy || !this.status?.available) return;
    const version = this.status.available.version;
    this.setBusy(true, `Downloading and verifying ${version}; uploads pause at the next part boundary, then Reelup restarts…`);
    try {
      await this.commands.installUpdate();
    } catch (e) {
      this.notify(this.failed(e).message, { kind: "error" });
    }
  }
}
