import { button, byTestId, h, setText, text, type IconName } from "./dom";
import { FramePass, type Schedule } from "./frame";
import { showDetails } from "./details";
import { formatBytes, formatEta, formatSpeed, percent } from "./format";
import {
  asIpcError,
  type Commands,
  type Layout,
  type ProgressBatch,
  type ProgressTick,
  type UploadItem,
  type UploadState,
  type UploadWaiting,
} from "./ipc";
import type { Notify } from "./notices";

export type Action = "pause" | "resume" | "retry" | "cancel" | "remove";

/** How long a cancel waits for its confirming second click. */
const CONFIRM_MS = 4000;

/** Which buttons a row in this state offers, in the order they appear. */
export function actionsFor(state: UploadState): Action[] {
  switch (state) {
    case "queued":
    case "uploading":
      return ["pause", "cancel"];
    case "paused":
      return ["resume", "cancel"];
    case "failed":
      return ["retry", "cancel", "remove"];
    case "canceled":
    case "done":
      return ["remove"];
  }
}

export const STATE_LABEL: Record<UploadState, string> = {
  queued: "Queued",
  uploading: "Uploading",
  paused: "Paused",
  done: "Done",
  failed: "Failed",
  canceled: "Canceled",
};

const ACTION_META: Record<Action, { label: string; icon: IconName; className?: string }> = {
  pause: { label: "Pause", icon: "pause" },
  resume: { label: "Resume", icon: "play" },
  retry: { label: "Retry", icon: "retry" },
  cancel: { label: "Cancel", icon: "cancel", className: "danger" },
  remove: { label: "Remove from list", icon: "remove" },
};

export type UploadCommands = Pick<
  Commands,
  "pauseUpload" | "resumeUpload" | "cancelUpload" | "removeUpload" | "chooseLayout"
>;

/** Where the video keeps its index (moov), and whether it was re-laid, in a few words. */
export function indexText(item: Pick<UploadItem, "indexPosition" | "layout">): string {
  if (item.layout === "faststart") return "Starts instantly (re-laid)";
  switch (item.indexPosition) {
    case "moov_first":
      return "Starts instantly";
    case "moov_after_mdat":
      return "Viewers wait for the whole index";
    case "fragmented":
      return "Fragmented MP4";
    case "damaged":
      return "Damaged MP4";
    case "not_mp4":
    case null:
      return "";
  }
}

/** The choices a held item offers (its error says why it is held). */
export function layoutChoices(item: UploadItem): { layout: Layout; label: string }[] {
  if (item.state !== "failed") return [];
  switch (item.error?.code) {
    case "faststart_undecided":
      return [
        { layout: "faststart", label: "Make it start instantly" },
        { layout: "original", label: "Upload as is" },
      ];
    case "mp4_damaged":
      return [{ layout: "original", label: "Upload as is" }];
    default:
      return [];
  }
}

export type QueueCommands = UploadCommands & Pick<Commands, "pauseAll" | "resumeAll" | "retryAll">;

/** The command behind each row action (retry is a resume: finished parts are kept). */
export function runAction(commands: UploadCommands, action: Action, id: number): Promise<unknown> {
  switch (action) {
    case "pause":
      return commands.pauseUpload(id);
    case "resume":
    case "retry":
      return commands.resumeUpload(id);
    case "cancel":
      return commands.cancelUpload(id);
    case "remove":
      return commands.removeUpload(id);
  }
}

/** States that belong in the queue view; done items live in history. */
export function inQueue(state: UploadState): boolean {
  return state !== "done";
}

interface Row {
  root: HTMLLIElement;
  body: HTMLElement;
  name: Text;
  size: Text;
  state: Text;
  amount: Text;
  speed: Text;
  eta: Text;
  index: Text;
  error: Text;
  errorEl: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  actions: HTMLElement;
  buttons: Partial<Record<Action, HTMLButtonElement>>;
  /** What was last written, so unchanged values cost nothing. */
  pct: number;
  scale: string;
  shownState: UploadState | null;
  shownError: string | null;
}

interface Entry {
  item: UploadItem;
  speed: number;
  eta: number | null;
  row: Row;
  /** Progress moved while the row was off screen; drawn when it scrolls into view. */
  stale: boolean;
  /** Why its requests wait to try again (the server cannot be reached...); null when not. */
  waiting: string | null;
}

export interface QueueCounts {
  queued: number;
  uploading: number;
  paused: number;
  failed: number;
  canceled: number;
}

export interface QueueSummary {
  counts: QueueCounts;
  /** Unfinished items, canceled ones not counted. */
  active: number;
  sent: number;
  size: number;
  bytesPerSec: number;
  /** Uploads whose requests wait for the server. */
  waiting: number;
  /** Failed uploads that retrying can help. */
  retryable: number;
}

export function summarizeQueue(entries: Iterable<{ item: UploadItem; speed: number; waiting?: string | null }>): QueueSummary {
  const counts: QueueCounts = { queued: 0, uploading: 0, paused: 0, failed: 0, canceled: 0 };
  let sent = 0;
  let size = 0;
  let bytesPerSec = 0;
  let waiting = 0;
  let retryable = 0;
  for (const { item, speed, waiting: why } of entries) {
    if (item.state === "uploading" && why) waiting += 1;
    if (item.state === "failed" && item.retryable) retryable += 1;
    if (item.state === "done") continue;
    counts[item.state] += 1;
    if (item.state === "canceled") continue;
    sent += Math.min(item.sent, item.size);
    size += item.size;
    if (item.state === "uploading") bytesPerSec += speed;
  }
  const active = counts.queued + counts.uploading + counts.paused + counts.failed;
  return { counts, active, sent, size, bytesPerSec, waiting, retryable };
}

/** "3 uploading · 1 queued · 1.2 GB of 4.0 GB · 12 MB/s". Empty when there is nothing to do. */
export function totalsText(s: QueueSummary): string {
  if (s.active === 0) return "";
  const parts: string[] = [];
  const { counts } = s;
  if (counts.uploading > 0) {
    parts.push(
      s.waiting === 0
        ? `${counts.uploading} uploading`
        : s.waiting === counts.uploading
          ? `${counts.uploading} waiting for the server`
          : `${counts.uploading} uploading (${s.waiting} waiting for the server)`,
    );
  }
  if (counts.queued > 0) parts.push(`${counts.queued} queued`);
  if (counts.paused > 0) parts.push(`${counts.paused} paused`);
  if (counts.failed > 0) parts.push(`${counts.failed} failed`);
  parts.push(`${formatBytes(s.sent)} of ${formatBytes(s.size)}`);
  if (s.bytesPerSec > 0) parts.push(formatSpeed(s.bytesPerSec));
  return parts.join(" · ");
}

export interface QueueOptions {
  commands: QueueCommands;
  notify: Notify;
  schedule?: Schedule;
  /** Called after each pass with the number of items still to upload (for the tab badge). */
  onCount?: (active: number) => void;
  /** Called after each pass with the number of uploads waiting for the server. */
  onWaiting?: (waiting: number) => void;
  /**
   * Draw progress only on rows on (or near) the screen, via IntersectionObserver; rows off
   * screen catch up when they scroll in. On by default where IntersectionObserver exists.
   */
  onlyVisible?: boolean;
}

/**
 * The queue: unfinished uploads, oldest first (the order they go up in). Rows are keyed by
 * id, created once and updated in place. Progress ticks are collected and applied in one
 * pass per animation frame, writing only values that changed; the list is never rebuilt.
 */
export class QueueView {
  private entries = new Map<number, Entry>();
  /** Ids in list order (ascending), for inserting an id that is not the newest. */
  private order: number[] = [];
  private pendingTicks = new Map<number, ProgressTick>();
  private summaryDirty = true;
  private pass: FramePass;
  private list: HTMLElement;
  private totals: HTMLElement;
  private empty: HTMLElement;
  private pauseAll: HTMLButtonElement;
  private resumeAll: HTMLButtonElement;
  private retryAll: HTMLButtonElement;
  /** Ids of rows on or near the screen; null when every row counts as visible. */
  private visible: Set<number> | null = null;
  private observer: IntersectionObserver | null = null;

  /** For tests and the benchmark: rows built and DOM values written so far. */
  readonly stats = { rowsCreated: 0, writes: 0 };

  constructor(
    private root: HTMLElement,
    private opts: QueueOptions,
  ) {
    this.list = byTestId(root, "upload-list");
    this.totals = byTestId(root, "totals");
    this.empty = byTestId(root, "queue-empty");
    this.pauseAll = byTestId<HTMLButtonElement>(root, "pause-all");
    this.resumeAll = byTestId<HTMLButtonElement>(root, "resume-all");
    this.retryAll = byTestId<HTMLButtonElement>(root, "retry-all");
    this.pass = new FramePass(() => this.frame(), opts.schedule);
    if ((opts.onlyVisible ?? true) && typeof IntersectionObserver === "function") {
      // Text changes on a thousand rows cost the engine style and layout work even off
      // screen; rows outside the scroll area (or in a hidden tab) wait until they are seen.
      this.visible = new Set();
      this.observer = new IntersectionObserver((changes) => this.onIntersect(changes), {
        root: this.list.closest("main"),
        rootMargin: "400px 0px",
      });
    }

    this.list.addEventListener("click", (e) => {
      const btn = (e.target as Element | null)?.closest<HTMLButtonElement>("button[data-action], button[data-layout]");
      if (!btn || !this.list.contains(btn)) return;
      const row = btn.closest<HTMLElement>("[data-id]");
      if (!row) return;
      const id = Number(row.dataset.id);
      const layout = btn.dataset.layout as Layout | undefined;
      // Cancelling an upload that has sent anything throws that away: the first click
      // asks (the button says so), a second within a few seconds confirms.
      if (btn.dataset.action === "cancel" && !this.confirmed(btn, id)) return;
      void this.act(btn, () =>
        layout
          ? this.opts.commands.chooseLayout(id, layout)
          : runAction(this.opts.commands, btn.dataset.action as Action, id),
      );
    });
    this.pauseAll.addEventListener("click", () => void this.act(this.pauseAll, () => this.opts.commands.pauseAll()));
    this.resumeAll.addEventListener("click", () => void this.act(this.resumeAll, () => this.opts.commands.resumeAll()));
    this.retryAll.addEventListener("click", () => void this.act(this.retryAll, () => this.opts.commands.retryAll()));
    this.requestSummary();
  }

  /** Whether a cancel of `id` may go ahead now; if not, `btn` asks for a second click. */
  private confirmed(btn: HTMLButtonElement, id: number): boolean {
    const item = this.entries.get(id)?.item;
    if (!item || item.sent === 0 || btn.dataset.confirm === "true") {
      delete btn.dataset.confirm;
      return true;
    }
    btn.dataset.confirm = "true";
    const label = btn.getAttribute("aria-label") ?? "";
    btn.title = `Click again to cancel: the ${formatBytes(item.sent)} sent are thrown away`;
    btn.setAttribute("aria-label", `Confirm: ${label}`);
    this.opts.notify(`Click Cancel again to stop “${item.name}” and throw away the ${formatBytes(item.sent)} sent.`);
    setTimeout(() => {
      if (btn.dataset.confirm !== "true") return;
      delete btn.dataset.confirm;
      btn.title = ACTION_META.cancel.label;
      btn.setAttribute("aria-label", label);
    }, CONFIRM_MS);
    return false;
  }

  get size(): number {
    return this.entries.size;
  }

  has(id: number): boolean {
    return this.entries.has(id);
  }

  /** A whole item (a state change): add it or update its row in place. */
  upsert(item: UploadItem): void {
    this.put(item);
    this.requestSummary();
  }

  /** Many items at once (the initial list): new rows go in with one DOM insertion. */
  upsertMany(items: UploadItem[]): void {
    const fresh = items.filter((i) => !this.entries.has(i.id)).sort((a, b) => a.id - b.id);
    const isFresh = new Set(fresh);
    const last = this.order.length > 0 ? this.order[this.order.length - 1] : -Infinity;
    if (fresh.length > 0 && fresh[0].id > last) {
      const fragment = document.createDocumentFragment();
      for (const item of fresh) {
        const entry = this.createEntry(item);
        this.order.push(item.id);
        fragment.append(entry.row.root);
        this.render(entry);
      }
      this.list.append(fragment);
    } else {
      for (const item of fresh) this.put(item);
    }
    for (const item of items) if (!isFresh.has(item)) this.put(item);
    this.requestSummary();
  }

  remove(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.row.root.remove();
    this.observer?.unobserve(entry.row.root);
    this.visible?.delete(id);
    this.entries.delete(id);
    this.pendingTicks.delete(id);
    const at = this.indexOf(id);
    if (this.order[at] === id) this.order.splice(at, 1);
    this.requestSummary();
  }

  /**
   * An upload began waiting for the server (`why`), or got through again (null): the row
   * says so in place of a speed and time left that stopped moving.
   */
  waiting(event: UploadWaiting): void {
    const entry = this.entries.get(event.id);
    if (!entry || entry.waiting === event.why) return;
    entry.waiting = entry.item.state === "uploading" ? event.why : null;
    if (entry.waiting !== null) {
      entry.speed = 0;
      entry.eta = null;
    }
    this.render(entry);
    this.requestSummary();
  }

  /** A progress batch: kept until the next frame, where the newest tick per id is applied. */
  progress(batch: ProgressBatch): void {
    for (const tick of batch.items) {
      if (this.entries.has(tick.id)) this.pendingTicks.set(tick.id, tick);
    }
    if (this.pendingTicks.size > 0) {
      this.summaryDirty = true;
      this.pass.request();
    }
  }

  /** Applies whatever waits for the next frame now. */
  flush(): void {
    this.pass.flush();
  }

  get frames(): number {
    return this.pass.frames;
  }

  private requestSummary(): void {
    this.summaryDirty = true;
    this.pass.request();
  }

  private frame(): void {
    for (const tick of this.pendingTicks.values()) {
      const entry = this.entries.get(tick.id);
      if (!entry) continue;
      entry.item.sent = tick.sent;
      if (tick.total > 0) entry.item.size = tick.total;
      entry.speed = tick.bytesPerSec;
      entry.eta = tick.etaSecs;
      if (this.visible === null || this.visible.has(tick.id)) this.renderProgress(entry);
      else entry.stale = true;
    }
    this.pendingTicks.clear();
    if (this.summaryDirty) {
      this.summaryDirty = false;
      this.renderSummary();
    }
  }

  private onIntersect(changes: IntersectionObserverEntry[]): void {
    if (!this.visible) return;
    for (const change of changes) {
      const id = Number((change.target as HTMLElement).dataset.id);
      if (!change.isIntersecting) {
        this.visible.delete(id);
        continue;
      }
      this.visible.add(id);
      const entry = this.entries.get(id);
      if (entry?.stale) this.renderProgress(entry);
    }
  }

  private renderSummary(): void {
    const summary = summarizeQueue(this.entries.values());
    this.write(this.totals, totalsText(summary));
    const empty = this.entries.size === 0;
    if (this.empty.hidden !== !empty) this.empty.hidden = !empty;
    this.root.classList.toggle("has-items", !empty);
    this.pauseAll.disabled = summary.counts.queued + summary.counts.uploading === 0;
    this.resumeAll.disabled = summary.counts.paused === 0;
    this.retryAll.disabled = summary.retryable === 0;
    this.opts.onCount?.(summary.active);
    this.opts.onWaiting?.(summary.waiting);
  }

  private write(el: HTMLElement, value: string): void {
    if (el.textContent !== value) {
      el.textContent = value;
      this.stats.writes += 1;
    }
  }

  private async act(btn: HTMLButtonElement, run: () => Promise<unknown>): Promise<void> {
    btn.disabled = true;
    try {
      await run();
    } catch (e) {
      this.opts.notify(asIpcError(e).message, { kind: "error" });
    } finally {
      btn.disabled = false;
      // Pause all / resume all follow the queue's counts again.
      this.requestSummary();
    }
  }

  private put(item: UploadItem): void {
    let entry = this.entries.get(item.id);
    if (!entry) {
      entry = this.createEntry(item);
      this.insert(entry);
    } else {
      if (entry.item.state !== item.state) {
        entry.speed = 0;
        entry.eta = null;
        // A new state is a new run, or none: whatever it waited on is over.
        entry.waiting = null;
      }
      entry.item = { ...item };
      // The whole item is newer than any tick still waiting for the frame.
      this.pendingTicks.delete(item.id);
    }
    this.render(entry);
  }

  private createEntry(item: UploadItem): Entry {
    const entry: Entry = { item: { ...item }, speed: 0, eta: null, row: this.createRow(item), stale: false, waiting: null };
    this.entries.set(item.id, entry);
    this.observer?.observe(entry.row.root);
    return entry;
  }

  private indexOf(id: number): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.order[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(entry: Entry): void {
    const id = entry.item.id;
    const last = this.order.length > 0 ? this.order[this.order.length - 1] : -Infinity;
    if (id > last) {
      this.order.push(id);
      this.list.append(entry.row.root);
      return;
    }
    const at = this.indexOf(id);
    const before = this.entries.get(this.order[at])?.row.root ?? null;
    this.order.splice(at, 0, id);
    this.list.insertBefore(entry.row.root, before);
  }

  /** The row's markup, built once and cloned for every item (cheaper than building each). */
  private static template: HTMLLIElement | null = null;
  private static buttonTemplates: Partial<Record<Action, HTMLButtonElement>> = {};

  private static rowTemplate(): HTMLLIElement {
    if (QueueView.template?.ownerDocument === document) return QueueView.template;
    const root = h(
      "li",
      { class: "upload-row", testid: "upload-row" },
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
          { class: "progress", testid: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0 },
          h("div", { class: "fill" }),
        ),
        h(
          "div",
          { class: "row-meta" },
          h("span", { class: "state", testid: "state" }, text()),
          h("span", { class: "amount", testid: "amount" }, text()),
          h("span", { class: "speed", testid: "speed" }, text()),
          h("span", { class: "eta", testid: "eta" }, text()),
          h("span", { class: "index", testid: "index" }, text()),
        ),
      ),
      h("div", { class: "row-actions" }),
    );
    QueueView.template = root;
    QueueView.buttonTemplates = {};
    return root;
  }

  private createRow(item: UploadItem): Row {
    this.stats.rowsCreated += 1;
    const root = QueueView.rowTemplate().cloneNode(true) as HTMLLIElement;
    const body = root.firstElementChild as HTMLElement;
    const [top, bar, meta] = body.children as unknown as [HTMLElement, HTMLElement, HTMLElement];
    const nameEl = top.firstElementChild as HTMLElement;
    const metaText = (i: number) => meta.children[i].firstChild as Text;
    root.dataset.id = String(item.id);
    nameEl.title = item.path;
    bar.setAttribute("aria-label", `Progress of ${item.name}`);
    const row: Row = {
      root,
      body,
      name: nameEl.firstChild as Text,
      size: top.lastElementChild!.firstChild as Text,
      state: metaText(0),
      amount: metaText(1),
      speed: metaText(2),
      eta: metaText(3),
      index: metaText(4),
      error: text(),
      errorEl: h("div", { class: "row-error", testid: "error" }),
      bar,
      fill: bar.firstElementChild as HTMLElement,
      actions: root.lastElementChild as HTMLElement,
      buttons: {},
      // As the template and the stylesheet draw an empty bar.
      pct: 0,
      scale: "scaleX(0.000)",
      shownState: null,
      shownError: null,
    };
    row.errorEl.append(row.error);
    return row;
  }

  private button(row: Row, action: Action, name: string): HTMLButtonElement {
    let btn = row.buttons[action];
    if (!btn) {
      const meta = ACTION_META[action];
      let proto = QueueView.buttonTemplates[action];
      if (!proto) {
        proto = button(
          { label: meta.label, title: meta.label, testid: `action-${action}`, icon: meta.icon, iconOnly: true, className: meta.className },
          { "data-action": action },
        );
        QueueView.buttonTemplates[action] = proto;
      }
      btn = proto.cloneNode(true) as HTMLButtonElement;
      btn.setAttribute("aria-label", `${meta.label} ${name}`);
      row.buttons[action] = btn;
    }
    return btn;
  }

  private setText(node: Text, value: string): void {
    if (setText(node, value)) this.stats.writes += 1;
  }

  /** Everything about a row; state-dependent parts only when the state changed. */
  private render(entry: Entry): void {
    const { row, item } = entry;
    this.setText(row.name, item.name);
    showDetails(row.body, item.details);
    const waiting = entry.waiting !== null && item.state === "uploading";
    if (row.root.dataset.waiting !== String(waiting)) {
      row.root.dataset.waiting = String(waiting);
      row.root.title = waiting ? entry.waiting! : "";
      this.setText(row.state, waiting ? "Waiting for the server" : STATE_LABEL[item.state]);
    }
    if (row.shownState !== item.state) {
      row.shownState = item.state;
      row.root.dataset.state = item.state;
      if (!waiting) this.setText(row.state, STATE_LABEL[item.state]);
      row.actions.replaceChildren(...actionsFor(item.state).map((a) => this.button(row, a, item.name)));
      this.stats.writes += 2;
    }
    this.setText(row.index, indexText(item));
    const error = item.state === "failed" && item.error ? item.error : null;
    const errorKey = error ? `${error.code}\n${error.message}` : null;
    if (row.shownError !== errorKey) {
      row.shownError = errorKey;
      if (error) {
        this.setText(row.error, error.message);
        row.errorEl.dataset.code = error.code;
        row.errorEl.title = `${error.message} (${error.code})`;
        // A held video: its answers sit with the reason it is held.
        row.errorEl.replaceChildren(
          row.error,
          ...layoutChoices(item).map((c) =>
            button(
              { label: c.label, testid: `choose-${c.layout}`, className: "choice" },
              { "data-layout": c.layout, "aria-label": `${c.label}: ${item.name}` },
            ),
          ),
        );
        row.body.append(row.errorEl);
      } else {
        row.errorEl.remove();
      }
      this.stats.writes += 1;
    }
    this.renderProgress(entry);
  }

  /** The values a progress tick moves: bar, amount, speed, ETA (and size, rarely). */
  private renderProgress(entry: Entry): void {
    entry.stale = false;
    const { row, item } = entry;
    // Waiting for the server: no speed or time left, which would stand still.
    const uploading = item.state === "uploading" && entry.waiting === null;
    const pct = percent(item.sent, item.size);
    const fraction = item.size > 0 ? Math.min(1, item.sent / item.size) : item.sent > 0 ? 1 : 0;
    const scale = `scaleX(${fraction.toFixed(3)})`;
    if (row.scale !== scale) {
      row.scale = scale;
      row.fill.style.transform = scale;
      this.stats.writes += 1;
    }
    if (row.pct !== pct) {
      row.pct = pct;
      row.bar.setAttribute("aria-valuenow", String(pct));
      this.stats.writes += 1;
    }
    this.setText(row.size, formatBytes(item.size));
    const showAmount = item.sent > 0 && item.state !== "canceled";
    this.setText(row.amount, showAmount ? `${pct}% · ${formatBytes(item.sent)}` : "");
    this.setText(row.speed, uploading ? formatSpeed(entry.speed) : "");
    const eta = uploading ? formatEta(entry.eta) : "";
    this.setText(row.eta, eta ? `${eta} left` : "");
  }
}
