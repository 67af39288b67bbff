import { beforeEach, describe, expect, it, vi } from "vitest";
import { formatBytes, percent } from "./format";
import type { UploadItem } from "./ipc";
import { UploadList, summarize } from "./upload-list";

function item(over: Partial<UploadItem> = {}): UploadItem {
  return {
    id: 1,
    name: "clip.mp4",
    path: "/videos/clip.mp4",
    size: 40_000_000,
    sent: 0,
    state: "queued",
    url: null,
    error: null,
    ...over,
  };
}

describe("UploadList", () => {
  let root: HTMLUListElement;
  beforeEach(() => {
    document.body.innerHTML = "<ul></ul>";
    root = document.querySelector("ul")!;
  });

  it("updates a row in place instead of rebuilding the list", () => {
    const list = new UploadList(root, async () => {});
    list.upsert(item({ id: 1 }));
    list.upsert(item({ id: 2, name: "b.mov" }));
    const first = root.querySelector('[data-id="1"]');
    list.upsert(item({ id: 1, state: "uploading", sent: 10_000_000 }));
    expect(root.querySelector('[data-id="1"]')).toBe(first);
    expect(root.children).toHaveLength(2);
    expect(first!.querySelector("[data-testid=status]")!.textContent).toContain("25%");
    expect((first!.querySelector(".fill") as HTMLElement).style.width).toBe("25%");
  });

  it("shows the streaming URL with a working copy button when done", async () => {
    const copy = vi.fn(async () => {});
    const list = new UploadList(root, copy);
    list.upsert(item({ state: "done", sent: 40_000_000, url: "http://cdn/k.mp4" }));
    const url = root.querySelector<HTMLInputElement>("[data-testid=url]")!;
    expect(url.value).toBe("http://cdn/k.mp4");
    root.querySelector<HTMLButtonElement>("[data-testid=copy]")!.click();
    await Promise.resolve();
    expect(copy).toHaveBeenCalledWith("http://cdn/k.mp4");
  });

  it("shows the error message and code of a failed upload", () => {
    const list = new UploadList(root, async () => {});
    list.upsert(item({ state: "failed", error: { code: "unauthorized", message: "rejected the token" } }));
    const error = root.querySelector<HTMLElement>("[data-testid=error]")!;
    expect(error.textContent).toBe("rejected the token");
    expect(error.dataset.code).toBe("unauthorized");
  });

  it("summarises states for the header", () => {
    const items = new Map<number, UploadItem>([
      [1, item({ id: 1, state: "uploading" })],
      [2, item({ id: 2, state: "queued" })],
      [3, item({ id: 3, state: "done" })],
      [4, item({ id: 4, state: "failed" })],
    ]);
    expect(summarize(items)).toBe("2 uploading · 1 done · 1 failed");
    expect(summarize(new Map())).toBe("");
  });
});

describe("format", () => {
  it("uses decimal units like file managers", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(3_145_728)).toBe("3.1 MB");
    expect(formatBytes(41_943_040)).toBe("41.9 MB");
    expect(formatBytes(150_000_000_000)).toBe("150 GB");
  });

  it("clamps percentages and handles empty files", () => {
    expect(percent(5, 10)).toBe(50);
    expect(percent(11, 10)).toBe(100);
    expect(percent(0, 0)).toBe(0);
  });
});
