const UNITS = ["B", "KB", "MB", "GB", "TB"];

/** Decimal units, as file managers on every platform show sizes. */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function percent(sent: number, size: number): number {
  if (size <= 0) return sent > 0 ? 100 : 0;
  return Math.min(100, Math.floor((sent / size) * 100));
}
