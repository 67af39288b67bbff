/** Runs a callback before the next paint (requestAnimationFrame), or soon where there is none. */
export type Schedule = (callback: () => void) => void;

export const nextFrame: Schedule = (callback) => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => callback());
  else setTimeout(callback, 16);
};

/**
 * Coalesces work into one pass per frame: `request()` any number of times between frames and
 * `run` is called once. `flush()` runs pending work now (tests, or before a read).
 */
export class FramePass {
  private pending = false;
  frames = 0;

  constructor(
    private run: () => void,
    private schedule: Schedule = nextFrame,
  ) {}

  request(): void {
    if (this.pending) return;
    this.pending = true;
    this.schedule(() => this.flush());
  }

  flush(): void {
    if (!this.pending) return;
    this.pending = false;
    this.frames += 1;
    this.run();
  }
}
