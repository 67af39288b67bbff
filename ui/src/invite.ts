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
    host: HTMLElement;
    endpoint: HTMLElement;
    cdn: HTMLElement;
    profile: HTMLElement;
    watch: HTMLElement;
    watchTitle: HTMLElement;
    watchList: HTMLElement;
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
      host: t("invite-host"),
      endpoint: t("invite-endpoint"),
      cdn: t("invite-cdn"),
      profile: t("invite-profile"),
      watch: t("invite-watch"),
      watchTitle: t("invite-watch-title"),
      watchList: t("invite-watch-list"),
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

  /**
   * Shows what a link would do, for the user to agree to (from the field or from outside):
   * the host it connects to on its own (punycode for an internationalised name, so a
   * look-alike shows), and for a profile that exists, where it points now and which watch
   * folders would start uploading to the new host. Focus goes to Cancel, never to Connect:
   * a link opened from outside must not be one Enter away from being accepted.
   */
  show(preview: InvitePreview): void {
    this.pending = preview;
    this.el.link.value = "";
    this.el.host.textContent = preview.host;
    this.el.endpoint.textContent = preview.endpoint;
    this.el.cdn.textContent = preview.cdnHost === preview.host ? preview.cdn : `${preview.cdn} (${preview.cdnHost})`;
    if (!preview.replaces) {
      this.el.profile.textContent = `${preview.profile} (new)`;
    } else if (preview.previousHost && preview.previousHost !== preview.host) {
      this.el.profile.textContent = `${preview.profile} (exists: moves from ${preview.previousHost} to ${preview.host})`;
    } else {
      this.el.profile.textContent = `${preview.profile} (exists: its endpoint and CDN will change)`;
    }
    const folders = preview.replaces ? preview.watchFolders : [];
    this.el.watchList.replaceChildren(
      ...folders.map((f) => {
        const li = document.createElement("li");
        li.textContent = f;
        return li;
      }),
    );
    this.el.watchTitle.textContent =
      folders.length === 1
        ? `This watch folder will start uploading to ${preview.host}:`
        : `These ${folders.length} watch folders will start uploading to ${preview.host}:`;
    this.el.watch.hidden = folders.length === 0;
    this.el.confirm.hidden = false;
    this.message("error", null);
    this.message("status", null);
    this.el.cancel.focus();
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
