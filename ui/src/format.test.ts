import { describe, expect, it } from "vitest";
import { formatBytes, formatDate, formatEta, formatSpeed, percent, toMegabytesText } from "./format";

describe("format", () => {
  it("uses decimal units like file managers", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(3_145_728)).toBe("3.1 MB");
    expect(formatBytes(41_943_040)).toBe("41.9 MB");
    expect(formatBytes(150_000_000_000)).toBe("150 GB");
    expect(formatBytes(999_700)).toBe("1.0 MB");
    expect(formatBytes(99_960)).toBe("100 KB");
  });

  it("shows speed coarser than sizes, and nothing when idle", () => {
    expect(formatSpeed(12_345_678)).toBe("12 MB/s");
    expect(formatSpeed(2_500_000)).toBe("2.5 MB/s");
    expect(formatSpeed(0)).toBe("");
  });

  it("clamps percentages and handles empty files", () => {
    expect(percent(5, 10)).toBe(50);
    expect(percent(11, 10)).toBe(100);
    expect(percent(0, 0)).toBe(0);
    expect(percent(999, 1000)).toBe(99);
  });

  it("rounds the time left to what a person reads", () => {
    expect(formatEta(null)).toBe("");
    expect(formatEta(0.2)).toBe("1 s");
    expect(formatEta(45)).toBe("45 s");
    expect(formatEta(125)).toBe("2 min");
    expect(formatEta(3600)).toBe("1 h");
    expect(formatEta(3900)).toBe("1 h 5 min");
  });

  it("formats unix seconds as a local date", () => {
    const when = 1_700_000_000;
    expect(formatDate(when)).toBe(
      new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(when * 1000)),
    );
    expect(formatDate(null)).toBe("");
  });

  it("turns bytes per second back into the MB/s a person typed", () => {
    expect(toMegabytesText(12_500_000)).toBe("12.5");
    expect(toMegabytesText(1_000_000)).toBe("1");
    expect(toMegabytesText(null)).toBe("");
  });
});
