import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from "vitest";
import type { Notify } from "./notices";
import { allByTestId, byTestId, commandCalls, item, loadPage, mockBackend, settle, type Call } from "../test/support";
import { commands, type ProgressTick, type UploadState } from "./ipc";
import { QueueView, actionsFor, summarizeQueue, totalsText } from "./queue";

/** A scheduler the test drives: frames run only when `frame()` is called. */
function manualFrames() {
  const queued: (() => void)[] = [];
  return {
    schedule: (cb: () => void) => void queued.push(cb),
    frame() {
      const run = queued.splice(0);
      for (const cb of run) cb();
      return run.length;
    },
    get waiting() {
      return queued.length;
    },
  };
}

function row(id: number): HTMLElement {
  return document.querySelector<HTMLElement>(`[data-testid=upload-row][data-id="${id}"]`)!;
}

function actionIds(el: HTMLElement): string[] {
  return [...el.querySelectorAll<HTMLElement>("[data-testid^=action-]")].map((b) => b.dataset.testid!);
}

describe("row actions", () => {
  it("offers the actions each state allows", () => {
    const table: Record<UploadState, string[]> = {
      queued: ["pause", "cancel"],
      uploading: ["pause", "cancel"],
      paused: ["resume", "cancel"],
      failed: ["retry", "cancel", "remove"],
      canceled: ["remove"],
      done: ["remove"],
    };
    for (const [state, actions] of Object.entries(table)) {
      expect(actionsFor(state as UploadState), state).toEqual(actions);
    }
  });
});

describe("QueueView", () => {
  let frames: ReturnType<typeof manualFrames>;
  let queue: QueueView;
  let calls: Call[];
  let notify: Mock<Notify>;

  beforeEach(() => {
    loadPage();
    calls = mockBackend({ cancel_upload: () => Promise.reject({ code: "not_running", message: "It already finished." }) });
    frames = manualFrames();
    notify = vi.fn<Notify>(() => null);
    queue = new QueueView(byTestId("view-queue"), { commands, notify, schedule: frames.schedule });
    frames.frame();
  });
  afterEach(() => clearMocks());

  it("shows buttons that match the row's state and keeps data-state current", () => {
    queue.upsert(item({ id: 1, state: "uploading", sent: 1 }));
    const r = row(1);
    expect(r.dataset.state).toBe("uploading");
    expect(actionIds(r)).toEqual(["action-pause", "action-cancel"]);

    queue.upsert(item({ id: 1, state: "paused", sent: 1 }));
    expect(row(1)).toBe(r);
    expect(r.dataset.state).toBe("paused");
    expect(byTestId("state", r).textContent).toBe("Paused");
    expect(actionIds(r)).toEqual(["action-resume", "action-cancel"]);

    queue.upsert(item({ id: 1, state: "failed", error: { code: "network", message: "The connection dropped." } }));
    expect(actionIds(r)).toEqual(["action-retry", "action-cancel", "action-remove"]);
    expect(byTestId("error", r).textContent).toBe("The connection dropped.");
    expect(byTestId("error", r).dataset.code).toBe("network");

    queue.upsert(item({ id: 1, state: "canceled" }));
    expect(actionIds(r)).toEqual(["action-remove"]);
    expect(r.querySelector("[data-testid=error]")).toBeNull();
  });

  it("calls the command behind each button with the row's id", async () => {
    queue.upsert(item({ id: 4, state: "uploading" }));
    queue.upsert(item({ id: 5, state: "paused" }));
    queue.upsert(item({ id: 6, state: "failed", error: { code: "x", message: "y" } }));
    byTestId("action-pause", row(4)).click();
    byTestId("action-resume", row(5)).click();
    byTestId("action-retry", row(6)).click();
    byTestId("action-remove", row(6)).click();
    await settle();
    expect(commandCalls(calls, "pause_upload")).toEqual([{ id: 4 }]);
    expect(commandCalls(calls, "resume_upload")).toEqual([{ id: 5 }, { id: 6 }]);
    expect(commandCalls(calls, "remove_upload")).toEqual([{ id: 6 }]);
  });

  it("asks before cancelling an upload that has sent anything", async () => {
    queue.upsert(item({ id: 4, state: "uploading", size: 10_000_000, sent: 3_000_000 }));
    queue.upsert(item({ id: 5, state: "queued", size: 10_000_000, sent: 0 }));
    byTestId("action-cancel", row(5)).click();
    await settle();
    expect(commandCalls(calls, "cancel_upload")).toEqual([{ id: 5 }]);
    const cancel = byTestId<HTMLButtonElement>("action-cancel", row(4));
    cancel.click();
    await settle();
    expect(commandCalls(calls, "cancel_upload")).toEqual([{ id: 5 }]);
    expect(cancel.dataset.confirm).toBe("true");
    expect(notify).toHaveBeenCalledWith(expect.stringMatching(/^Click Cancel again to stop .* 3\.0 MB sent\.$/));
    cancel.click();
    await settle();
    expect(commandCalls(calls, "cancel_upload")).toEqual([{ id: 5 }, { id: 4 }]);
  });

  it("says where each video keeps its index, and asks about a held one", async () => {
    queue.upsert(item({ id: 1, state: "uploading", indexPosition: "moov_after_mdat", layout: "faststart" }));
    expect(byTestId("index", row(1)).textContent).toBe("Starts instantly (re-laid)");
    queue.upsert(item({ id: 2, state: "uploading", indexPosition: "moov_first", layout: "original" }));
    expect(byTestId("index", row(2)).textContent).toBe("Starts instantly");
    queue.upsert(item({ id: 3, state: "queued", indexPosition: null }));
    expect(byTestId("index", row(3)).textContent).toBe("");

    const held = { code: "faststart_undecided" as const, message: "Its index is at the end." };
    queue.upsert(item({ id: 4, state: "failed", indexPosition: "moov_after_mdat", error: held }));
    expect(byTestId("index", row(4)).textContent).toBe("Viewers wait for the whole index");
    expect(byTestId("choose-faststart", row(4)).textContent).toBe("Make it start instantly");
    byTestId("choose-original", row(4)).click();
    byTestId("choose-faststart", row(4)).click();
    await settle();
    expect(commandCalls(calls, "choose_layout")).toEqual([
      { id: 4, layout: "original" },
      { id: 4, layout: "faststart" },
    ]);
    expect(commandCalls(calls, "resume_upload")).toEqual([]);

    // A damaged MP4 can only go up as it is; other failures offer no choice.
    const damaged = { code: "mp4_damaged" as const, message: "It is cut off." };
    queue.upsert(item({ id: 5, state: "failed", indexPosition: "damaged", error: damaged }));
    expect(byTestId("index", row(5)).textContent).toBe("Damaged MP4");
    expect(row(5).querySelector("[data-testid=choose-faststart]")).toBeNull();
    expect(byTestId("choose-original", row(5)).textContent).toBe("Upload as is");
    queue.upsert(item({ id: 6, state: "failed", error: { code: "storage_error", message: "No." } }));
    expect(row(6).querySelector("[data-testid^=choose-]")).toBeNull();
    // Chosen: the row goes back in line and the buttons go with the error.
    queue.upsert(item({ id: 4, state: "queued", indexPosition: "moov_after_mdat", layout: "faststart" }));
    expect(row(4).querySelector("[data-testid^=choose-]")).toBeNull();
  });

  it("shows a failed action's message as a notice", async () => {
    queue.upsert(item({ id: 4, state: "uploading" }));
    byTestId("action-cancel", row(4)).click();
    await settle();
    expect(commandCalls(calls, "cancel_upload")).toEqual([{ id: 4 }]);
    expect(notify).toHaveBeenCalledWith("It already finished.", { kind: "error" });
  });

  it("retry all is offered while a failure may pass, and retries those", async () => {
    const retryAll = byTestId<HTMLButtonElement>("retry-all");
    queue.upsert(item({ id: 1, state: "failed", error: { code: "unauthorized", message: "No." }, retryable: false }));
    frames.frame();
    expect(retryAll.disabled).toBe(true);
    queue.upsert(item({ id: 2, state: "failed", error: { code: "endpoint_unreachable", message: "Down." }, retryable: true }));
    frames.frame();
    expect(retryAll.disabled).toBe(false);
    retryAll.click();
    await settle();
    expect(commandCalls(calls, "retry_all")).toEqual([{}]);
  });

  it("pause all and resume all follow the queue", async () => {
    const pauseAll = byTestId<HTMLButtonElement>("pause-all");
    const resumeAll = byTestId<HTMLButtonElement>("resume-all");
    expect(pauseAll.disabled).toBe(true);
    queue.upsert(item({ id: 1, state: "uploading" }));
    frames.frame();
    expect(pauseAll.disabled).toBe(false);
    expect(resumeAll.disabled).toBe(true);
    pauseAll.click();
    await settle();
    expect(commandCalls(calls, "pause_all")).toHaveLength(1);
    queue.upsert(item({ id: 1, state: "paused" }));
    frames.frame();
    expect(pauseAll.disabled).toBe(true);
    expect(resumeAll.disabled).toBe(false);
    resumeAll.click();
    await settle();
    expect(commandCalls(calls, "resume_all")).toHaveLength(1);
  });

  it("keeps rows in upload order (oldest first) whatever order they arrive in", () => {
    queue.upsertMany([item({ id: 30 }), item({ id: 10 }), item({ id: 20 })]);
    queue.upsert(item({ id: 15 }));
    queue.upsert(item({ id: 40 }));
    const ids = allByTestId("upload-row").map((r) => r.dataset.id);
    expect(ids).toEqual(["10", "15", "20", "30", "40"]);
    queue.remove(20);
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["10", "15", "30", "40"]);
    queue.upsert(item({ id: 25 }));
    expect(allByTestId("upload-row").map((r) => r.dataset.id)).toEqual(["10", "15", "25", "30", "40"]);
  });

  it("applies progress batches once per frame, newest tick per item", () => {
    queue.upsert(item({ id: 1, state: "uploading", size: 1_000_000 }));
    queue.upsert(item({ id: 2, state: "uploading", size: 1_000_000 }));
    frames.frame();
    const tick = (id: number, sent: number, bps = 500_000, eta: number | null = 2): ProgressTick => ({
      id,
      sent,
      total: 1_000_000,
      bytesPerSec: bps,
      etaSecs: eta,
    });
    queue.progress({ items: [tick(1, 100_000), tick(2, 50_000)] });
    queue.progress({ items: [tick(1, 250_000, 2_000_000, 90)] });
    // Nothing is written until the frame.
    expect(byTestId("amount", row(1)).textContent).toBe("");
    expect(frames.waiting).toBe(1);
    frames.frame();
    expect(frames.waiting).toBe(0);

    const r1 = row(1);
    expect(byTestId("amount", r1).textContent).toBe("25% · 250 KB");
    expect(byTestId("speed", r1).textContent).toBe("2.0 MB/s");
    expect(byTestId("eta", r1).textContent).toBe("2 min left");
    expect(byTestId("progress", r1).getAttribute("aria-valuenow")).toBe("25");
    expect((r1.querySelector(".fill") as HTMLElement).style.transform).toBe("scaleX(0.250)");
    expect(byTestId("amount", row(2)).textContent).toBe("5% · 50.0 KB");
    expect(byTestId("totals").textContent).toBe("2 uploading · 300 KB of 2.0 MB · 2.5 MB/s");
  });

  it("drops ticks that are older than a state change, and hides speed once paused", () => {
    queue.upsert(item({ id: 1, state: "uploading", size: 1000 }));
    queue.progress({ items: [{ id: 1, sent: 100, total: 1000, bytesPerSec: 50, etaSecs: 18 }] });
    queue.upsert(item({ id: 1, state: "paused", size: 1000, sent: 400 }));
    frames.frame();
    const r = row(1);
    expect(byTestId("amount", r).textContent).toBe("40% · 400 B");
    expect(byTestId("speed", r).textContent).toBe("");
    expect(byTestId("eta", r).textContent).toBe("");
  });

  it("says an upload waits for the server instead of a speed that stopped, until it gets through", () => {
    const waitingCounts: number[] = [];
    loadPage();
    const q = new QueueView(byTestId("view-queue"), {
      commands,
      notify,
      schedule: frames.schedule,
      onWaiting: (n) => waitingCounts.push(n),
    });
    q.upsert(item({ id: 1, state: "uploading", size: 1_000_000 }));
    q.upsert(item({ id: 2, state: "uploading", size: 1_000_000 }));
    q.progress({ items: [{ id: 1, sent: 570_000, total: 1_000_000, bytesPerSec: 3_800_000, etaSecs: 36 }] });
    frames.frame();
    const r = row(1);
    expect(byTestId("speed", r).textContent).toBe("3.8 MB/s");
    const why = "Waiting for the server: it cannot be reached";
    q.waiting({ id: 1, why });
    frames.frame();
    expect(byTestId("state", r).textContent).toBe("Waiting for the server");
    expect(r.dataset.waiting).toBe("true");
    expect(r.title).toBe(why);
    expect(byTestId("speed", r).textContent).toBe("");
    expect(byTestId("eta", r).textContent).toBe("");
    expect(byTestId("amount", r).textContent).toMatch(/% · 570 KB$/);
    expect(byTestId("totals").textContent).toMatch(/^2 uploading \(1 waiting for the server\)/);
    expect(waitingCounts.at(-1)).toBe(1);
    // Through again: back to uploading; and a state change ends a wait too.
    q.waiting({ id: 1, why: null });
    frames.frame();
    expect(byTestId("state", r).textContent).toBe("Uploading");
    expect(r.dataset.waiting).toBe("false");
    expect(waitingCounts.at(-1)).toBe(0);
    q.waiting({ id: 2, why });
    q.upsert(item({ id: 2, state: "paused", size: 1_000_000 }));
    frames.frame();
    expect(byTestId("state", row(2)).textContent).toBe("Paused");
    expect(waitingCounts.at(-1)).toBe(0);
  });

  it("ignores ticks for items it does not show", () => {
    queue.progress({ items: [{ id: 99, sent: 1, total: 2, bytesPerSec: 1, etaSecs: 1 }] });
    expect(frames.waiting).toBe(0);
  });

  it("shows the empty state only when nothing is queued", () => {
    const empty = byTestId("queue-empty");
    expect(empty.hidden).toBe(false);
    queue.upsert(item({ id: 1 }));
    frames.frame();
    expect(empty.hidden).toBe(true);
    queue.remove(1);
    frames.frame();
    expect(empty.hidden).toBe(false);
    expect(byTestId("totals").textContent).toBe("");
  });
});

describe("QueueView with 1,000 items", () => {
  afterEach(() => clearMocks());

  it("builds each row once and writes only what changed, one pass per frame", async () => {
    loadPage();
    mockBackend();
    const frames = manualFrames();
    const queue = new QueueView(byTestId("view-queue"), { commands, notify: () => null, schedule: frames.schedule });
    const N = 1000;
    const SIZE = 100_000_000;
    queue.upsertMany(
      Array.from({ length: N }, (_, i) => item({ id: i + 1, name: `clip ${i + 1}.mp4`, size: SIZE, state: i < 8 ? "uploading" : "queued" })),
    );
    frames.frame();
    expect(queue.stats.rowsCreated).toBe(N);
    const list = byTestId("upload-list");
    const before = [...list.children];
    expect(before).toHaveLength(N);

    let mutations = 0;
    const observer = new MutationObserver((records) => (mutations += records.length));
    observer.observe(list, { subtree: true, childList: true, attributes: true, characterData: true });

    // 50 batches with every item moving arrive before one frame: one pass applies them.
    const t0 = performance.now();
    for (let b = 1; b <= 50; b++) {
      queue.progress({
        items: Array.from({ length: N }, (_, i) => ({ id: i + 1, sent: b * 1_000_000, total: SIZE, bytesPerSec: 5_000_000, etaSecs: 100 - b })),
      });
    }
    expect(frames.frame()).toBe(1);
    const batchMs = performance.now() - t0;
    await Promise.resolve(); // MutationObserver callbacks are microtasks
    // Per row at most: bar transform, aria-valuenow, amount; queued rows show no speed/ETA.
    expect(mutations).toBeLessThanOrEqual(N * 3 + 8 * 2);
    expect(mutations).toBeGreaterThanOrEqual(N * 3);
    expect(byTestId("amount", before[999] as HTMLElement).textContent).toBe("50% · 50.0 MB");

    // A batch where nothing visible changed costs nothing.
    mutations = 0;
    const writesBefore = queue.stats.writes;
    queue.progress({
      items: Array.from({ length: N }, (_, i) => ({ id: i + 1, sent: 50_000_100, total: SIZE, bytesPerSec: 5_000_000, etaSecs: 50 })),
    });
    frames.frame();
    await Promise.resolve();
    expect(mutations).toBe(0);
    expect(queue.stats.writes).toBe(writesBefore);

    // A batch moving only 10 items touches only those rows.
    mutations = 0;
    const touched = new Set<Node>();
    const watcher = new MutationObserver((records) => {
      for (const r of records) touched.add((r.target as Element).closest?.("[data-testid=upload-row]") ?? r.target.parentElement!.closest("[data-testid=upload-row]")!);
    });
    watcher.observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
    queue.progress({ items: Array.from({ length: 10 }, (_, i) => ({ id: i + 1, sent: 60_000_000, total: SIZE, bytesPerSec: 6_000_000, etaSecs: 40 })) });
    frames.frame();
    await Promise.resolve();
    expect(touched.size).toBe(10);
    watcher.disconnect();

    // A state change for one item updates its row in place.
    queue.upsert(item({ id: 500, name: "clip 500.mp4", size: SIZE, sent: 60_000_000, state: "paused" }));
    frames.frame();
    const after = [...list.children];
    expect(after).toHaveLength(N);
    expect(after.every((el, i) => el === before[i])).toBe(true);
    expect(queue.stats.rowsCreated).toBe(N);
    expect(queue.frames).toBeLessThanOrEqual(5);
    observer.disconnect();

    // Micro-benchmark (jsdom, so only a relative figure).
    const rounds = 20;
    const t1 = performance.now();
    for (let r = 0; r < rounds; r++) {
      queue.progress({
        items: Array.from({ length: N }, (_, i) => ({ id: i + 1, sent: 60_000_000 + r * 100_000 * (i % 7), total: SIZE, bytesPerSec: 1_000_000 + r, etaSecs: 40 })),
      });
      frames.frame();
    }
    const perFrame = (performance.now() - t1) / rounds;
    console.log(`queue: 50 batches x ${N} ticks coalesced into 1 frame in ${batchMs.toFixed(1)} ms; ${perFrame.toFixed(2)} ms per frame of ${N} ticks (jsdom)`);
  });
});

describe("QueueView off screen", () => {
  afterEach(() => {
    clearMocks();
    vi.unstubAllGlobals();
  });

  it("draws progress only on rows in view; the others catch up when scrolled to", () => {
    let report: (changes: { target: Element; isIntersecting: boolean }[]) => void = () => {};
    const observed = new Set<Element>();
    vi.stubGlobal(
      "IntersectionObserver",
      class {
        constructor(cb: typeof report) {
          report = cb;
        }
        observe(el: Element) {
          observed.add(el);
        }
        unobserve(el: Element) {
          observed.delete(el);
        }
        disconnect() {}
      },
    );
    loadPage();
    mockBackend();
    const frames = manualFrames();
    const queue = new QueueView(byTestId("view-queue"), { commands, notify: () => null, schedule: frames.schedule });
    queue.upsertMany([1, 2, 3].map((id) => item({ id, state: "uploading", size: 1000 })));
    expect(observed.size).toBe(3);
    report([row(1), row(2)].map((target) => ({ target, isIntersecting: true })));
    report([{ target: row(3), isIntersecting: false }]);
    queue.progress({ items: [1, 2, 3].map((id) => ({ id, sent: 500, total: 1000, bytesPerSec: 10, etaSecs: 50 })) });
    frames.frame();
    expect(byTestId("amount", row(1)).textContent).toBe("50% · 500 B");
    expect(byTestId("amount", row(3)).textContent).toBe("");
    // Totals count every row, seen or not.
    expect(byTestId("totals").textContent).toBe("3 uploading · 1.5 KB of 3.0 KB · 30 B/s");
    report([{ target: row(3), isIntersecting: true }]);
    expect(byTestId("amount", row(3)).textContent).toBe("50% · 500 B");
    expect(byTestId("progress", row(3)).getAttribute("aria-valuenow")).toBe("50");
    // State changes are drawn at once, on screen or not.
    report([{ target: row(2), isIntersecting: false }]);
    queue.upsert(item({ id: 2, state: "paused", size: 1000, sent: 700 }));
    expect(row(2).dataset.state).toBe("paused");
    expect(byTestId("amount", row(2)).textContent).toBe("70% · 700 B");
    queue.remove(2);
    expect(observed.size).toBe(2);
  });
});

describe("totals", () => {
  it("counts unfinished items, bytes and speed; canceled ones do not count", () => {
    const s = summarizeQueue([
      { item: item({ id: 1, state: "uploading", sent: 200_000_000, size: 1_000_000_000 }), speed: 8_000_000 },
      { item: item({ id: 2, state: "uploading", sent: 1_000_000_000, size: 2_000_000_000 }), speed: 4_000_000 },
      { item: item({ id: 3, state: "queued", size: 1_000_000_000 }), speed: 0 },
      { item: item({ id: 4, state: "paused", size: 500_000, sent: 0 }), speed: 99 },
      { item: item({ id: 5, state: "canceled", size: 9_000_000_000 }), speed: 0 },
    ]);
    expect(totalsText(s)).toBe("2 uploading · 1 queued · 1 paused · 1.2 GB of 4.0 GB · 12 MB/s");
    expect(s.active).toBe(4);
    expect(totalsText(summarizeQueue([]))).toBe("");
  });
});
