import { h, icon } from "./dom";

export type NoticeKind = "info" | "error";

export interface NotifyOptions {
  kind?: NoticeKind;
  /** Where toasts go; #notices by default. */
  container?: HTMLElement;
  /** Milliseconds on screen (paused while the pointer or focus is on it). */
  timeout?: number;
  /** A button on the toast (e.g. "Show"); clicking it runs `run` and dismisses the toast. */
  action?: { label: string; run: () => void };
  /** data-testid of the toast; "notice" by default. */
  testid?: string;
}

export type Notify = (message: string, opts?: NotifyOptions) => HTMLElement | null;

const MAX_VISIBLE = 4;

interface Toast {
  el: HTMLElement;
  count: number;
  countEl: HTMLElement;
  timer: ReturnType<typeof setTimeout> | null;
  timeout: number;
}

const toasts = new WeakMap<HTMLElement, Toast>();

/**
 * Shows a message for a while without blocking anything. The same message again bumps a
 * counter on the toast that is already up instead of stacking copies (a folder of 200
 * non-videos is one toast, not 200).
 */
export const notify: Notify = (message, opts = {}) => {
  const container = opts.container ?? document.getElementById("notices");
  if (!container) return null;
  const kind = opts.kind ?? "info";
  const timeout = opts.timeout ?? (kind === "error" ? 10_000 : 6_000);
  const testid = opts.testid ?? "notice";

  for (const el of container.querySelectorAll<HTMLElement>(`[data-testid="${testid}"]`)) {
    const toast = toasts.get(el);
    if (toast && el.dataset.message === message && el.dataset.kind === kind) {
      toast.count += 1;
      toast.countEl.textContent = `×${toast.count}`;
      toast.countEl.hidden = false;
      arm(toast);
      return el;
    }
  }

  const countEl = h("span", { class: "notice-count", hidden: true });
  const close = h("button", {
    type: "button",
    class: "notice-close",
    testid: "notice-close",
    "aria-label": "Dismiss",
    title: "Dismiss",
  });
  close.append(icon("close"));
  let actionBtn: HTMLButtonElement | null = null;
  if (opts.action) {
    const { label, run } = opts.action;
    actionBtn = h("button", { type: "button", class: "notice-action", testid: "notice-action" }, label);
    actionBtn.addEventListener("click", () => {
      run();
      dismiss(el);
    });
  }
  const el = h(
    "div",
    { class: `notice notice-${kind}`, testid, role: kind === "error" ? "alert" : undefined },
    h("span", { class: "notice-text" }, message),
    countEl,
    actionBtn,
    close,
  );
  el.dataset.message = message;
  el.dataset.kind = kind;
  const toast: Toast = { el, count: 1, countEl, timer: null, timeout };
  toasts.set(el, toast);

  close.addEventListener("click", () => dismiss(el));
  el.addEventListener("mouseenter", () => disarm(toast));
  el.addEventListener("mouseleave", () => arm(toast));
  el.addEventListener("focusin", () => disarm(toast));
  el.addEventListener("focusout", () => arm(toast));

  container.append(el);
  const all = container.querySelectorAll<HTMLElement>(".notice");
  for (let i = 0; i < all.length - MAX_VISIBLE; i++) dismiss(all[i]);
  arm(toast);
  return el;
};

function arm(toast: Toast): void {
  disarm(toast);
  toast.timer = setTimeout(() => dismiss(toast.el), toast.timeout);
}

function disarm(toast: Toast): void {
  if (toast.timer !== null) clearTimeout(toast.timer);
  toast.timer = null;
}

export function dismiss(el: HTMLElement): void {
  const toast = toasts.get(el);
  if (toast) disarm(toast);
  el.remove();
}
