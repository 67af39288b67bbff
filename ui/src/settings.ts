import { button, byTestId, h } from "./dom";
import { toMegabytesText } from "./format";
import {
  asIpcError,
  type AfterUpload,
  type Commands,
  type AppOptions,
  type ConnectionCheck,
  type ProfileView,
  type Settings,
  type WatchFolder,
  type WatchState,
  type WatchStatus,
} from "./ipc";
import type { Notify } from "./notices";
import {
  formField,
  isAbsolutePath,
  toFormValues,
  toProfileInput,
  type FieldError,
  type ProfileField,
  type ProfileFormValues,
} from "./profile-form";

export type SettingsCommands = Pick<
  Commands,
  | "saveProfile"
  | "removeProfile"
  | "setDefaultProfile"
  | "setToken"
  | "clearToken"
  | "testConnection"
  | "pickFolder"
  | "setAppOptions"
>;

export interface SettingsOptions {
  commands: SettingsCommands;
  notify: Notify;
  /** After any Settings is applied (from a command's answer or the settings event). */
  onChange?: (settings: Settings) => void;
}

const FIELD_TESTID: Record<ProfileField, string> = {
  name: "profile-name",
  endpoint: "profile-endpoint",
  flavour: "profile-flavour",
  cdn: "profile-cdn",
  parts: "profile-parts",
  bandwidth: "profile-bandwidth",
  partSize: "profile-part-size",
  watch: "watch-path",
};

const FLAVOUR_LABEL: Record<string, string> = {
  "reelup-server": "reelup-server",
  companion: "Uppy Companion",
};

const WATCH_LABEL: Record<WatchState, string> = {
  watching: "Watching",
  missing: "Folder missing",
  unreadable: "Cannot read folder",
};

type TestState = { pending: true } | { pending: false; result: ConnectionCheck };

/** A folder's live state, for a profile row or the form: `watch-state` with data-state. */
export function watchStateBadge(status: WatchStatus | undefined): HTMLElement | null {
  if (!status) return null;
  const label = WATCH_LABEL[status.state];
  return h(
    "span",
    { class: `watch-state ${status.state}`, testid: "watch-state", "data-state": status.state, title: status.message ?? label },
    status.message ? `${label}: ${status.message}` : label,
  );
}

/**
 * Settings: the config file's health, profiles (list, form, token, connection test, watch
 * folders with their live state) and app options. Every command that changes settings
 * answers with the whole Settings, which is rendered as it comes, like the settings event.
 */
export class SettingsView {
  private settings: Settings | null = null;
  private watchStatuses: WatchStatus[] = [];
  /** The profile open in the form: null name for a new one; null when the form is closed. */
  /**
   * The profile being edited, and its values as the form last took them from the file:
   * what tells a field the creator changed from one the file changed since (see
   * `followStored`).
   */
  private editing: { previousName: string | null; stored: ProfileFormValues | null } | null = null;
  private draftWatch: WatchFolder[] = [];
  private confirming: string | null = null;
  private tests = new Map<string, TestState>();
  private optionsBusy = false;

  private el: {
    configProblem: HTMLElement;
    configProblemText: HTMLElement;
    keyringProblem: HTMLElement;
    configPath: HTMLElement;
    profileList: HTMLElement;
    profilesEmpty: HTMLElement;
    add: HTMLButtonElement;
    form: HTMLFormElement;
    formTitle: HTMLElement;
    name: HTMLInputElement;
    endpoint: HTMLInputElement;
    flavour: HTMLSelectElement;
    cdn: HTMLInputElement;
    parts: HTMLInputElement;
    bandwidth: HTMLInputElement;
    partSize: HTMLInputElement;
    faststart: HTMLSelectElement;
    watchList: HTMLElement;
    watchPath: HTMLInputElement;
    watchPick: HTMLButtonElement;
    watchAdd: HTMLButtonElement;
    error: HTMLElement;
    status: HTMLElement;
    save: HTMLButtonElement;
    cancel: HTMLButtonElement;
    tokenSection: HTMLElement;
    token: HTMLInputElement;
    tokenSave: HTMLButtonElement;
    tokenClear: HTMLButtonElement;
    tokenStatus: HTMLElement;
    closeToTray: HTMLInputElement;
    startAtLogin: HTMLInputElement;
  };

  constructor(
    private root: HTMLElement,
    private opts: SettingsOptions,
  ) {
    const t = <T extends HTMLElement>(id: string) => byTestId<T>(root, id);
    this.el = {
      configProblem: t("config-problem"),
      configProblemText: t("config-problem-text"),
      keyringProblem: t("keyring-problem"),
      configPath: t("config-path"),
      profileList: t("profile-list"),
      profilesEmpty: t("profiles-empty"),
      add: t("profile-add"),
      form: t("profile-form"),
      formTitle: t("profile-form-title"),
      name: t("profile-name"),
      endpoint: t("profile-endpoint"),
      flavour: t("profile-flavour"),
      cdn: t("profile-cdn"),
      parts: t("profile-parts"),
      bandwidth: t("profile-bandwidth"),
      partSize: t("profile-part-size"),
      faststart: t("profile-faststart"),
      watchList: t("watch-list"),
      watchPath: t("watch-path"),
      watchPick: t("watch-pick"),
      watchAdd: t("watch-add"),
      error: t("profile-error"),
      status: t("profile-status"),
      save: t("profile-save"),
      cancel: t("profile-cancel"),
      tokenSection: t("token-section"),
      token: t("profile-token"),
      tokenSave: t("token-save"),
      tokenClear: t("token-clear"),
      tokenStatus: t("token-status"),
      closeToTray: t("opt-close-to-tray"),
      startAtLogin: t("opt-start-at-login"),
    };
    const el = this.el;
    el.add.addEventListener("click", () => this.openForm(null));
    el.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
    el.cancel.addEventListener("click", () => this.closeForm());
    el.form.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        this.closeForm();
      }
    });
    el.watchPick.addEventListener("click", () => void this.pickFolder());
    el.watchAdd.addEventListener("click", () => this.addWatch());
    el.watchPath.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.addWatch();
      }
    });
    el.tokenSave.addEventListener("click", () => void this.saveToken());
    el.token.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void this.saveToken();
      }
    });
    el.tokenClear.addEventListener("click", () => void this.clearToken());
    el.closeToTray.addEventListener("change", () => void this.saveOptions());
    el.startAtLogin.addEventListener("change", () => void this.saveOptions());
    el.profileList.addEventListener("click", (e) => this.onProfileClick(e));
    el.profileList.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.confirming !== null) {
        this.confirming = null;
        this.renderProfiles();
      }
    });
  }

  get current(): Settings | null {
    return this.settings;
  }

  get formOpen(): boolean {
    return this.editing !== null;
  }

  /** Renders a Settings (from the event or a command's answer) and reports the change. */
  apply(settings: Settings): void {
    this.render(settings);
    this.opts.onChange?.(settings);
  }

  render(settings: Settings): void {
    this.settings = settings;
    const el = this.el;
    el.configProblem.hidden = settings.problem === null;
    el.configProblemText.textContent = settings.problem ?? "";
    el.keyringProblem.hidden = settings.keyringProblem === null;
    byTestId(el.keyringProblem, "keyring-problem-text").textContent = settings.keyringProblem ?? "";
    el.configPath.textContent = settings.configPath;
    for (const span of this.root.querySelectorAll<HTMLElement>("[data-config-path]")) span.textContent = settings.configPath;
    if (!this.optionsBusy) {
      el.closeToTray.checked = settings.closeToTray;
      el.startAtLogin.checked = settings.startAtLogin;
    }
    for (const name of [...this.tests.keys()]) {
      if (!settings.profiles.some((p) => p.name === name)) this.tests.delete(name);
    }
    this.renderProfiles();
    this.renderTokenStatus();
    this.followStored();
  }

  /**
   * The file changed under an open form (`reelup profile set`, an editor, another
   * window): each field the creator has not touched takes the file's new value, and each
   * they changed keeps theirs. So Save never writes back a stale copy of what someone else
   * set, and never drops what the creator typed.
   */
  private followStored(): void {
    const editing = this.editing;
    if (!editing?.stored || editing.previousName === null) return;
    const profile = this.profile(editing.previousName);
    if (!profile) return;
    const now = toFormValues(profile);
    const before = editing.stored;
    const form = this.formFields();
    const updated: string[] = [];
    for (const key of Object.keys(form) as (keyof typeof form)[]) {
      if (now[key] !== before[key] && form[key].value === before[key]) {
        form[key].value = now[key];
        updated.push(key);
      }
    }
    const watchChanged = JSON.stringify(now.watch) !== JSON.stringify(before.watch);
    if (watchChanged && JSON.stringify(this.draftWatch) === JSON.stringify(before.watch)) {
      this.draftWatch = now.watch.map((w) => ({ ...w }));
      this.renderWatchDraft();
      updated.push("watch");
    }
    editing.stored = now;
    if (updated.length > 0) this.setStatus("Updated with the changes made to this profile elsewhere.");
  }

  /** The form's inputs for the values a profile is stored with, by value name. */
  private formFields(): Record<"name" | "endpoint" | "flavour" | "cdn" | "parts" | "bandwidth" | "partSize" | "faststart", { value: string }> {
    const el = this.el;
    return {
      name: el.name,
      endpoint: el.endpoint,
      flavour: el.flavour,
      cdn: el.cdn,
      parts: el.parts,
      bandwidth: el.bandwidth,
      partSize: el.partSize,
      faststart: el.faststart,
    };
  }

  setWatch(statuses: WatchStatus[]): void {
    this.watchStatuses = statuses;
    this.renderProfiles();
    if (this.editing) this.renderWatchDraft();
  }

  private statusOf(profile: string | null, path: string): WatchStatus | undefined {
    if (profile === null) return undefined;
    return this.watchStatuses.find((s) => s.profile === profile && s.path === path);
  }

  private profile(name: string | null): ProfileView | undefined {
    return name === null ? undefined : this.settings?.profiles.find((p) => p.name === name);
  }

  // ---- profile list ----

  private renderProfiles(): void {
    const profiles = this.settings?.profiles ?? [];
    this.el.profilesEmpty.hidden = profiles.length > 0;
    // The list is small and rebuilt whole; keep keyboard focus where it was.
    const active = document.activeElement as HTMLElement | null;
    const focus =
      active && this.el.profileList.contains(active)
        ? { testid: active.dataset.testid, name: active.closest<HTMLElement>("[data-name]")?.dataset.name }
        : null;
    this.el.profileList.replaceChildren(...profiles.map((p) => this.profileRow(p)));
    if (focus?.testid && focus.name !== undefined) {
      const row = [...this.el.profileList.querySelectorAll<HTMLElement>("[data-name]")].find((r) => r.dataset.name === focus.name);
      (row?.querySelector<HTMLElement>(`[data-testid="${focus.testid}"]`) ?? row?.querySelector<HTMLElement>("button"))?.focus();
    }
  }

  private profileRow(p: ProfileView): HTMLElement {
    const test = this.tests.get(p.name);
    const details = [FLAVOUR_LABEL[p.flavour] ?? p.flavour];
    details.push(p.partsInFlight === 1 ? "1 part at once" : `${p.partsInFlight} parts at once`);
    details.push(`${p.partSizeMib} MiB parts`);
    details.push(p.bandwidthLimit === null ? "no speed limit" : `limit ${toMegabytesText(p.bandwidthLimit)} MB/s`);

    const row = h(
      "li",
      { class: "profile-row", testid: "profile-row", "data-name": p.name, "data-default": p.isDefault ? "true" : "false" },
      h(
        "div",
        { class: "profile-body" },
        h(
          "div",
          { class: "profile-title" },
          h("span", { class: "profile-name", testid: "profile-row-name" }, p.name),
          p.isDefault && h("span", { class: "badge accent", testid: "profile-default-badge" }, "default"),
          h(
            "span",
            { class: `badge token ${p.hasToken ? "ok" : "warn"}`, testid: "token-status", "data-has-token": String(p.hasToken) },
            p.hasToken ? "Token saved" : "No token",
          ),
        ),
        h("div", { class: "profile-endpoint", testid: "profile-endpoint-text" }, p.endpoint),
        p.cdn && h("div", { class: "profile-cdn muted" }, `Streams from ${p.cdn}`),
        h("div", { class: "profile-details muted", testid: "profile-details" }, details.join(" · ")),
        p.watch.length > 0 &&
          h(
            "ul",
            { class: "profile-watch", "aria-label": `Folders watched for ${p.name}` },
            ...p.watch.map((w) =>
              h(
                "li",
                { class: "profile-watch-row", testid: "profile-watch", "data-path": w.path },
                h("span", { class: "path" }, w.path),
                watchStateBadge(this.statusOf(p.name, w.path)),
              ),
            ),
          ),
        test && this.testResult(test),
      ),
      h(
        "div",
        { class: "profile-actions" },
        button({ label: "Test", testid: "profile-test", icon: "test", title: `Test the connection of ${p.name}` }, {
          "data-action": "test",
          disabled: test?.pending === true,
        }),
        button({ label: "Edit", testid: "profile-edit", icon: "edit", title: `Edit ${p.name}` }, { "data-action": "edit" }),
        !p.isDefault &&
          button(
            { label: "Make default", testid: "profile-default", icon: "star", title: `Upload to ${p.name} from now on` },
            { "data-action": "default" },
          ),
        button(
          { label: `Remove ${p.name}`, title: `Remove ${p.name}`, testid: "profile-remove", icon: "remove", iconOnly: true, className: "danger" },
          { "data-action": "remove" },
        ),
      ),
    );
    if (this.confirming === p.name) {
      row.append(
        h(
          "div",
          { class: "confirm", role: "group", "aria-label": `Remove ${p.name}?` },
          h("span", {}, `Remove profile “${p.name}”?`),
          button({ label: "Remove", testid: "profile-remove-confirm", className: "danger solid" }, { "data-action": "remove-confirm" }),
          button({ label: "Keep", testid: "profile-remove-keep" }, { "data-action": "remove-keep" }),
        ),
      );
    }
    return row;
  }

  private testResult(test: TestState): HTMLElement {
    if (test.pending) {
      return h("div", { class: "test-result pending", testid: "profile-test-result", "data-state": "pending", role: "status" }, "Testing…");
    }
    const r = test.result;
    const extra = [r.user && `Signed in as ${r.user}`, r.prefix && `uploads go under ${r.prefix}`].filter(Boolean).join(" · ");
    return h(
      "div",
      { class: `test-result ${r.ok ? "ok" : "fail"}`, testid: "profile-test-result", "data-state": r.ok ? "ok" : "fail", role: "status" },
      h("span", { class: "test-message" }, r.message),
      extra && h("span", { class: "test-extra" }, extra),
    );
  }

  private onProfileClick(e: MouseEvent): void {
    const btn = (e.target as Element | null)?.closest<HTMLButtonElement>("button[data-action]");
    const row = btn?.closest<HTMLElement>("[data-name]");
    if (!btn || !row) return;
    const name = row.dataset.name!;
    switch (btn.dataset.action) {
      case "test":
        void this.test(name);
        break;
      case "edit":
        this.openForm(this.profile(name) ?? null);
        break;
      case "default":
        void this.run(btn, () => this.opts.commands.setDefaultProfile(name));
        break;
      case "remove":
        this.confirming = name;
        this.renderProfiles();
        byTestId<HTMLElement>(this.el.profileList, "profile-remove-confirm").focus();
        break;
      case "remove-keep":
        this.confirming = null;
        this.renderProfiles();
        break;
      case "remove-confirm":
        this.confirming = null;
        void this.run(btn, async () => {
          const settings = await this.opts.commands.removeProfile(name);
          if (this.editing?.previousName === name) this.closeForm();
          return settings;
        });
        break;
    }
  }

  /** Runs a command that answers with Settings; errors become a notice. */
  private async run(btn: HTMLButtonElement | null, command: () => Promise<Settings>): Promise<boolean> {
    if (btn) btn.disabled = true;
    try {
      this.apply(await command());
      return true;
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
      this.renderProfiles();
      return false;
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  private async test(name: string): Promise<void> {
    this.tests.set(name, { pending: true });
    this.renderProfiles();
    let result: ConnectionCheck;
    try {
      result = await this.opts.commands.testConnection(name);
    } catch (e) {
      result = { ok: false, message: asIpcError(e).message, user: null, prefix: null };
    }
    this.tests.set(name, { pending: false, result });
    this.renderProfiles();
  }

  // ---- form ----

  openForm(profile: ProfileView | null): void {
    const el = this.el;
    const values = toFormValues(profile ?? null);
    this.editing = { previousName: profile?.name ?? null, stored: profile ? values : null };
    el.name.value = values.name;
    el.endpoint.value = values.endpoint;
    el.flavour.value = values.flavour;
    el.cdn.value = values.cdn;
    el.parts.value = values.parts;
    el.bandwidth.value = values.bandwidth;
    el.partSize.value = values.partSize;
    el.faststart.value = values.faststart;
    el.watchPath.value = "";
    this.draftWatch = values.watch;
    // A stored token is never shown: the field always opens empty.
    el.token.value = "";
    this.setStatus("");
    this.clearErrors();
    this.renderFormMode();
    this.renderWatchDraft();
    el.form.hidden = false;
    el.add.hidden = true;
    el.form.scrollIntoView?.({ block: "nearest" });
    el.name.focus();
  }

  closeForm(): void {
    const el = this.el;
    this.editing = null;
    el.token.value = "";
    this.clearErrors();
    this.setStatus("");
    el.form.hidden = true;
    el.add.hidden = false;
  }

  private renderFormMode(): void {
    const name = this.editing?.previousName ?? null;
    this.el.formTitle.textContent = name === null ? "New profile" : `Edit “${name}”`;
    this.el.tokenSection.hidden = name === null;
    this.el.save.querySelector(".btn-label")!.textContent = name === null ? "Add profile" : "Save changes";
    this.el.cancel.textContent = name === null ? "Cancel" : "Close";
    this.renderTokenStatus();
  }

  private renderTokenStatus(): void {
    const p = this.profile(this.editing?.previousName ?? null);
    const has = p?.hasToken ?? false;
    this.el.tokenStatus.textContent = has ? "Token saved" : "No token";
    this.el.tokenStatus.dataset.hasToken = String(has);
    this.el.tokenStatus.className = `badge token ${has ? "ok" : "warn"}`;
    this.el.tokenClear.disabled = !has;
  }

  private values(): ProfileFormValues {
    const el = this.el;
    return {
      name: el.name.value,
      endpoint: el.endpoint.value,
      flavour: el.flavour.value,
      cdn: el.cdn.value,
      parts: el.parts.value,
      bandwidth: el.bandwidth.value,
      partSize: el.partSize.value,
      watch: this.draftWatch.map((w) => ({ ...w })),
      // Not in the form: kept as the profile has it (set with `reelup profile set`).
      linkLifetimeSecs: this.profile(this.editing?.previousName ?? null)?.linkLifetimeSecs ?? null,
      faststart: el.faststart.value,
    };
  }

  private async save(): Promise<void> {
    if (!this.editing) return;
    const previousName = this.editing.previousName;
    const taken = (this.settings?.profiles ?? []).map((p) => p.name).filter((n) => n !== previousName);
    const conversion = toProfileInput(this.values(), taken);
    this.clearErrors();
    if (!conversion.ok) {
      this.showErrors(conversion.errors);
      return;
    }
    const input = conversion.input;
    this.el.save.disabled = true;
    try {
      const settings = await this.opts.commands.saveProfile(previousName, input);
      this.apply(settings);
      if (previousName === null) {
        // Stay open on the new profile so its token can go in next.
        this.editing = { previousName: input.name, stored: toFormValues(this.profile(input.name) ?? null) };
        this.renderFormMode();
        this.renderWatchDraft();
        this.setStatus(`Saved “${input.name}”. Paste its token below to start uploading.`);
        this.el.token.value = "";
        this.el.token.focus();
      } else {
        this.closeForm();
        this.opts.notify(`Saved “${input.name}”.`);
      }
    } catch (e) {
      const error = asIpcError(e);
      const field = error.field === null ? null : formField(error.field);
      this.showErrors([{ field: field ?? "name", message: error.message }], field !== null);
    } finally {
      this.el.save.disabled = false;
    }
  }

  private clearErrors(): void {
    this.el.error.hidden = true;
    this.el.error.replaceChildren();
    for (const input of this.el.form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  /** Lists the messages in `profile-error` and marks the fields they are about. */
  private showErrors(errors: FieldError[], markFields = true): void {
    const el = this.el;
    el.error.replaceChildren(
      errors.length === 1
        ? h("span", {}, errors[0].message)
        : h("ul", {}, ...errors.map((e) => h("li", {}, e.message))),
    );
    el.error.hidden = false;
    if (!markFields) return;
    let first: HTMLElement | null = null;
    for (const error of errors) {
      const input = byTestId<HTMLElement>(el.form, FIELD_TESTID[error.field]);
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
    first?.focus();
  }

  private setStatus(message: string): void {
    this.el.status.textContent = message;
    this.el.status.hidden = message === "";
  }

  // ---- watch folders (part of the form) ----

  private renderWatchDraft(): void {
    const owner = this.editing?.previousName ?? null;
    this.el.watchList.replaceChildren(
      ...this.draftWatch.map((w, i) => {
        const recursive = h("input", { type: "checkbox", testid: "watch-recursive", checked: w.recursive });
        recursive.checked = w.recursive;
        recursive.addEventListener("change", () => (this.draftWatch[i].recursive = recursive.checked));
        const after = h(
          "select",
          { testid: "watch-after", "aria-label": `After upload, for ${w.path}` },
          h("option", { value: "leave" }, "Leave files where they are"),
          h("option", { value: "move" }, "Move to “uploaded” subfolder"),
        );
        after.value = w.afterUpload;
        after.addEventListener("change", () => (this.draftWatch[i].afterUpload = after.value as AfterUpload));
        const remove = button(
          { label: `Stop watching ${w.path}`, title: "Stop watching", testid: "watch-remove", icon: "remove", iconOnly: true },
        );
        remove.addEventListener("click", () => {
          this.draftWatch.splice(i, 1);
          this.renderWatchDraft();
          this.el.watchPath.focus();
        });
        return h(
          "li",
          { class: "watch-row", testid: "watch-row", "data-path": w.path },
          h(
            "div",
            { class: "watch-main" },
            h("span", { class: "path", testid: "watch-row-path", title: w.path }, w.path),
            watchStateBadge(this.statusOf(owner, w.path)),
          ),
          h(
            "div",
            { class: "watch-options" },
            h("label", { class: "check" }, recursive, " Include subfolders"),
            after,
            remove,
          ),
        );
      }),
    );
  }

  private async pickFolder(): Promise<void> {
    try {
      const path = await this.opts.commands.pickFolder();
      if (path !== null) {
        this.el.watchPath.value = path;
        this.el.watchAdd.focus();
      }
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    }
  }

  private addWatch(): void {
    const path = this.el.watchPath.value.trim();
    this.clearErrors();
    if (path === "") {
      this.el.watchPath.focus();
      return;
    }
    if (!isAbsolutePath(path)) {
      this.showErrors([{ field: "watch", message: `“${path}” is not a full path; choose the folder with Browse…` }]);
      return;
    }
    if (this.draftWatch.some((w) => w.path === path)) {
      this.showErrors([{ field: "watch", message: `“${path}” is already watched.` }]);
      return;
    }
    this.draftWatch.push({ path, recursive: false, afterUpload: "leave" });
    this.el.watchPath.value = "";
    this.renderWatchDraft();
  }

  // ---- token (outside the profile itself: straight to the keyring) ----

  private async saveToken(): Promise<void> {
    const name = this.editing?.previousName;
    if (!name) return;
    const token = this.el.token.value.trim();
    if (token === "") {
      this.setStatus("Paste a token first.");
      this.el.token.focus();
      return;
    }
    this.el.tokenSave.disabled = true;
    try {
      this.apply(await this.opts.commands.setToken(name, token));
      this.el.token.value = "";
      this.setStatus("Token saved to the system keyring.");
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    } finally {
      this.el.tokenSave.disabled = false;
    }
  }

  private async clearToken(): Promise<void> {
    const name = this.editing?.previousName;
    if (!name) return;
    this.el.tokenClear.disabled = true;
    try {
      this.apply(await this.opts.commands.clearToken(name));
      this.el.token.value = "";
      this.setStatus("Token removed.");
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    } finally {
      this.renderTokenStatus();
    }
  }

  // ---- app options ----

  private async saveOptions(): Promise<void> {
    const el = this.el;
    const options: AppOptions = { closeToTray: el.closeToTray.checked, startAtLogin: el.startAtLogin.checked };
    this.optionsBusy = true;
    el.closeToTray.disabled = el.startAtLogin.disabled = true;
    let settings: Settings | null = null;
    try {
      settings = await this.opts.commands.setAppOptions(options);
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    } finally {
      this.optionsBusy = false;
      el.closeToTray.disabled = el.startAtLogin.disabled = false;
    }
    if (settings) this.apply(settings);
    else if (this.settings) this.render(this.settings); // back to what is stored
  }
}
