import { clearMocks, mockConvertFileSrc } from "@tauri-apps/api/mocks";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { byTestId, commandCalls, doneItem, item, loadPage, mockBackend, settings, settle, type Call } from "../test/support";
import { start } from "./app";
import { events as appEvents } from "./bindings";
import { HistoryView } from "./history";
import { commands } from "./ipc";
import {
  MAX_POSTER_BYTES,
  PosterMaker,
  embedSnippet,
  escapeAttr,
  isMostlyBlack,
  mediaUrl,
  fetchVideo,
  posterSize,
  posterTimes,
  contentRange,
} from "./poster";
import { Preview } from "./preview";

/** The snippet as a browser reads it: its elements, and the video's attributes. */
function parse(html: string): { tags: string[]; video: HTMLVideoElement } {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const tags = [...doc.body.querySelectorAll("*")].map((e) => e.tagName.toLowerCase());
  return { tags, video: doc.body.querySelector("video")! };
}

describe("embed snippet", () => {
  it("is a video that loads only its index, with the poster", () => {
    const snippet = embedSnippet({ url: "https://cdn.example.com/u/a.mp4", posterUrl: "https://cdn.example.com/u/a.poster.jpg" });
    expect(snippet).toBe(
      '<video controls preload="metadata" poster="https://cdn.example.com/u/a.poster.jpg" src="https://cdn.example.com/u/a.mp4"></video>',
    );
    expect(embedSnippet({ url: "https://cdn.example.com/u/a.mp4", posterUrl: null })).toBe(
      '<video controls preload="metadata" src="https://cdn.example.com/u/a.mp4"></video>',
    );
  });

  it("keeps hostile URLs inside their attributes", () => {
    const url = `https://cdn.example.com/u/"><script>alert(1)</script><x a='&amp;.mp4?a=1&b=2`;
    const poster = `https://cdn.example.com/u/' onerror='alert(2)" onload="alert(3).jpg`;
    const snippet = embedSnippet({ url, posterUrl: poster });
    const { tags, video } = parse(snippet);
    expect(tags).toEqual(["video"]);
    expect(video.getAttribute("src")).toBe(url);
    expect(video.getAttribute("poster")).toBe(poster);
    expect([...video.attributes].map((a) => a.name).sort()).toEqual(["controls", "poster", "preload", "src"]);
    expect(escapeAttr(`<&>"'`)).toBe("&#60;&#38;&#62;&#34;&#39;");
  });
});

describe("poster capture", () => {
  it("scales frames to at most 640 px wide, keeping the aspect", () => {
    expect(posterSize(1920, 1080)).toEqual({ width: 640, height: 360 });
    expect(posterSize(1080, 1920)).toEqual({ width: 640, height: 1138 });
    expect(posterSize(320, 240)).toEqual({ width: 320, height: 240 });
    expect(posterSize(641, 3)).toEqual({ width: 640, height: 3 });
    expect(posterSize(4000, 1)).toEqual({ width: 640, height: 1 });
    for (const [w, h] of [[0, 1080], [1920, 0], [NaN, 10], [Infinity, 10], [-5, 5]]) expect(posterSize(w, h)).toBeNull();
  });

  it("takes the frame at min(1 s, 10%), then a quarter in if that one is black", () => {
    expect(posterTimes(60)).toEqual([1, 15]);
    expect(posterTimes(4)).toEqual([0.4, 1]);
    expect(posterTimes(0.1)).toEqual([0.010000000000000002]);
    for (const d of [NaN, Infinity, 0, -1]) expect(posterTimes(d)).toEqual([0]);
  });

  it("knows a black frame from a dark one", () => {
    const frame = (pixel: (i: number) => [number, number, number]) => {
      const data = new Uint8ClampedArray(640 * 360 * 4);
      for (let i = 0; i < 640 * 360; i++) data.set([...pixel(i), 255], i * 4);
      return data;
    };
    expect(isMostlyBlack(frame(() => [0, 0, 0]))).toBe(true);
    expect(isMostlyBlack(frame(() => [12, 10, 16]))).toBe(true);
    // A dark scene with a lit part is a picture.
    expect(isMostlyBlack(frame((i) => (i % 640 < 100 ? [200, 180, 150] : [5, 5, 5])))).toBe(false);
    expect(isMostlyBlack(new Uint8ClampedArray(0))).toBe(false);
  });

  it("reads the video through the app's media scheme by queue id", () => {
    mockConvertFileSrc("linux");
    expect(mediaUrl(42)).toBe("reelup-media://localhost/42");
    mockConvertFileSrc("windows");
    expect(mediaUrl(42)).toBe("http://reelup-media.localhost/42");
  });
});

describe("reading the video from the app", () => {
  /** Answers like the app's scheme: 206 chunks of at most `chunk` bytes of `file`. */
  function scheme(file: Uint8Array, chunk: number) {
    const ranges: string[] = [];
    const fetcher = (async (_src: string, init?: RequestInit) => {
      const range = new Headers(init?.headers).get("range") ?? "";
      ranges.push(range);
      const start = Number(/^bytes=(\d+)-$/.exec(range)![1]);
      const end = Math.min(start + chunk, file.length) - 1;
      return new Response(file.slice(start, end + 1), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${end}/${file.length}`, "content-type": "video/mp4" },
      });
    }) as typeof fetch;
    return { fetcher, ranges };
  }

  it("fetches every chunk in order, whole", async () => {
    const file = Uint8Array.from({ length: 10_000 }, (_, i) => i % 251);
    const { fetcher, ranges } = scheme(file, 4096);
    const blob = await fetchVideo("reelup-media://localhost/1", fetcher);
    expect(ranges).toEqual(["bytes=0-", "bytes=4096-", "bytes=8192-"]);
    // jsdom's Blob has no arrayBuffer(); its FileReader reads it.
    const bytes = await new Promise<ArrayBuffer>((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result as ArrayBuffer);
      reader.readAsArrayBuffer(blob);
    });
    expect(new Uint8Array(bytes)).toEqual(file);
    expect(blob.type).toBe("video/mp4");
  });

  it("refuses a video over the cap, and answers that make no sense", async () => {
    const { fetcher } = scheme(new Uint8Array(5000), 1000);
    await expect(fetchVideo("x", fetcher, 4999)).rejects.toThrow("too large");
    const refused = (async () => new Response("no such queue item", { status: 404 })) as typeof fetch;
    await expect(fetchVideo("x", refused)).rejects.toThrow("the app answered 404 for the video: no such queue item");
    const noRange = (async () => new Response("x", { status: 206 })) as typeof fetch;
    await expect(fetchVideo("x", noRange)).rejects.toThrow("Content-Range");
    // An answer from elsewhere than asked (a cache ignoring Range), or a file that grew.
    const stale = (async () =>
      new Response(new Uint8Array(1000), { status: 206, headers: { "content-range": "bytes 0-999/5000" } })) as typeof fetch;
    await expect(fetchVideo("x", stale)).rejects.toThrow("the app answered bytes from 0 when asked from 1000");
    let calls = 0;
    const growing = (async () => {
      calls += 1;
      const total = calls === 1 ? 5000 : 6000;
      const start = (calls - 1) * 1000;
      return new Response(new Uint8Array(1000), { status: 206, headers: { "content-range": `bytes ${start}-${start + 999}/${total}` } });
    }) as typeof fetch;
    await expect(fetchVideo("x", growing)).rejects.toThrow("changed size");
    expect(contentRange("bytes 0-9/10")).toEqual({ start: 0, total: 10 });
    expect(contentRange("bytes 20-29/30")).toEqual({ start: 20, total: 30 });
    expect(contentRange("bytes */10")).toBeNull();
  });
});

describe("PosterMaker", () => {
  let calls: Call[];
  beforeEach(() => {
    calls = mockBackend({ save_poster: () => "https://cdn.example.com/u/a.poster.jpg" });
    mockConvertFileSrc("linux");
  });
  afterEach(() => clearMocks());

  it("hands the JPEG's bytes to the app once per item", async () => {
    const capture = vi.fn(async () => new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 0xff, 0xd9]));
    const maker = new PosterMaker(commands, capture);
    await maker.request(item({ id: 3, posterUrl: null }));
    await maker.request(item({ id: 3, posterUrl: null }));
    await maker.request(item({ id: 4, posterUrl: "https://cdn.example.com/has.jpg" }));
    expect(capture.mock.calls).toEqual([["reelup-media://localhost/3"]]);
    expect(commandCalls(calls, "save_poster")).toEqual([{ id: 3, jpeg: [0xff, 0xd8, 0xff, 0xe0, 1, 2, 0xff, 0xd9] }]);
    expect(commandCalls(calls, "no_poster")).toEqual([]);
  });

  it("says why there is none when the webview cannot draw it, and carries on", async () => {
    const capture = vi
      .fn<(src: string) => Promise<Uint8Array>>()
      .mockRejectedValueOnce(new Error("media error 4: unsupported codec"))
      .mockResolvedValueOnce(new Uint8Array(MAX_POSTER_BYTES + 1))
      .mockResolvedValueOnce(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));
    const maker = new PosterMaker(commands, capture);
    void maker.request(item({ id: 1, posterUrl: null }));
    void maker.request(item({ id: 2, posterUrl: null }));
    await maker.request(item({ id: 5, posterUrl: null }));
    expect(commandCalls(calls, "no_poster")).toEqual([
      { id: 1, reason: "media error 4: unsupported codec" },
      { id: 2, reason: `the frame is ${MAX_POSTER_BYTES + 1} bytes, more than a poster may be` },
    ]);
    expect(commandCalls(calls, "save_poster").map((c) => c.id)).toEqual([5]);
  });
});

describe("History posters and copy actions", () => {
  let calls: Call[];
  let history: HistoryView;
  const row = (id: number) => document.querySelector<HTMLElement>(`[data-testid=history-row][data-id="${id}"]`)!;

  beforeEach(() => {
    loadPage();
    // A plain endpoint: links go as stored.
    calls = mockBackend({ sign_link: () => Promise.reject({ code: "links_unavailable", message: "cannot sign links" }) });
    const preview = new Preview(byTestId("preview"), () => {});
    history = new HistoryView(byTestId("view-history"), { commands, notify: () => null, preview });
  });
  afterEach(() => clearMocks());

  it("shows the poster, or a placeholder until there is one, and a slot for details", () => {
    history.upsert(doneItem({ id: 1, posterUrl: null }));
    const thumb = byTestId<HTMLImageElement>("poster", row(1));
    expect(thumb.hasAttribute("src")).toBe(false);
    expect(thumb.classList.contains("placeholder")).toBe(true);
    history.upsert(doneItem({ id: 1, posterUrl: "https://cdn.example.com/u/1.poster.jpg" }));
    expect(thumb.getAttribute("src")).toBe("https://cdn.example.com/u/1.poster.jpg");
    expect(thumb.classList.contains("placeholder")).toBe(false);
    const details = byTestId("details", row(1));
    expect(details.dataset.slot).toBe("details");
  });

  it("copies the link and the embed snippet", async () => {
    history.upsert(doneItem({ id: 2, url: "https://cdn.example.com/u/2.mp4", posterUrl: "https://cdn.example.com/u/2.poster.jpg" }));
    byTestId<HTMLButtonElement>("history-copy", row(2)).click();
    await settle();
    byTestId<HTMLButtonElement>("history-embed", row(2)).click();
    await settle();
    expect(commandCalls(calls, "copy_text")).toEqual([
      { text: "https://cdn.example.com/u/2.mp4" },
      { text: '<video controls preload="metadata" poster="https://cdn.example.com/u/2.poster.jpg" src="https://cdn.example.com/u/2.mp4"></video>' },
    ]);
  });
});

describe("the app makes posters", () => {
  afterEach(() => clearMocks());

  it("for an upload that finishes, and shows it when the app says it is set", async () => {
    loadPage();
    const calls = mockBackend({
      connection: () => ({ profile: "local", endpoint: "http://127.0.0.1:7300", cdn: null, problem: null }),
      list_uploads: () => [],
      get_settings: () => settings(),
      watch_status: () => [],
      save_poster: () => "http://127.0.0.1:7300/cdn/u/7.poster.jpg",
    });
    mockConvertFileSrc("linux");
    const capture = vi.fn(async () => new Uint8Array([0xff, 0xd8, 0xff, 0xd9]));
    await start({ readyDelayMs: 0, capturePoster: capture });
    await appEvents.reelupUpload.emit(item({ id: 7, state: "uploading" }));
    await appEvents.reelupUpload.emit(doneItem({ id: 7 }));
    await settle();
    expect(capture.mock.calls).toEqual([["reelup-media://localhost/7"]]);
    expect(commandCalls(calls, "save_poster")).toEqual([{ id: 7, jpeg: [0xff, 0xd8, 0xff, 0xd9] }]);
    const thumb = byTestId<HTMLImageElement>("poster", byTestId("history-row"));
    expect(thumb.hasAttribute("src")).toBe(false);
    // The app's event once the poster is uploaded.
    await appEvents.reelupUpload.emit(doneItem({ id: 7, posterUrl: "http://127.0.0.1:7300/cdn/u/7.poster.jpg" }));
    await settle();
    expect(thumb.getAttribute("src")).toBe("http://127.0.0.1:7300/cdn/u/7.poster.jpg");
    // Items already in history when the app starts are left as they are.
    expect(capture).toHaveBeenCalledTimes(1);
  });
});
