const UNITS = ["B", "KB", "MB", "GB", "TB"];

/**
 * Decimal units, as file managers on every platform show sizes: one decimal below
 * `decimalsBelow` (100 by default), none above.
 */
export function formatBytes(n: number, decimalsBelow = 100): string {
  let value = Math.max(0, n);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  // 999.7 KB would print as "1000 KB": step up instead.
  if (unit > 0 && unit < UNITS.length - 1 && Math.round(value) >= 1000) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= decimalsBelow - 0.05 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** "12 MB/s", "2.5 MB/s"; empty when nothing moves. Coarser than sizes: it changes every tick. */
export function formatSpeed(bytesPerSec: number): string {
  return bytesPerSec > 0 ? `${formatBytes(bytesPerSec, 10)}/s` : "";
}

/** Whole percent, floored so 100% means done. */
export function percent(sent: number, size: number): number {
  if (size <= 0) return sent > 0 ? 100 : 0;
  return Math.max(0, Math.min(100, Math.floor((sent / size) * 100)));
}

/** "45 s", "12 min", "1 h 5 min": coarse on purpose, so it doesn't flicker every tick. */
export function formatEta(secs: number | null): string {
  if (secs === null || !Number.isFinite(secs) || secs < 0) return "";
  if (secs < 60) return `${Math.max(1, Math.round(secs))} s`;
  const mins = Math.round(secs / 60);
  if (mins < 60) return `${mins} min`;
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A unix time in seconds, in the user's locale and time zone. */
export function formatDate(unixSecs: number | null): string {
  if (unixSecs === null) return "";
  return dateFormat.format(new Date(unixSecs * 1000));
}

/** Bytes per second as the MB/s a person types (12_500_000 -> "12.5"); null -> "". */
export function toMegabytesText(bytesPerSec: number | null): string {
  if (bytesPerSec === null) return "";
  return String(Number((bytesPerSec / 1e6).toFixed(3)));
}
