import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { notify } from "./notices";

describe("notify", () => {
  let box: HTMLElement;
  beforeEach(() => {
    vi.useFakeTimers();
    document.body.innerHTML = '<div id="notices"></div>';
    box = document.getElementById("notices")!;
  });
  afterEach(() => vi.useRealTimers());

  const shown = () => [...box.querySelectorAll(".notice-text")].map((n) => n.textContent);

  it("goes away by itself, later while the pointer is on it", () => {
    const el = notify("a.txt: not a video")!;
    expect(el.dataset.testid).toBe("notice");
    expect(el.getAttribute("role")).toBeNull();
    vi.advanceTimersByTime(5_000);
    el.dispatchEvent(new Event("mouseenter"));
    vi.advanceTimersByTime(20_000);
    expect(shown()).toEqual(["a.txt: not a video"]);
    el.dispatchEvent(new Event("mouseleave"));
    vi.advanceTimersByTime(6_001);
    expect(shown()).toEqual([]);
  });

  it("marks errors for assistive tech and keeps them up longer", () => {
    const el = notify("Cannot reach the endpoint.", { kind: "error" })!;
    expect(el.getAttribute("role")).toBe("alert");
    expect(el.classList.contains("notice-error")).toBe(true);
    vi.advanceTimersByTime(7_000);
    expect(shown()).toEqual(["Cannot reach the endpoint."]);
    vi.advanceTimersByTime(3_001);
    expect(shown()).toEqual([]);
  });

  it("counts repeats instead of stacking them, and keeps at most four", () => {
    for (let i = 0; i < 3; i++) notify("same");
    expect(shown()).toEqual(["same"]);
    expect(box.querySelector(".notice-count")!.textContent).toBe("×3");
    for (const m of ["b", "c", "d", "e"]) notify(m);
    expect(shown()).toEqual(["b", "c", "d", "e"]);
  });

  it("runs its action and closes", () => {
    const run = vi.fn();
    notify("Ready.", { action: { label: "Show", run }, testid: "notice-ready" });
    (box.querySelector("[data-testid=notice-action]") as HTMLButtonElement).click();
    expect(run).toHaveBeenCalledTimes(1);
    expect(shown()).toEqual([]);
  });
});
