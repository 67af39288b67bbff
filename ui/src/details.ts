import type { VideoDetails } from "./ipc";

/** `m:ss`, or `h:mm:ss` from an hour; to the nearest second. */
function clock(ms: number): string {
  const secs = Math.floor((ms + 500) / 1000);
  const h = Math.floor(secs / 3600);
  const m = Math.floor(secs / 60) % 60;
  const s = String(secs % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** 25, 29.97, 23.976: no trailing zeros. */
function rate(fps: number): string {
  return fps.toFixed(3).replace(/\.?0+$/, "");
}

/**
 * One line for a video's details, the same as `reelup queue` prints
 * (`reelup_core::details_line`): `0:42 · 1920x1080 · 29.97 fps · H.264/AAC`. Empty when
 * the container could not be read.
 */
export function detailsLine(d: VideoDetails | null | undefined): string {
  if (!d) return "";
  const parts: string[] = [];
  if (d.durationMs !== null) parts.push(clock(d.durationMs));
  parts.push(`${d.width}x${d.height}`);
  if (d.frameRate !== null) parts.push(`${rate(d.frameRate)} fps`);
  parts.push(d.audioCodec !== null ? `${d.videoCodec}/${d.audioCodec}` : d.videoCodec);
  return parts.join(" · ");
}

/**
 * Shows the details line under a Queue or History row's top line (name and size), or
 * takes it away when there are none. Writes only when the line changed.
 */
export function showDetails(body: HTMLElement, d: VideoDetails | null | undefined): void {
  const line = detailsLine(d);
  let el = body.querySelector<HTMLElement>(":scope > .row-details");
  if (!line) {
    // A row's own slot (History keeps one in its markup) stays, hidden; one made here goes.
    if (el?.dataset.slot) {
      el.hidden = true;
      el.textContent = "";
    } else {
      el?.remove();
    }
    return;
  }
  if (!el) {
    el = document.createElement("div");
    el.className = "row-details";
    el.dataset.testid = "details";
    body.firstElementChild?.after(el);
  }
  if (el.textContent !== line) el.textContent = line;
  // History's row keeps a hidden slot for the line until there is one.
  el.hidden = false;
}
