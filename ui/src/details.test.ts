import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { byTestId, doneItem, item, loadPage, mockBackend } from "../test/support";
import { detailsLine } from "./details";
import { HistoryView } from "./history";
import { commands, type VideoDetails } from "./ipc";
import { Preview } from "./preview";
import { QueueView } from "./queue";

const hd: VideoDetails = {
  durationMs: 42_400,
  width: 1920,
  height: 1080,
  frameRate: 29.97,
  videoCodec: "H.264",
  audioCodec: "AAC",
};

describe("detailsLine", () => {
  it("reads like the CLI's line", () => {
    expect(detailsLine(hd)).toBe("0:42 · 1920x1080 · 29.97 fps · H.264/AAC");
    expect(detailsLine({ ...hd, durationMs: 3_725_600, frameRate: 25, videoCodec: "HEVC", audioCodec: null })).toBe(
      "1:02:06 · 1920x1080 · 25 fps · HEVC",
    );
    expect(detailsLine({ ...hd, frameRate: 24000 / 1001 })).toBe("0:42 · 1920x1080 · 23.976 fps · H.264/AAC");
    expect(detailsLine({ ...hd, durationMs: 599_500, frameRate: 60 })).toBe("10:00 · 1920x1080 · 60 fps · H.264/AAC");
  });

  it("leaves out what the container did not say, and is empty without details", () => {
    expect(detailsLine({ ...hd, durationMs: null, frameRate: null, audioCodec: null })).toBe("1920x1080 · H.264");
    expect(detailsLine(null)).toBe("");
  });
});

describe("the details line in Queue and History rows", () => {
  beforeEach(() => {
    loadPage();
    mockBackend({});
  });
  afterEach(() => clearMocks());

  it("shows under the name in the queue, and goes when there are none", () => {
    const queue = new QueueView(byTestId("view-queue"), { commands, notify: () => null, schedule: (cb) => cb() });
    queue.upsert(item({ id: 1, details: hd }));
    queue.upsert(item({ id: 2, path: "/videos/old.avi", name: "old.avi" }));
    const row = (id: number) => document.querySelector<HTMLElement>(`[data-testid=upload-row][data-id="${id}"]`)!;
    expect(byTestId("details", row(1)).textContent).toBe("0:42 · 1920x1080 · 29.97 fps · H.264/AAC");
    expect(row(2).querySelector("[data-testid=details]")).toBeNull();
    queue.upsert(item({ id: 1, details: null, state: "paused" }));
    expect(row(1).querySelector("[data-testid=details]")).toBeNull();
  });

  it("shows under the name in history", () => {
    const preview = new Preview(byTestId("preview"), () => {});
    const history = new HistoryView(byTestId("view-history"), { commands, notify: () => null, preview });
    history.upsert(doneItem({ id: 3, details: { ...hd, audioCodec: null, videoCodec: "AV1" } }));
    const row = document.querySelector<HTMLElement>(`[data-testid=history-row][data-id="3"]`)!;
    expect(byTestId("details", row).textContent).toBe("0:42 · 1920x1080 · 29.97 fps · AV1");
  });
});
