import { clearMocks } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { events as appEvents } from "./bindings";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  allByTestId,
  byTestId,
  commandCalls,
  doneItem,
  item,
  loadPage,
  mockBackend,
  nextFrame,
  settings,
  settle,
  type Call,
  type Handler,
} from "../test/support";
import {
  type Connection,
  type UploadItem,
} from "./ipc";
import { readyMessage, start, type App } from "./app";

const OK: Connection = { profile: "local", endpoint: "http://127.0.0.1:7300", cdn: "http://127.0.0.1:7300/cdn", problem: null };

let calls: Call[];

async function boot(connection: Connection = OK, uploads: UploadItem[] = [], extra: Record<string, Handler | unknown> = {}): Promise<App> {
  loadPage();
  calls = mockBackend({
    connection: () => connection,
    list_uploads: () => uploads,
    get_settings: () => settings(),
    watch_status: () => [],
    ...extra,
  });
  return start({ readyDelayMs: 0 });
}

function visibleView(): string[] {
  return ["queue", "history", "settings"].filter((v) => !byTestId(`view-${v}`).hidden);
}

describe("app", () => {
  beforeEach(() => {
    document.documentElement.innerHTML = "";
  });
  afterEach(() => clearMocks());

  it("says where uploads go", async () => {
    await boot();
    const connection = byTestId("connection");
    expect(connection.textContent).toBe("Uploading to local (http://127.0.0.1:7300)");
    expect(connection.dataset.state).toBe("ok");
    expect(document.querySelector("[data-testid=connection-problem]")).toBeNull();
    expect(commandCalls(calls, "get_settings")).toHaveLength(1);
    expect(commandCalls(calls, "watch_status")).toHaveLength(1);
  });

  it("explains a missing connection in the drop zone, with a way to Settings", async () => {
    await boot({ profile: null, endpoint: null, cdn: null, problem: "No profile yet: add one in Settings." });
    expect(byTestId("connection").textContent).toBe("Not connected");
    expect(byTestId("connection-problem").textContent).toBe("No profile yet: add one in Settings.");
    expect(byTestId("drop-zone").dataset.state).toBe("disabled");
    byTestId("open-settings").click();
    expect(visibleView()).toEqual(["settings"]);
    expect(byTestId("tab-settings").getAttribute("aria-selected")).toBe("true");
  });

  it("asks again for the connection when settings change, and drops the problem once fixed", async () => {
    let conn: Connection = { profile: null, endpoint: null, cdn: null, problem: "No profile yet." };
    await boot(conn, [], { connection: () => conn });
    expect(byTestId("connection-problem").textContent).toBe("No profile yet.");
    conn = OK;
    await appEvents.reelupSettings.emit(settings());
    await settle();
    expect(byTestId("connection").textContent).toBe("Uploading to local (http://127.0.0.1:7300)");
    expect(document.querySelector("[data-testid=connection-problem]")).toBeNull();
  });

  it("switches views with tabs, arrow keys and shortcuts", async () => {
    await boot();
    expect(visibleView()).toEqual(["queue"]);
    byTestId("tab-history").click();
    expect(visibleView()).toEqual(["history"]);
    expect(byTestId("tab-history").getAttribute("aria-selected")).toBe("true");
    expect(byTestId("tab-queue").getAttribute("aria-selected")).toBe("false");
    byTestId("tab-history").dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(visibleView()).toEqual(["settings"]);
    expect(document.activeElement).toBe(byTestId("tab-settings"));
    byTestId("tab-settings").dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
    expect(visibleView()).toEqual(["queue"]);
    document.body.dispatchEvent(new KeyboardEvent("keydown", { key: "2", ctrlKey: true, bubbles: true }));
    expect(visibleView()).toEqual(["history"]);
  });

  it("puts unfinished uploads in the queue and finished ones in history", async () => {
    await boot(OK, [
      item({ id: 1, state: "uploading", sent: 10 }),
      doneItem({ id: 2, name: "done.mp4" }),
      item({ id: 3, state: "failed", error: { code: "network", message: "Connection reset." } }),
      item({ id: 4, state: "canceled" }),
    ]);
    await nextFrame();
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["1", "3", "4"]);
    expect(allByTestId("history-row").map((r) => r.dataset.id)).toEqual(["2"]);
    expect(byTestId("queue-count").textContent).toBe("2");
  });

  it("shows uploads added together, from one event, after the ones already queued", async () => {
    await boot(OK, [item({ id: 1, state: "uploading" }), doneItem({ id: 2, name: "old.mp4" })]);
    await appEvents.reelupUploadsAdded.emit({
      items: [item({ id: 5, name: "c.mp4" }), item({ id: 3, name: "a.mp4" }), item({ id: 4, name: "b.mp4" })],
    });
    await nextFrame();
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["1", "3", "4", "5"]);
    expect(allByTestId("history-row").map((r) => r.dataset.id)).toEqual(["2"]);
    expect(byTestId("queue-count").textContent).toBe("4");
    // A later change to one of them is the usual single event.
    await appEvents.reelupUpload.emit(doneItem({ id: 4, name: "b.mp4" }));
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["1", "3", "5"]);
    expect(allByTestId("history-row").map((r) => r.dataset.id).sort()).toEqual(["2", "4"]);
  });

  it("moves an upload from the queue to history when it is done, keeping the queue's other rows", async () => {
    await boot(OK, [item({ id: 1, state: "uploading" }), item({ id: 2, state: "queued" })]);
    const second = document.querySelector('[data-testid=upload-row][data-id="2"]');
    await appEvents.reelupUpload.emit(doneItem({ id: 1, name: "first.mp4", url: "http://127.0.0.1:7300/cdn/k.mp4" }));
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["2"]);
    expect(document.querySelector('[data-testid=upload-row][data-id="2"]')).toBe(second);
    const row = byTestId("history-row");
    expect(row.dataset.id).toBe("1");
    expect(byTestId<HTMLOutputElement>("url", row).value).toBe("http://127.0.0.1:7300/cdn/k.mp4");
    expect(byTestId("url", row).textContent).toBe("http://127.0.0.1:7300/cdn/k.mp4");
    await appEvents.reelupRemoved.emit({ id: 1 });
    expect(allByTestId("history-row")).toHaveLength(0);
    await appEvents.reelupRemoved.emit({ id: 2 });
    await nextFrame();
    expect(allByTestId("upload-row")).toHaveLength(0);
    expect(byTestId("queue-empty").hidden).toBe(false);
  });

  it("says once where finished uploads went, with a way there", async () => {
    await boot(OK, [item({ id: 1, state: "uploading" }), item({ id: 2, state: "uploading" }), item({ id: 3 })]);
    await appEvents.reelupUpload.emit(doneItem({ id: 1, name: "a.mp4", details: VIDEO }));
    await settle();
    expect(byTestId("notice-ready").textContent).toContain("“a.mp4” is ready to stream.");
    byTestId("notice-action").click();
    expect(visibleView()).toEqual(["history"]);
    expect(document.querySelector("[data-testid=notice-ready]")).toBeNull();
    // Already looking at history: no toast. Items never in the queue: no toast either.
    await appEvents.reelupUpload.emit(doneItem({ id: 2, name: "b.mp4" }));
    await appEvents.reelupUpload.emit(doneItem({ id: 9, name: "c.mp4" }));
    await settle();
    expect(document.querySelector("[data-testid=notice-ready]")).toBeNull();
    // App notices keep their own testid.
    expect(document.querySelector("[data-testid=notice]")).toBeNull();
  });

  it("applies progress events on the next animation frame", async () => {
    await boot(OK, [item({ id: 1, state: "uploading", size: 1_000_000 })]);
    await appEvents.reelupProgress.emit({ items: [{ id: 1, sent: 100_000, total: 1_000_000, bytesPerSec: 1_000_000, etaSecs: 1 }] });
    await appEvents.reelupProgress.emit({ items: [{ id: 1, sent: 500_000, total: 1_000_000, bytesPerSec: 1_000_000, etaSecs: 1 }] });
    await nextFrame();
    const row = byTestId("upload-row");
    expect(byTestId("progress", row).getAttribute("aria-valuenow")).toBe("50");
    expect(byTestId("speed", row).textContent).toBe("1.0 MB/s");
    expect(byTestId("totals").textContent).toBe("1 uploading · 500 KB of 1.0 MB · 1.0 MB/s");
  });

  it("trusts events over a list that answered late", async () => {
    let answer: (items: UploadItem[]) => void = () => {};
    loadPage();
    calls = mockBackend({
      connection: () => OK,
      list_uploads: () => new Promise((r) => (answer = r)),
      get_settings: () => settings(),
      watch_status: () => [],
    });
    const started = start();
    await settle();
    await appEvents.reelupUpload.emit(doneItem({ id: 5 }));
    await appEvents.reelupRemoved.emit({ id: 6 });
    answer([item({ id: 5, state: "uploading" }), item({ id: 6, state: "failed" }), item({ id: 7 })]);
    await started;
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["7"]);
    expect(allByTestId("history-row").map((r) => r.dataset.id)).toEqual(["5"]);
  });

  it("shows notices from the app without blocking, one toast per message", async () => {
    await boot();
    await appEvents.reelupNotice.emit({ message: "notes.txt: not a video" });
    await appEvents.reelupNotice.emit({ message: "notes.txt: not a video" });
    const notices = allByTestId("notice");
    expect(notices).toHaveLength(1);
    expect(notices[0].textContent).toContain("notes.txt: not a video");
    expect(notices[0].textContent).toContain("×2");
    byTestId("notice-close").click();
    expect(allByTestId("notice")).toHaveLength(0);
  });

  it("shows a command's error as a notice", async () => {
    await boot(OK, [item({ id: 1, state: "uploading" })], {
      pause_upload: () => Promise.reject({ code: "not_found", message: "That upload is gone." }),
    });
    byTestId("action-pause").click();
    await settle();
    expect(commandCalls(calls, "pause_upload")).toEqual([{ id: 1 }]);
    expect(byTestId("notice").textContent).toContain("That upload is gone.");
  });

  it("renders settings and watch events in the Settings view", async () => {
    await boot();
    await appEvents.reelupSettings.emit(settings({ problem: "config.toml:7: unknown key" }));
    expect(byTestId("config-problem").hidden).toBe(false);
    expect(byTestId("config-problem").textContent).toContain("config.toml:7: unknown key");
    await appEvents.reelupSettings.emit(
      settings({ profiles: [{ ...settings().profiles[0], watch: [{ path: "/v", recursive: false, afterUpload: "leave" }] }] }),
    );
    await appEvents.reelupWatch.emit([{ profile: "studio", path: "/v", state: "unreadable", message: "Permission denied" }]);
    const state = byTestId("watch-state", byTestId("profile-row"));
    expect(state.dataset.state).toBe("unreadable");
    expect(state.textContent).toContain("Permission denied");
  });

  it("lights up the drop zone while files are dragged over, from any view", async () => {
    await boot();
    byTestId("tab-settings").click();
    await emit("tauri://drag-enter", { paths: ["/a.mp4"], position: { x: 1, y: 1 } });
    expect(byTestId("drop-zone").classList.contains("dragging")).toBe(true);
    expect(visibleView()).toEqual(["queue"]);
    await emit("tauri://drag-leave", null);
    expect(byTestId("drop-zone").classList.contains("dragging")).toBe(false);
  });
});

const VIDEO = { durationMs: 42_000, width: 1920, height: 1080, frameRate: 29.97, videoCodec: "H.264", audioCodec: "AAC" };

describe("readyMessage", () => {
  it("says a file that does not read as a video may not play, rather than ready to stream", () => {
    expect(readyMessage([{ name: "a.mp4", details: VIDEO }])).toBe("“a.mp4” is ready to stream.");
    expect(readyMessage([{ name: "noise.mp4", details: null }])).toBe(
      "“noise.mp4” is up, but it does not read as a video, so it may not play.",
    );
    expect(readyMessage([{ name: "a.mp4", details: VIDEO }, { name: "b.mov", details: VIDEO }])).toBe(
      "2 uploads are ready to stream.",
    );
    expect(readyMessage([{ name: "a.mp4", details: VIDEO }, { name: "noise.mp4", details: null }])).toBe(
      "2 uploads are up; 1 of them does not read as video and may not play.",
    );
  });
});
