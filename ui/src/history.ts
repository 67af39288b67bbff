import { button, byTestId, h, setText, text } from "./dom";
import { showDetails } from "./details";
import { formatBytes, formatDate } from "./format";
import { asIpcError, type Commands, type UploadItem } from "./ipc";
import { copiedMessage, copyLink, freshLink } from "./links";
import type { Notify } from "./notices";
import { embedSnippet } from "./poster";

export type HistoryCommands = Pick<Commands, "copyText" | "openUrl" | "removeUpload" | "signLink">;

export interface HistoryOptions {
  commands: HistoryCommands;
  notify: Notify;
  preview: { open(url: string, name: string): void };
}

/** Newest first: by finishedAt, then id (for items finished in the same second). */
export function compareHistory(a: UploadItem, b: UploadItem): number {
  const fa = a.finishedAt ?? a.createdAt;
  const fb = b.finishedAt ?? b.createdAt;
  if (fa !== fb) return fb - fa;
  return b.id - a.id;
}

/** What the search box looks in: name, key and URL. */
export function searchText(item: UploadItem): string {
  return [item.name, item.key ?? "", item.url ?? ""].join("\n").toLowerCase();
}

export interface HistoryFilter {
  query: string;
  /** "" for every profile. */
  profile: string;
}

export function matches(item: UploadItem, haystack: string, filter: HistoryFilter): boolean {
  if (filter.profile !== "" && item.profile !== filter.profile) return false;
  const q = filter.query.trim().toLowerCase();
  return q === "" || haystack.includes(q);
}

interface Row {
  root: HTMLLIElement;
  thumb: HTMLImageElement;
  name: Text;
  size: Text;
  date: HTMLTimeElement;
  dateText: Text;
  profile: Text;
  profileEl: HTMLElement;
  key: Text;
  keyEl: HTMLElement;
  verified: Text;
  verifiedEl: HTMLElement;
  noPoster: Text;
  noPosterEl: HTMLElement;
  url: HTMLOutputElement;
  urlText: Text;
  buttons: HTMLButtonElement[];
}

interface Entry {
  item: UploadItem;
  row: Row;
  haystack: string;
  visible: boolean;
}

/**
 * Finished uploads, newest first, with their streaming links. Like the queue, rows are
 * keyed by id and built once; search and the profile filter only toggle `hidden`.
 */
export class HistoryView {
  private entries = new Map<number, Entry>();
  /** Entries in display order (compareHistory). */
  private order: Entry[] = [];
  private filter: HistoryFilter = { query: "", profile: "" };
  private profileCounts = new Map<string, number>();
  private shownProfiles = "";
  private visibleCount = 0;
  private list: HTMLElement;
  private search: HTMLInputElement;
  private profileSelect: HTMLSelectElement;
  private empty: HTMLElement;
  private count: HTMLElement;

  readonly stats = { rowsCreated: 0 };

  constructor(
    root: HTMLElement,
    private opts: HistoryOptions,
  ) {
    this.list = byTestId(root, "history-list");
    this.search = byTestId<HTMLInputElement>(root, "history-search");
    this.profileSelect = byTestId<HTMLSelectElement>(root, "history-profile-filter");
    this.empty = byTestId(root, "history-empty");
    this.count = byTestId(root, "history-count");

    this.search.addEventListener("input", () => this.setFilter({ query: this.search.value }));
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.search.value !== "") {
        e.preventDefault();
        this.search.value = "";
        this.setFilter({ query: "" });
      }
    });
    this.profileSelect.addEventListener("change", () => this.setFilter({ profile: this.profileSelect.value }));
    this.list.addEventListener("click", (e) => {
      const btn = (e.target as Element | null)?.closest<HTMLButtonElement>("button[data-action]");
      if (!btn || !this.list.contains(btn)) return;
      const id = Number(btn.closest<HTMLElement>("[data-id]")?.dataset.id);
      const entry = this.entries.get(id);
      if (entry) void this.act(btn, entry);
    });
    this.update();
  }

  get size(): number {
    return this.entries.size;
  }

  has(id: number): boolean {
    return this.entries.has(id);
  }

  upsert(item: UploadItem): void {
    this.put(item);
    this.update();
  }

  upsertMany(items: UploadItem[]): void {
    const fresh = items.filter((i) => !this.entries.has(i.id)).sort(compareHistory);
    const isFresh = new Set(fresh);
    if (fresh.length > 0 && (this.order.length === 0 || compareHistory(fresh[fresh.length - 1], this.order[0].item) < 0)) {
      // All newer than what is shown: one insertion at the top.
      const fragment = document.createDocumentFragment();
      const added = fresh.map((item) => this.createEntry(item));
      for (const entry of added) fragment.append(entry.row.root);
      this.order.unshift(...added);
      this.list.prepend(fragment);
    } else {
      for (const item of fresh) this.put(item);
    }
    for (const item of items) if (!isFresh.has(item)) this.put(item);
    this.update();
  }

  remove(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.row.root.remove();
    this.entries.delete(id);
    this.order.splice(this.order.indexOf(entry), 1);
    this.countProfile(entry.item.profile, -1);
    if (entry.visible) this.visibleCount -= 1;
    this.update();
  }

  setFilter(change: Partial<HistoryFilter>): void {
    this.filter = { ...this.filter, ...change };
    if (change.query !== undefined && this.search.value !== change.query) this.search.value = change.query;
    if (change.profile !== undefined && this.profileSelect.value !== change.profile) this.profileSelect.value = change.profile;
    this.visibleCount = 0;
    for (const entry of this.order) this.applyFilter(entry);
    this.update();
  }

  private put(item: UploadItem): void {
    const entry = this.entries.get(item.id);
    if (!entry) {
      const created = this.createEntry(item);
      const at = this.positionOf(item);
      const before = this.order[at]?.row.root ?? null;
      this.order.splice(at, 0, created);
      this.list.insertBefore(created.row.root, before);
      return;
    }
    const moved = compareHistory(entry.item, item) !== 0;
    this.countProfile(entry.item.profile, -1);
    this.countProfile(item.profile, 1);
    entry.item = item;
    entry.haystack = searchText(item);
    this.render(entry);
    if (moved) {
      this.order.splice(this.order.indexOf(entry), 1);
      const at = this.positionOf(item);
      this.list.insertBefore(entry.row.root, this.order[at]?.row.root ?? null);
      this.order.splice(at, 0, entry);
    }
    if (entry.visible) this.visibleCount -= 1;
    this.applyFilter(entry);
  }

  private createEntry(item: UploadItem): Entry {
    const entry: Entry = { item, row: this.createRow(item), haystack: searchText(item), visible: true };
    this.entries.set(item.id, entry);
    this.countProfile(item.profile, 1);
    this.render(entry);
    this.applyFilter(entry);
    return entry;
  }

  /** Where an item goes in `order` (binary search on compareHistory). */
  private positionOf(item: UploadItem): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareHistory(this.order[mid].item, item) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private applyFilter(entry: Entry): void {
    const visible = matches(entry.item, entry.haystack, this.filter);
    if (visible) this.visibleCount += 1;
    entry.visible = visible;
    if (entry.row.root.hidden === visible) entry.row.root.hidden = !visible;
  }

  private countProfile(profile: string | null, delta: number): void {
    if (profile === null) return;
    const n = (this.profileCounts.get(profile) ?? 0) + delta;
    if (n > 0) this.profileCounts.set(profile, n);
    else this.profileCounts.delete(profile);
  }

  /** Empty state, count and the profile filter's options. */
  private update(): void {
    const total = this.entries.size;
    this.empty.hidden = this.visibleCount > 0;
    this.empty.textContent =
      total === 0
        ? "Finished uploads appear here, with their streaming links."
        : "No finished uploads match this search.";
    const filtering = this.filter.query.trim() !== "" || this.filter.profile !== "";
    this.count.textContent =
      total === 0 ? "" : filtering ? `${this.visibleCount} of ${total}` : `${total} ${total === 1 ? "upload" : "uploads"}`;

    const profiles = [...this.profileCounts.keys()].sort((a, b) => a.localeCompare(b));
    if (this.filter.profile !== "" && !this.profileCounts.has(this.filter.profile)) profiles.push(this.filter.profile);
    const key = profiles.join("\n");
    if (key !== this.shownProfiles) {
      this.shownProfiles = key;
      this.profileSelect.replaceChildren(
        h("option", { value: "" }, "All profiles"),
        ...profiles.map((p) => h("option", { value: p }, p)),
      );
      this.profileSelect.value = this.filter.profile;
    }
  }

  /** The row's markup, built once and cloned for every item. */
  private static template: HTMLLIElement | null = null;

  private static rowTemplate(): HTMLLIElement {
    if (HistoryView.template?.ownerDocument === document) return HistoryView.template;
    HistoryView.template = h(
      "li",
      { class: "history-row", testid: "history-row", "data-state": "done" },
      // The poster frame, or a neutral placeholder (no src) until there is one.
      h("img", { class: "thumb", testid: "poster", alt: "", loading: "lazy", decoding: "async" }),
      h(
        "div",
        { class: "row-body" },
        h(
          "div",
          { class: "row-top" },
          h("span", { class: "name", testid: "name" }, text()),
          h("span", { class: "size", testid: "size" }, text()),
        ),
        h(
          "div",
          { class: "row-meta" },
          h("time", { class: "date", testid: "date" }, text()),
          h("span", { class: "profile", testid: "profile" }, text()),
          h("span", { class: "key", testid: "key" }, text()),
          // What was compared on the way: "verified: CRC64NVME of the whole file".
          h("span", { class: "verified", testid: "verified" }, text()),
          // Why there is no poster, when something stopped one (the file was swapped).
          h("span", { class: "no-poster", testid: "no-poster" }, text()),
        ),
        h(
          "div",
          { class: "url-line" },
          // <output>: the link as text (textContent) that also reads as a field (.value);
          // one click selects all of it (user-select: all).
          h("output", { class: "url", testid: "url", "aria-live": "off" }, text()),
        ),
        // Slot for the video's details line (duration, size, codecs), filled by its own view.
        h("div", { class: "row-details", testid: "details", "data-slot": "details", hidden: true }),
      ),
      h(
        "div",
        { class: "row-actions" },
        button({ label: "Play", testid: "history-play", icon: "preview", title: "Play here" }, { "data-action": "play" }),
        button({ label: "Copy link", testid: "history-copy", icon: "copy", className: "primary" }, { "data-action": "copy" }),
        button(
          { label: "Copy embed", testid: "history-embed", icon: "copy", title: "Copy HTML to embed the video" },
          { "data-action": "embed" },
        ),
        button(
          { label: "Open in the browser", testid: "history-open", icon: "open", iconOnly: true },
          { "data-action": "open" },
        ),
        button(
          { label: "Remove from history", testid: "action-remove", icon: "remove", iconOnly: true },
          { "data-action": "remove" },
        ),
      ),
    );
    return HistoryView.template;
  }

  private createRow(item: UploadItem): Row {
    this.stats.rowsCreated += 1;
    const root = HistoryView.rowTemplate().cloneNode(true) as HTMLLIElement;
    const [thumb, body, actions] = root.children as unknown as [HTMLImageElement, HTMLElement, HTMLElement];
    const [top, meta, urlLine] = body.children as unknown as [HTMLElement, HTMLElement, HTMLElement];
    const [date, profileEl, keyEl, verifiedEl, noPosterEl] = meta.children as unknown as [
      HTMLTimeElement,
      HTMLElement,
      HTMLElement,
      HTMLElement,
      HTMLElement,
    ];
    const nameEl = top.firstElementChild as HTMLElement;
    root.dataset.id = String(item.id);
    nameEl.title = item.path;
    const url = urlLine.firstElementChild as HTMLOutputElement;
    url.setAttribute("aria-label", `Streaming link of ${item.name}`);
    const buttons = [...actions.children] as HTMLButtonElement[];
    const labels: Record<string, string> = {
      play: `Play ${item.name}`,
      copy: `Copy link of ${item.name}`,
      embed: `Copy embed code of ${item.name}`,
      open: `Open ${item.name} in the browser`,
      remove: `Remove ${item.name} from history`,
    };
    for (const btn of buttons) btn.setAttribute("aria-label", labels[btn.dataset.action!]);
    return {
      root,
      thumb,
      name: nameEl.firstChild as Text,
      size: top.lastElementChild!.firstChild as Text,
      date,
      dateText: date.firstChild as Text,
      profile: profileEl.firstChild as Text,
      profileEl,
      key: keyEl.firstChild as Text,
      keyEl,
      verified: verifiedEl.firstChild as Text,
      verifiedEl,
      noPoster: noPosterEl.firstChild as Text,
      noPosterEl,
      url,
      urlText: url.firstChild as Text,
      buttons,
    };
  }

  private render(entry: Entry): void {
    const { row, item } = entry;
    setText(row.name, item.name);
    setText(row.size, formatBytes(item.size));
    // The body, not the first child: the poster thumbnail comes first.
    showDetails(row.root.querySelector(":scope > .row-body") as HTMLElement, item.details);
    const when = item.finishedAt ?? item.createdAt;
    setText(row.dateText, formatDate(when));
    row.date.dateTime = new Date(when * 1000).toISOString();
    setText(row.profile, item.profile ?? "");
    row.profileEl.hidden = item.profile === null;
    setText(row.key, item.key ?? "");
    row.keyEl.title = item.key ?? "";
    row.keyEl.hidden = item.key === null;
    // Plain words first; what exactly was compared is on hover ("verified: CRC64NVME of
    // the whole file").
    setText(row.verified, verifiedWords(item));
    row.verifiedEl.title = item.verifiedText ?? "";
    row.verifiedEl.hidden = item.verified === null;
    const noPoster = item.posterUrl === null && item.noPoster !== null ? `no poster: ${item.noPoster}` : "";
    setText(row.noPoster, noPoster);
    row.noPosterEl.title = noPoster;
    row.noPosterEl.hidden = noPoster === "";
    row.thumb.title = noPoster;
    const url = item.url ?? "";
    setText(row.urlText, url);
    row.url.title = url;
    for (const btn of row.buttons) {
      if (btn.dataset.action !== "remove") btn.disabled = url === "";
    }
    const poster = item.posterUrl ?? "";
    if (row.thumb.getAttribute("src") !== (poster || null)) {
      if (poster) row.thumb.src = poster;
      else row.thumb.removeAttribute("src");
    }
    row.thumb.classList.toggle("placeholder", poster === "");
  }

  private async act(btn: HTMLButtonElement, entry: Entry): Promise<void> {
    const { item } = entry;
    const url = item.url;
    const action = btn.dataset.action;
    if (action === "play") {
      // The same fresh link as "Copy link": a CDN that requires signed links refuses the
      // stored, unsigned one (and the preview's "Open in the browser" reuses this link).
      if (url) {
        try {
          const link = await freshLink(item, this.opts.commands);
          this.opts.preview.open(link.url, item.name);
        } catch (e) {
          this.opts.notify(asIpcError(e).message, { kind: "error" });
        }
      }
      return;
    }
    btn.disabled = true;
    try {
      if (action === "copy" && url) {
        // Signed anew when the endpoint signs links (links.ts), so it always works.
        const link = await copyLink(item, this.opts.commands);
        flash(btn, "Copied");
        const expiry = copiedMessage(link);
        if (expiry) this.opts.notify(expiry);
      } else if (action === "embed" && url) {
        // The embed carries the same fresh link as "Copy link".
        const link = await freshLink(item, this.opts.commands);
        await this.opts.commands.copyText(embedSnippet({ url: link.url, posterUrl: link.posterUrl }));
        flash(btn, "Copied");
        const expiry = copiedMessage(link, "embed");
        if (expiry) this.opts.notify(expiry);
      } else if (action === "open" && url) {
        await this.opts.commands.openUrl((await freshLink(item, this.opts.commands)).url);
      } else if (action === "remove") {
        await this.opts.commands.removeUpload(item.id);
      }
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    } finally {
      btn.disabled = false;
    }
  }
}

/** What History says of an upload's check, in plain words (the detail is its title). */
export function verifiedWords(item: Pick<UploadItem, "verified">): string {
  if (item.verified === null) return "";
  return item.verified === "unverified" ? "Not checked" : "Checked end to end";
}

/** Shows a short confirmation in a button's label ("Copied"), then restores it. */
function flash(btn: HTMLButtonElement, message: string): void {
  const label = btn.querySelector(".btn-label");
  if (!label) return;
  const original = btn.dataset.label ?? label.textContent ?? "";
  btn.dataset.label = original;
  label.textContent = message;
  btn.classList.add("flashed");
  setTimeout(() => {
    label.textContent = original;
    btn.classList.remove("flashed");
  }, 1500);
}
