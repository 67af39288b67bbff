import { byTestId } from "./dom";

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select, video[controls], [tabindex]:not([tabindex='-1'])";

/**
 * The in-app player: a modal with a <video> on the streaming URL. Closing stops playback and
 * drops the source, so nothing keeps downloading in the background.
 */
export class Preview {
  private video: HTMLVideoElement;
  private title: HTMLElement;
  private closeBtn: HTMLButtonElement;
  private openBtn: HTMLButtonElement;
  private failure: HTMLElement;
  private returnFocus: HTMLElement | null = null;
  private url: string | null = null;

  constructor(
    private root: HTMLElement,
    private openExternal: (url: string) => void,
  ) {
    this.video = byTestId<HTMLVideoElement>(root, "preview-video");
    this.title = byTestId(root, "preview-title");
    this.closeBtn = byTestId<HTMLButtonElement>(root, "preview-close");
    this.openBtn = byTestId<HTMLButtonElement>(root, "preview-open");
    this.failure = byTestId(root, "preview-error");

    this.closeBtn.addEventListener("click", () => this.close());
    this.openBtn.addEventListener("click", () => {
      if (this.url) this.openExternal(this.url);
    });
    // A click on the dimmed backdrop (not the card) closes, as in native sheets.
    root.addEventListener("click", (e) => {
      if (e.target === root) this.close();
    });
    root.addEventListener("keydown", (e) => this.onKey(e));
    this.video.addEventListener("error", () => {
      if (this.url) this.failure.hidden = false;
    });
  }

  get isOpen(): boolean {
    return !this.root.hidden;
  }

  open(url: string, name: string): void {
    this.returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    this.url = url;
    this.title.textContent = name;
    this.failure.hidden = true;
    this.video.src = url;
    this.root.hidden = false;
    document.body.classList.add("modal-open");
    this.closeBtn.focus();
  }

  close(): void {
    if (!this.isOpen) return;
    this.url = null;
    try {
      this.video.pause();
    } catch {
      // Not every engine (jsdom) implements media playback.
    }
    this.video.removeAttribute("src");
    try {
      this.video.load();
    } catch {
      // As above.
    }
    this.root.hidden = true;
    document.body.classList.remove("modal-open");
    this.returnFocus?.focus();
    this.returnFocus = null;
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key === "Escape") {
      e.preventDefault();
      this.close();
      return;
    }
    if (e.key !== "Tab") return;
    // Keep focus inside the dialog.
    const items = [...this.root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => !el.closest("[hidden]"));
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  }
}
