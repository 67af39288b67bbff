import { byTestId } from "./dom";
import { asIpcError, type Commands, type InvitePreview, type Settings } from "./ipc";
import type { Notify } from "./notices";

export type InviteCommands = Pick<Commands, "inspectInvite" | "acceptInvite" | "getSettings">;

/**
 * Settings → "Connect with an invite link". A link opened from outside (a browser, a chat)
 * or pasted is only read at first: the user sees where it connects and agrees before its
 * one-time code is redeemed, so a link on a web page cannot quietly point the app at
 * someone else's server.
 */
export class InviteView {
  private pending: InvitePreview | null = null;
  private busy = false;
  private el: {
    link: HTMLInputElement;
    open: HTMLButtonElement;
    confirm: HTMLElement;
    endpoint: HTMLElement;
    cdn: HTMLElement;
    profile: HTMLElement;
    accept: HTMLButtonElement;
    cancel: HTMLButtonElement;
    error: HTMLElement;
    status: HTMLElement;
  };

  constructor(
    root: HTMLElement,
    private commands: InviteCommands,
    private notify: Notify,
    private onConnected: (settings: Settings) => void,
  ) {
    const t = <T extends HTMLElement>(id: string) => byTestId<T>(root, id);
    this.el = {
      link: t<HTMLInputElement>("invite-link"),
      open: t<HTMLButtonElement>("invite-open"),
      confirm: t("invite-confirm"),
      endpoint: t("invite-endpoint"),
      cdn: t("invite-cdn"),
      profile: t("invite-profile"),
      accept: t<HTMLButtonElement>("invite-accept"),
      cancel: t<HTMLButtonElement>("invite-cancel"),
      error: t("invite-error"),
      status: t("invite-status"),
    };
    this.el.open.addEventListener("click", () => void this.inspect(this.el.link.value));
    this.el.link.addEventListener("keydown", (e) => {
      if (e.key === "Enter") void this.inspect(this.el.link.value);
    });
    this.el.accept.addEventListener("click", () => void this.accept());
    this.el.cancel.addEventListener("click", () => this.clear());
  }

  private message(kind: "error" | "status", text: string | null): void {
    const box = kind === "error" ? this.el.error : this.el.status;
    box.textContent = text ?? "";
    box.hidden = !text;
  }

  /** Shows what a link would do, for the user to agree to (from the field or from outside). */
  show(preview: InvitePreview): void {
    this.pending = preview;
    this.el.link.value = "";
    this.el.endpoint.textContent = preview.endpoint;
    this.el.cdn.textContent = preview.cdn;
    this.el.profile.textContent = preview.replaces
      ? `${preview.profile} (exists: its endpoint and CDN will change)`
      : `${preview.profile} (new)`;
    this.el.confirm.hidden = false;
    this.message("error", null);
    this.message("status", null);
    this.el.accept.focus();
  }

  clear(): void {
    this.pending = null;
    this.el.confirm.hidden = true;
  }

  async inspect(link: string): Promise<void> {
    const text = link.trim();
    if (!text) {
      this.message("error", "Paste the reelup://connect link your studio sent you.");
      return;
    }
    try {
      this.show(await this.commands.inspectInvite(text));
    } catch (e) {
      this.clear();
      this.message("error", asIpcError(e).message);
    }
  }

  async accept(): Promise<void> {
    if (!this.pending || this.busy) return;
    this.busy = true;
    this.el.accept.disabled = true;
    this.message("status", "Connecting…");
    try {
      const done = await this.commands.acceptInvite(this.pending.link);
      this.clear();
      const text = done.check.ok
        ? `Connected as ${done.user}: profile ${done.profile} is ready.`
        : `Profile ${done.profile} is set up, but the connection test failed: ${done.check.message}`;
      this.message("status", text);
      this.notify(text, { kind: done.check.ok ? "info" : "error" });
      this.onConnected(await this.commands.getSettings());
    } catch (e) {
      this.message("status", null);
      this.message("error", asIpcError(e).message);
    } finally {
      this.busy = false;
      this.el.accept.disabled = false;
    }
  }
}
