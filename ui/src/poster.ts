// Poster frames: drawn in the webview with its own media stack (no codec library), from the
// item's local file served by the app's `reelup-media:` scheme (one queue item by id, and
// nothing else), scaled to at most 640 px wide, and handed to Rust as JPEG bytes. A file
// the webview cannot decode simply gets no poster; the app logs why.
//
// WebKitGTK's player cannot read a custom scheme itself (WebKit bug 146351), so the file is
// fetched by ranges into a blob, which it plays as its own: hence a size cap.
import { convertFileSrc } from "@tauri-apps/api/core";
import type { Commands, UploadItem } from "./ipc";

export const POSTER_MAX_WIDTH = 640;
export const POSTER_QUALITY = 0.8;
/** What the app accepts (reelup-core's MAX_POSTER_SIZE). */
export const MAX_POSTER_BYTES = 2 * 1024 * 1024;
/** Larger videos are not read into the webview for a poster (the CLI's ffmpeg has no cap). */
export const MAX_DRAWN_VIDEO_BYTES = 512 * 1024 * 1024;
/** A video that has not shown a frame by then is not going to. */
const CAPTURE_TIMEOUT_MS = 20_000;

/** The canvas size for a frame of `width` x `height`: at most 640 wide, aspect kept. */
export function posterSize(width: number, height: number): { width: number; height: number } | null {
  if (!(width > 0 && height > 0) || !Number.isFinite(width) || !Number.isFinite(height)) return null;
  const scale = Math.min(1, POSTER_MAX_WIDTH / width);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Where to take the frame, in seconds, in order of preference: min(1 s, 10% of the
 * duration) (past a fade-in, inside a short clip), then a quarter in, for when that
 * first one is black.
 */
export function posterTimes(duration: number): number[] {
  if (!Number.isFinite(duration) || duration <= 0) return [0];
  const first = Math.min(1, duration * 0.1);
  const later = duration * 0.25;
  return later > first + 0.05 ? [first, later] : [first];
}

/** Whether a frame's pixels (RGBA) are all but black: a fade-in, a title card's start. */
export function isMostlyBlack(rgba: ArrayLike<number>): boolean {
  let bright = 0;
  let samples = 0;
  // Every 7th pixel is plenty for a judgement, and cheap on a 640 px frame.
  for (let i = 0; i + 2 < rgba.length; i += 4 * 7) {
    samples += 1;
    if (rgba[i] > 24 || rgba[i + 1] > 24 || rgba[i + 2] > 24) bright += 1;
  }
  return samples > 0 && bright / samples < 0.02;
}

/** Where the webview reads item `id`'s file: the app's own scheme, never a path. */
export function mediaUrl(id: number): string {
  return convertFileSrc(String(id), "reelup-media");
}

/** Text made safe inside a double- or single-quoted HTML attribute value. */
export function escapeAttr(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The HTML to embed an upload: a `<video>` that fetches only its index until played. */
export function embedSnippet(item: Pick<UploadItem, "url" | "posterUrl">): string {
  const poster = item.posterUrl ? ` poster="${escapeAttr(item.posterUrl)}"` : "";
  return `<video controls preload="metadata"${poster} src="${escapeAttr(item.url ?? "")}"></video>`;
}

function once(target: HTMLVideoElement, event: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      target.removeEventListener(event, ok);
      target.removeEventListener("error", failed);
      fn();
    };
    const ok = () => done(resolve);
    const failed = () => {
      const e = target.error;
      done(() => reject(new Error(e ? `media error ${e.code}${e.message ? `: ${e.message}` : ""}` : "media error")));
    };
    const timer = setTimeout(() => done(() => reject(new Error(`no ${event} in ${timeoutMs / 1000} s`))), timeoutMs);
    target.addEventListener(event, ok);
    target.addEventListener("error", failed);
  });
}

/** The first byte and the total size in a `Content-Range: bytes a-b/total` header. */
export function contentRange(header: string | null): { start: number; total: number } | null {
  const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(header ?? "");
  return m ? { start: Number(m[1]), total: Number(m[2]) } : null;
}

/**
 * The whole file behind `src`, fetched range by range (the scheme answers in chunks), as a
 * blob of one buffer. WebKitGTK's player failed on a blob made of several parts (seen
 * here: `new Blob(chunks)` of a 10 MB MP4 answered media error 4, or never loaded its
 * metadata, where one buffer of the same bytes loaded), so each chunk is copied into one
 * buffer the size of the file, allocated once its size is known.
 */
export async function fetchVideo(src: string, fetcher: typeof fetch = fetch, maxBytes = MAX_DRAWN_VIDEO_BYTES): Promise<Blob> {
  let whole: Uint8Array<ArrayBuffer> | null = null;
  let type = "";
  let start = 0;
  let total = Infinity;
  while (start < total) {
    const resp = await fetcher(src, { headers: { Range: `bytes=${start}-` }, cache: "no-store" });
    if (resp.status === 200) return resp.blob();
    if (resp.status !== 206) {
      // The app says why in plain text (a file replaced since it was queued, say): that
      // reason is what noPoster logs.
      const why = (await resp.text().catch(() => "")).trim().slice(0, 300);
      throw new Error(`the app answered ${resp.status} for the video${why ? `: ${why}` : ""}`);
    }
    const range = contentRange(resp.headers.get("content-range"));
    if (range === null) throw new Error("the app's answer has no Content-Range");
    if (range.total > maxBytes) throw new Error(`the video is ${range.total} bytes, too large to draw a poster from here`);
    if (whole === null) {
      total = range.total;
      whole = new Uint8Array(total);
    } else if (range.total !== total) {
      throw new Error(`the video changed size while it was read (${total} bytes, then ${range.total})`);
    }
    if (range.start !== start) throw new Error(`the app answered bytes from ${range.start} when asked from ${start}`);
    type ||= resp.headers.get("content-type") ?? "";
    const chunk = new Uint8Array(await resp.arrayBuffer());
    if (chunk.byteLength === 0) throw new Error("the app sent an empty part of the video");
    if (chunk.byteLength > total - start) throw new Error("the app sent more of the video than it has");
    whole.set(chunk, start);
    start += chunk.byteLength;
  }
  return new Blob([whole ?? new Uint8Array(0)], { type });
}

/** Draws one representative frame of the video at `src` as JPEG bytes. */
export async function capturePoster(src: string, timeoutMs = CAPTURE_TIMEOUT_MS): Promise<Uint8Array> {
  const blobUrl = URL.createObjectURL(await fetchVideo(src));
  const video = document.createElement("video");
  video.muted = true;
  // Not "auto": WebKitGTK's player, told to buffer a blob of more than a few MB ahead,
  // fails the seek that follows with media error 3 ("Failed to send data for decoding");
  // with "metadata" it reads what the seek needs, and the same videos draw (found here,
  // H.264 and HEVC, index first and last; tests/app/test_poster.py).
  video.preload = "metadata";
  const canvas = document.createElement("canvas");
  try {
    const metadata = once(video, "loadedmetadata", timeoutMs);
    // A blob of this page's own: the canvas it is drawn on stays readable.
    video.src = blobUrl;
    await metadata;
    const size = posterSize(video.videoWidth, video.videoHeight);
    if (!size) throw new Error("the file has no picture the webview can show");
    canvas.width = size.width;
    canvas.height = size.height;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("no 2D canvas");
    const times = posterTimes(video.duration);
    for (const [i, t] of times.entries()) {
      const seeked = once(video, "seeked", timeoutMs);
      video.currentTime = t;
      await seeked;
      ctx.drawImage(video, 0, 0, size.width, size.height);
      const last = i === times.length - 1;
      if (last || !isMostlyBlack(ctx.getImageData(0, 0, size.width, size.height).data)) break;
    }
    const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/jpeg", POSTER_QUALITY));
    if (!blob) throw new Error("the frame could not be encoded as JPEG");
    return new Uint8Array(await blob.arrayBuffer());
  } finally {
    // Lets the media stack drop its decoder and the file at once.
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(blobUrl);
  }
}

export type PosterCommands = Pick<Commands, "savePoster" | "noPoster">;

/**
 * Makes posters one at a time (each decodes a video) for items that finished while the
 * app runs, each at most once per run; the app's `reelup://upload` event then brings the
 * poster's URL to History.
 */
export class PosterMaker {
  private tried = new Set<number>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private commands: PosterCommands,
    private capture: (src: string) => Promise<Uint8Array> = capturePoster,
  ) {}

  request(item: Pick<UploadItem, "id" | "posterUrl">): Promise<void> {
    if (item.posterUrl !== null || this.tried.has(item.id)) return this.chain;
    this.tried.add(item.id);
    this.chain = this.chain.then(() => this.make(item.id));
    return this.chain;
  }

  private async make(id: number): Promise<void> {
    const explain = (why: unknown) =>
      this.commands.noPoster(id, why instanceof Error ? why.message : String(why)).catch(() => {});
    let jpeg: Uint8Array;
    try {
      jpeg = await this.capture(mediaUrl(id));
    } catch (e) {
      await explain(e);
      return;
    }
    if (jpeg.length > MAX_POSTER_BYTES) {
      await explain(`the frame is ${jpeg.length} bytes, more than a poster may be`);
      return;
    }
    try {
      await this.commands.savePoster(id, Array.from(jpeg));
    } catch (e) {
      await explain(e && typeof e === "object" && "message" in e ? String(e.message) : e);
    }
  }
}
