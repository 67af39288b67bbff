import { clearMocks, mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { EVENT_NOTICE, EVENT_UPLOAD, type Connection, type UploadItem } from "./ipc";
import { start } from "./app";

const html = readFileSync(resolve(process.cwd(), "index.html"), "utf8");

function boot(connection: Connection, uploads: UploadItem[] = []) {
  document.documentElement.innerHTML = html;
  mockWindows("main");
  mockIPC(
    (cmd) => {
      if (cmd === "connection") return connection;
      if (cmd === "list_uploads") return uploads;
      return undefined;
    },
    { shouldMockEvents: true },
  );
  return start();
}

describe("app", () => {
  beforeEach(() => {
    document.documentElement.innerHTML = "";
  });
  afterEach(() => clearMocks());

  it("shows where uploads go and renders upload events as they arrive", async () => {
    await boot({ endpoint: "http://127.0.0.1:7300", cdn: "http://127.0.0.1:7300/cdn", problem: null });
    expect(document.querySelector("[data-testid=connection]")!.textContent).toBe(
      "Uploading to http://127.0.0.1:7300",
    );
    await emit(EVENT_UPLOAD, {
      id: 7, name: "a.mp4", path: "/a.mp4", size: 10, sent: 10, state: "done",
      url: "http://127.0.0.1:7300/cdn/k.mp4", error: null,
    } satisfies UploadItem);
    expect(document.querySelector<HTMLInputElement>("[data-testid=url]")!.value).toBe(
      "http://127.0.0.1:7300/cdn/k.mp4",
    );
    expect(document.getElementById("empty")!.hidden).toBe(true);
    expect(document.querySelector("[data-testid=totals]")!.textContent).toBe("1 done");
  });

  it("explains a missing connection instead of offering a dead drop zone", async () => {
    await boot({ endpoint: null, cdn: null, problem: "No upload endpoint is set." });
    expect(document.querySelector("[data-testid=connection-problem]")!.textContent).toBe(
      "No upload endpoint is set.",
    );
    expect(document.getElementById("drop-zone")!.dataset.state).toBe("disabled");
  });

  it("lists uploads that already exist and shows notices without blocking", async () => {
    await boot({ endpoint: "e", cdn: "c", problem: null }, [
      { id: 1, name: "old.mp4", path: "/old.mp4", size: 5, sent: 2, state: "uploading", url: null, error: null },
    ]);
    expect(document.querySelectorAll("[data-testid=upload-row]")).toHaveLength(1);
    await emit(EVENT_NOTICE, { message: "notes.txt: not a video" });
    expect(document.querySelector("[data-testid=notice]")!.textContent).toBe("notes.txt: not a video");
  });
});
