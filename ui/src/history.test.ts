import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from "vitest";
import type { Notify } from "./notices";
import { allByTestId, byTestId, commandCalls, doneItem, loadPage, mockBackend, settle, type, type Call } from "../test/support";
import { HistoryView, compareHistory } from "./history";
import { commands } from "./ipc";
import { Preview } from "./preview";

function rowIds(visibleOnly = true): number[] {
  return allByTestId("history-row")
    .filter((r) => !visibleOnly || !r.hidden)
    .map((r) => Number(r.dataset.id));
}

function row(id: number): HTMLElement {
  return document.querySelector<HTMLElement>(`[data-testid=history-row][data-id="${id}"]`)!;
}

describe("HistoryView", () => {
  let calls: Call[];
  let history: HistoryView;
  let preview: Preview;
  let notify: Mock<Notify>;

  beforeEach(() => {
    loadPage();
    calls = mockBackend({
      open_url: () => Promise.reject({ code: "open_failed", message: "No browser found." }),
      // A Companion endpoint: the stored link is copied as it is.
      sign_link: () => Promise.reject({ code: "links_unavailable", message: "cannot sign links" }),
    });
    notify = vi.fn<Notify>(() => null);
    preview = new Preview(byTestId("preview"), (url) => void commands.openUrl(url).catch(() => {}));
    history = new HistoryView(byTestId("view-history"), { commands, notify, preview });
  });
  afterEach(() => clearMocks());

  it("lists finished uploads newest first, and keeps that order as more arrive", () => {
    history.upsertMany([
      doneItem({ id: 1, finishedAt: 100 }),
      doneItem({ id: 2, finishedAt: 300 }),
      doneItem({ id: 3, finishedAt: 200 }),
      doneItem({ id: 4, finishedAt: 300 }),
    ]);
    expect(rowIds()).toEqual([4, 2, 3, 1]);
    history.upsert(doneItem({ id: 5, finishedAt: 400 }));
    history.upsert(doneItem({ id: 6, finishedAt: 150 }));
    expect(rowIds()).toEqual([5, 4, 2, 3, 6, 1]);
    history.remove(2);
    expect(rowIds()).toEqual([5, 4, 3, 6, 1]);
    expect(compareHistory(doneItem({ id: 1, finishedAt: 5 }), doneItem({ id: 2, finishedAt: 9 }))).toBeGreaterThan(0);
  });

  it("shows name, size, date, profile, key and the streaming link", () => {
    history.upsert(doneItem({ id: 7, name: "Talk.mov", size: 2_500_000_000, profile: "studio", key: "u/42/talk.mov", url: "https://cdn.example.com/u/42/talk.mov", finishedAt: 1_700_000_000 }));
    const r = row(7);
    expect(r.dataset.state).toBe("done");
    expect(byTestId("name", r).textContent).toBe("Talk.mov");
    expect(byTestId("size", r).textContent).toBe("2.5 GB");
    expect(byTestId("profile", r).textContent).toBe("studio");
    expect(byTestId("key", r).textContent).toBe("u/42/talk.mov");
    const url = byTestId<HTMLOutputElement>("url", r);
    // As text, and as a field's value (what the end-to-end test reads).
    expect(url.textContent).toBe("https://cdn.example.com/u/42/talk.mov");
    expect(url.value).toBe("https://cdn.example.com/u/42/talk.mov");
    const date = byTestId<HTMLTimeElement>("date", r);
    expect(date.dateTime).toBe(new Date(1_700_000_000_000).toISOString());
    expect(date.textContent).toMatch(/2023/);
  });

  it("says what was verified for each upload, and nothing for uploads that predate it", () => {
    history.upsertMany([
      doneItem({ id: 1, verified: "object_crc64nvme", verifiedText: "verified: CRC64NVME of the whole file" }),
      doneItem({ id: 2, verified: "parts_md5", verifiedText: "verified: every part's MD5" }),
      doneItem({ id: 3 }),
    ]);
    // Plain words, the detail on hover.
    expect(byTestId("verified", row(1)).textContent).toBe("Checked end to end");
    expect(byTestId("verified", row(1)).title).toBe("verified: CRC64NVME of the whole file");
    expect(byTestId("verified", row(2)).textContent).toBe("Checked end to end");
    expect(byTestId("verified", row(2)).title).toBe("verified: every part's MD5");
    expect(byTestId("verified", row(3)).hidden).toBe(true);
    // A row reused for another state of the item shows the new value.
    history.upsert(doneItem({ id: 3, verified: "unverified", verifiedText: "not verified: the store answered no checksum to compare" }));
    expect(byTestId("verified", row(3)).hidden).toBe(false);
    expect(byTestId("verified", row(3)).textContent).toBe("Not checked");
    expect(byTestId("verified", row(3)).title).toMatch(/^not verified/);
  });

  it("says why an upload has no poster, until a poster comes", () => {
    const why = "the file is a symbolic link now (or was replaced by one since it was queued)";
    history.upsertMany([doneItem({ id: 1, noPoster: why }), doneItem({ id: 2 })]);
    expect(byTestId("no-poster", row(1)).hidden).toBe(false);
    expect(byTestId("no-poster", row(1)).textContent).toBe(`no poster: ${why}`);
    expect(byTestId("no-poster", row(2)).hidden).toBe(true);
    history.upsert(doneItem({ id: 1, noPoster: why, posterUrl: "https://cdn.example.com/u/1.poster.jpg" }));
    expect(byTestId("no-poster", row(1)).hidden).toBe(true);
  });

  it("searches name, key and link, ignoring case", () => {
    history.upsertMany([
      doneItem({ id: 1, name: "Holiday.mp4", key: "a/1.mp4", url: "https://cdn.example.com/a/1.mp4" }),
      doneItem({ id: 2, name: "talk.mov", key: "conference/KEYNOTE.mov", url: "https://cdn.example.com/x/2.mov" }),
      doneItem({ id: 3, name: "b.mp4", key: "b/3.mp4", url: "https://media.example.org/b/3.mp4" }),
    ]);
    const search = byTestId<HTMLInputElement>("history-search");
    type(search, "HOLIDAY");
    expect(rowIds()).toEqual([1]);
    type(search, "keynote");
    expect(rowIds()).toEqual([2]);
    type(search, "media.example.org");
    expect(rowIds()).toEqual([3]);
    expect(byTestId("history-count").textContent).toBe("1 of 3");
    type(search, "nothing like this");
    expect(rowIds()).toEqual([]);
    const empty = byTestId("history-empty");
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toContain("No finished uploads match");
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(search.value).toBe("");
    expect(rowIds()).toEqual([3, 2, 1]);
    expect(empty.hidden).toBe(true);
    // Filtering never rebuilds rows.
    expect(history.stats.rowsCreated).toBe(3);
  });

  it("filters by profile, with one option per profile seen", () => {
    history.upsertMany([
      doneItem({ id: 1, profile: "studio" }),
      doneItem({ id: 2, profile: "archive" }),
      doneItem({ id: 3, profile: "studio" }),
      doneItem({ id: 4, profile: null }),
    ]);
    const select = byTestId<HTMLSelectElement>("history-profile-filter");
    expect([...select.options].map((o) => [o.value, o.textContent])).toEqual([
      ["", "All profiles"],
      ["archive", "archive"],
      ["studio", "studio"],
    ]);
    type(select, "studio");
    expect(rowIds()).toEqual([3, 1]);
    type(byTestId<HTMLInputElement>("history-search"), "/1.");
    expect(rowIds()).toEqual([1]);
    type(byTestId<HTMLInputElement>("history-search"), "");
    type(select, "");
    expect(rowIds()).toEqual([4, 3, 2, 1]);
    history.upsert(doneItem({ id: 5, profile: "new-one" }));
    expect([...select.options].map((o) => o.value)).toEqual(["", "archive", "new-one", "studio"]);
  });

  it("shows an empty state before anything finished", () => {
    const empty = byTestId("history-empty");
    expect(empty.hidden).toBe(false);
    expect(empty.textContent).toContain("Finished uploads appear here");
    history.upsert(doneItem({ id: 1 }));
    expect(empty.hidden).toBe(true);
  });

  it("copies a freshly signed link where the endpoint signs, and says when it expires", async () => {
    clearMocks();
    calls = mockBackend({ sign_link: () => ({ url: "https://cdn.example.com/k.mp4?Expires=1900000000", expiresAt: 1_900_000_000 }) });
    history.upsert(doneItem({ id: 4, url: "https://cdn.example.com/k.mp4" }));
    byTestId<HTMLButtonElement>("history-copy", row(4)).click();
    await settle();
    expect(commandCalls(calls, "sign_link")).toEqual([{ id: 4 }]);
    expect(commandCalls(calls, "copy_text")).toEqual([{ text: "https://cdn.example.com/k.mp4?Expires=1900000000" }]);
    expect(notify).toHaveBeenCalledWith(expect.stringMatching(/^Link copied\. It works until /));
  });

  it("copies and opens the link through the app, and reports a failure", async () => {
    history.upsert(doneItem({ id: 3, url: "https://cdn.example.com/k.mp4" }));
    const copy = byTestId<HTMLButtonElement>("history-copy", row(3));
    copy.click();
    await settle();
    expect(commandCalls(calls, "copy_text")).toEqual([{ text: "https://cdn.example.com/k.mp4" }]);
    expect(copy.textContent).toBe("Copied");
    byTestId("history-open", row(3)).click();
    await settle();
    expect(commandCalls(calls, "open_url")).toEqual([{ url: "https://cdn.example.com/k.mp4" }]);
    expect(notify).toHaveBeenCalledWith("No browser found.", { kind: "error" });
    byTestId("action-remove", row(3)).click();
    await settle();
    expect(commandCalls(calls, "remove_upload")).toEqual([{ id: 3 }]);
  });

  it("plays in an in-app preview that stops and forgets the video when closed", async () => {
    history.upsert(doneItem({ id: 3, name: "k.mp4", url: "https://cdn.example.com/k.mp4" }));
    const dialog = byTestId("preview");
    expect(dialog.hidden).toBe(true);
    const pause = vi.spyOn(HTMLMediaElement.prototype, "pause").mockImplementation(() => {});
    vi.spyOn(HTMLMediaElement.prototype, "load").mockImplementation(() => {});

    const play = byTestId<HTMLButtonElement>("history-play", row(3));
    play.focus();
    play.click();
    await settle();
    const video = byTestId<HTMLVideoElement>("preview-video");
    expect(dialog.hidden).toBe(false);
    expect(video.getAttribute("src")).toBe("https://cdn.example.com/k.mp4");
    expect(video.controls).toBe(true);
    expect(byTestId("preview-title").textContent).toBe("k.mp4");
    expect(document.activeElement).toBe(byTestId("preview-close"));

    byTestId("preview-close").click();
    expect(dialog.hidden).toBe(true);
    expect(pause).toHaveBeenCalled();
    expect(video.hasAttribute("src")).toBe(false);
    expect(document.activeElement).toBe(play);

    // Escape closes too.
    byTestId("history-play", row(3)).click();
    await settle();
    dialog.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(dialog.hidden).toBe(true);
    expect(video.hasAttribute("src")).toBe(false);
    vi.restoreAllMocks();
  });

  it("plays and opens a freshly signed link where the endpoint signs links", async () => {
    const signed = mockBackend({
      sign_link: () => Promise.resolve({ url: "https://cdn.example.com/k.mp4?Signature=s", expiresAt: 1_900_000_000, posterUrl: null }),
    });
    history.upsert(doneItem({ id: 3, url: "https://cdn.example.com/k.mp4" }));
    vi.spyOn(HTMLMediaElement.prototype, "load").mockImplementation(() => {});
    byTestId("history-play", row(3)).click();
    await settle();
    expect(byTestId<HTMLVideoElement>("preview-video").getAttribute("src")).toBe("https://cdn.example.com/k.mp4?Signature=s");
    byTestId("preview-open").click();
    byTestId("preview-close").click();
    byTestId("history-open", row(3)).click();
    await settle();
    // Both the preview's "Open in the browser" and the row's open the signed link.
    expect(commandCalls(signed, "open_url")).toEqual([
      { url: "https://cdn.example.com/k.mp4?Signature=s" },
      { url: "https://cdn.example.com/k.mp4?Signature=s" },
    ]);
    vi.restoreAllMocks();
  });

  it("offers the browser when the video cannot play here", async () => {
    history.upsert(doneItem({ id: 3, url: "https://cdn.example.com/k.mkv" }));
    byTestId("history-play", row(3)).click();
    await settle();
    const failure = byTestId("preview-error");
    expect(failure.hidden).toBe(true);
    byTestId("preview-video").dispatchEvent(new Event("error"));
    expect(failure.hidden).toBe(false);
    byTestId("preview-open").click();
    await settle();
    expect(commandCalls(calls, "open_url")).toEqual([{ url: "https://cdn.example.com/k.mkv" }]);
  });
});
