import { formatBytes, percent } from "./format";
import type { UploadItem } from "./ipc";

const STATE_LABEL: Record<UploadItem["state"], string> = {
  queued: "Waiting",
  uploading: "Uploading",
  paused: "Paused",
  done: "Ready to stream",
  failed: "Failed",
  canceled: "Canceled",
};

interface Row {
  root: HTMLLIElement;
  status: HTMLElement;
  fill: HTMLElement;
  result: HTMLElement;
  shownState: UploadItem["state"] | null;
}

/**
 * The upload list. Rows are keyed by id and updated in place, so a progress event touches
 * two text nodes and one width, never the rest of the list.
 */
export class UploadList {
  private rows = new Map<number, Row>();
  private items = new Map<number, UploadItem>();

  constructor(
    private list: HTMLElement,
    private onCopy: (url: string) => Promise<void>,
    private onChange: (items: ReadonlyMap<number, UploadItem>) => void = () => {},
  ) {}

  upsert(item: UploadItem): void {
    this.items.set(item.id, item);
    let row = this.rows.get(item.id);
    if (!row) {
      row = this.createRow(item);
      this.rows.set(item.id, row);
      // Newest first: what the user just dropped is what they look for.
      this.list.prepend(row.root);
    }
    this.render(row, item);
    this.onChange(this.items);
  }

  get size(): number {
    return this.items.size;
  }

  private createRow(item: UploadItem): Row {
    const root = document.createElement("li");
    root.className = "upload";
    root.dataset.id = String(item.id);
    root.dataset.testid = "upload-row";

    const head = document.createElement("div");
    head.className = "upload-head";
    const name = document.createElement("span");
    name.className = "name";
    name.dataset.testid = "name";
    name.textContent = item.name;
    name.title = item.path;
    const status = document.createElement("span");
    status.className = "status";
    status.dataset.testid = "status";
    head.append(name, status);

    const bar = document.createElement("div");
    bar.className = "progress";
    bar.setAttribute("role", "progressbar");
    const fill = document.createElement("div");
    fill.className = "fill";
    bar.append(fill);

    const result = document.createElement("div");
    result.className = "result";

    root.append(head, bar, result);
    return { root, status, fill, result, shownState: null };
  }

  private render(row: Row, item: UploadItem): void {
    const pct = item.state === "done" ? 100 : percent(item.sent, item.size);
    row.root.dataset.state = item.state;
    row.fill.style.width = `${pct}%`;
    row.fill.parentElement?.setAttribute("aria-valuenow", String(pct));
    const progress =
      item.state === "uploading" ? ` · ${formatBytes(item.sent)} of ${formatBytes(item.size)} · ${pct}%` : "";
    row.status.textContent =
      item.state === "uploading" ? STATE_LABEL.uploading + progress : `${STATE_LABEL[item.state]} · ${formatBytes(item.size)}`;
    if (row.shownState === item.state) return;
    row.shownState = item.state;
    row.result.replaceChildren();
    if (item.state === "done" && item.url) {
      row.result.append(...this.urlControls(item.url));
    } else if (item.state === "failed" && item.error) {
      const error = document.createElement("span");
      error.className = "error";
      error.dataset.testid = "error";
      error.dataset.code = item.error.code;
      error.textContent = item.error.message;
      row.result.append(error);
    }
  }

  private urlControls(url: string): HTMLElement[] {
    const field = document.createElement("input");
    field.className = "url";
    field.dataset.testid = "url";
    field.readOnly = true;
    field.value = url;
    field.addEventListener("focus", () => field.select());
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.dataset.testid = "copy";
    copy.textContent = "Copy link";
    copy.addEventListener("click", async () => {
      try {
        await this.onCopy(url);
        copy.textContent = "Copied";
      } catch {
        copy.textContent = "Copy failed";
      }
      setTimeout(() => (copy.textContent = "Copy link"), 1500);
    });
    return [field, copy];
  }
}

/** "2 uploading · 3 done · 1 failed" for the list header. */
export function summarize(items: ReadonlyMap<number, UploadItem>): string {
  const counts = { queued: 0, uploading: 0, paused: 0, done: 0, failed: 0, canceled: 0 };
  for (const item of items.values()) counts[item.state] += 1;
  const parts: string[] = [];
  if (counts.uploading + counts.queued > 0) parts.push(`${counts.uploading + counts.queued} uploading`);
  if (counts.paused > 0) parts.push(`${counts.paused} paused`);
  if (counts.done > 0) parts.push(`${counts.done} done`);
  if (counts.failed > 0) parts.push(`${counts.failed} failed`);
  return parts.join(" · ");
}
