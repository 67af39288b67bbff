export type ViewName = "queue" | "history" | "settings";

export const VIEWS: readonly ViewName[] = ["queue", "history", "settings"];

/**
 * The three views behind a WAI-ARIA tab list: one tab in the Tab order (roving tabindex),
 * arrow keys / Home / End move between tabs, Ctrl+1..3 (Cmd on macOS) jump from anywhere.
 */
export class Tabs {
  private current: ViewName = "queue";
  private listeners: ((view: ViewName) => void)[] = [];

  constructor(private root: ParentNode = document) {
    for (const view of VIEWS) {
      this.tab(view).addEventListener("click", () => this.show(view));
    }
    const list = this.tab("queue").closest<HTMLElement>("[role=tablist]");
    list?.addEventListener("keydown", (e) => this.onKey(e));
    // On body (not document), so a page rebuilt in tests drops its old listener with it.
    document.body.addEventListener("keydown", (e) => {
      if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
      const index = ["1", "2", "3"].indexOf(e.key);
      if (index >= 0) {
        e.preventDefault();
        this.show(VIEWS[index]);
      }
    });
    this.show("queue");
  }

  get active(): ViewName {
    return this.current;
  }

  onChange(listener: (view: ViewName) => void): void {
    this.listeners.push(listener);
  }

  tab(view: ViewName): HTMLElement {
    const el = this.root.querySelector<HTMLElement>(`[data-testid="tab-${view}"]`);
    if (!el) throw new Error(`missing tab-${view}`);
    return el;
  }

  view(view: ViewName): HTMLElement {
    const el = this.root.querySelector<HTMLElement>(`[data-testid="view-${view}"]`);
    if (!el) throw new Error(`missing view-${view}`);
    return el;
  }

  show(view: ViewName, focusTab = false): void {
    const changed = view !== this.current;
    this.current = view;
    for (const v of VIEWS) {
      const selected = v === view;
      const tab = this.tab(v);
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      tab.classList.toggle("active", selected);
      this.view(v).hidden = !selected;
    }
    if (focusTab) this.tab(view).focus();
    if (changed) for (const listener of this.listeners) listener(view);
  }

  private onKey(e: KeyboardEvent): void {
    const i = VIEWS.indexOf(this.current);
    let next: number | null = null;
    if (e.key === "ArrowRight") next = (i + 1) % VIEWS.length;
    else if (e.key === "ArrowLeft") next = (i - 1 + VIEWS.length) % VIEWS.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = VIEWS.length - 1;
    if (next === null) return;
    e.preventDefault();
    this.show(VIEWS[next], true);
  }
}
