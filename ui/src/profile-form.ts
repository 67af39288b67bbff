// The profile form's values and their conversion to the contract's ProfileInput. The
// checks mirror reelup-core's Profile::validate, so most mistakes are caught while typing;
// the app checks again on save and its message is shown the same way.
import { toMegabytesText } from "./format";
import type {
  FaststartSetting,
  Flavour,
  ProfileField as SettingField,
  ProfileInput,
  ProfileView,
  WatchFolder,
} from "./ipc";

export interface ProfileFormValues {
  name: string;
  endpoint: string;
  flavour: string;
  cdn: string;
  /** Parts in flight, 1 to 32. */
  parts: string;
  /** MB/s (decimal megabytes); empty is unlimited. */
  bandwidth: string;
  /** MiB, 5 to 5120. */
  partSize: string;
  watch: WatchFolder[];
  /** Not shown in the form; carried so a save keeps it (`reelup profile set --link-lifetime`). */
  linkLifetimeSecs: number | null;
  /** always, ask or off. */
  faststart: string;
}

export type ProfileField = "name" | "endpoint" | "flavour" | "cdn" | "parts" | "bandwidth" | "partSize" | "watch";

export interface FieldError {
  field: ProfileField;
  message: string;
}

export type Conversion = { ok: true; input: ProfileInput } | { ok: false; errors: FieldError[] };

export const DEFAULT_PARTS_IN_FLIGHT = 4;
export const DEFAULT_PART_SIZE_MIB = 16;
const FLAVOURS: readonly Flavour[] = ["reelup-server", "companion"];
const FASTSTART: readonly FaststartSetting[] = ["always", "ask", "off"];

export function emptyFormValues(): ProfileFormValues {
  return {
    name: "",
    endpoint: "",
    flavour: "reelup-server",
    cdn: "",
    parts: String(DEFAULT_PARTS_IN_FLIGHT),
    bandwidth: "",
    partSize: String(DEFAULT_PART_SIZE_MIB),
    watch: [],
    linkLifetimeSecs: null,
    faststart: "always",
  };
}

export function toFormValues(profile: ProfileView | null): ProfileFormValues {
  if (!profile) return emptyFormValues();
  return {
    name: profile.name,
    endpoint: profile.endpoint,
    flavour: profile.flavour,
    cdn: profile.cdn ?? "",
    parts: String(profile.partsInFlight),
    bandwidth: toMegabytesText(profile.bandwidthLimit),
    partSize: String(profile.partSizeMib),
    watch: profile.watch.map((w) => ({ ...w })),
    linkLifetimeSecs: profile.linkLifetimeSecs ?? null,
    faststart: profile.faststart ?? "always",
  };
}

export function checkName(name: string): string | null {
  if (/^[A-Za-z0-9._-]{1,64}$/.test(name)) return null;
  if (name === "") return "Give the profile a name.";
  return "Use 1 to 64 letters, digits, '-', '_' or '.' for the name.";
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** https anywhere, http only on this machine (tokens and links travel over it). */
export function checkUrl(value: string, what: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${what} is not a URL; write e.g. https://uploads.example.com`;
  }
  if (url.protocol === "https:") return null;
  if (url.protocol === "http:") {
    return isLoopback(url.hostname)
      ? null
      : `${what} uses plain http; use https:// (http is only allowed for localhost, 127.0.0.1, ::1)`;
  }
  return `${what} must be an https:// URL`;
}

export function isAbsolutePath(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

function wholeNumber(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}

/**
 * Checks the form and builds the ProfileInput: trims text, turns an empty CDN into null,
 * MB/s into bytes per second (value × 1,000,000; empty is unlimited, null).
 * `takenNames` are the other profiles' names (not the one being edited).
 */
export function toProfileInput(values: ProfileFormValues, takenNames: readonly string[] = []): Conversion {
  const errors: FieldError[] = [];
  const name = values.name.trim();
  const nameProblem = checkName(name);
  if (nameProblem) errors.push({ field: "name", message: nameProblem });
  else if (takenNames.includes(name)) errors.push({ field: "name", message: `There is already a profile named “${name}”.` });

  const endpoint = values.endpoint.trim().replace(/\/+$/, "");
  if (endpoint === "") errors.push({ field: "endpoint", message: "Give the upload endpoint's URL." });
  else {
    const problem = checkUrl(endpoint, "The endpoint");
    if (problem) errors.push({ field: "endpoint", message: problem });
  }

  const flavour = values.flavour as Flavour;
  if (!FLAVOURS.includes(flavour)) errors.push({ field: "flavour", message: "Choose what the endpoint runs." });

  const cdnText = values.cdn.trim();
  const cdn = cdnText === "" ? null : cdnText;
  if (cdn !== null) {
    const problem = checkUrl(cdn, "The CDN");
    if (problem) errors.push({ field: "cdn", message: problem });
  }

  const parts = wholeNumber(values.parts);
  if (parts === null || parts < 1 || parts > 32) {
    errors.push({ field: "parts", message: "Parts in flight: use a whole number from 1 to 32." });
  }

  let bandwidthLimit: number | null = null;
  if (values.bandwidth.trim() !== "") {
    const bytes = parseRate(values.bandwidth);
    if (bytes === null) {
      errors.push({
        field: "bandwidth",
        message: "Bandwidth limit: give a rate above 0, such as 5 (MB/s), 5MB, 40Mbit or 4MiB, or leave it empty for no limit.",
      });
    } else {
      bandwidthLimit = bytes;
    }
  }

  const partSize = wholeNumber(values.partSize);
  if (partSize === null || partSize < 5 || partSize > 5120) {
    errors.push({ field: "partSize", message: "Part size: S3 takes parts from 5 to 5120 MiB." });
  }

  const seen = new Set<string>();
  for (const w of values.watch) {
    if (!isAbsolutePath(w.path)) {
      errors.push({ field: "watch", message: `Watch folder “${w.path}” is not a full path.` });
    } else if (seen.has(w.path)) {
      errors.push({ field: "watch", message: `Watch folder “${w.path}” is listed twice.` });
    }
    seen.add(w.path);
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    input: {
      name,
      endpoint,
      flavour,
      cdn,
      partsInFlight: parts!,
      bandwidthLimit,
      partSizeMib: partSize!,
      // Every field, the ones the form does not show too (extensions, stableSecs).
      watch: values.watch.map((w) => ({ ...w })),
      linkLifetimeSecs: values.linkLifetimeSecs,
      faststart: FASTSTART.includes(values.faststart as FaststartSetting)
        ? (values.faststart as FaststartSetting)
        : "always",
    },
  };
}

/** The form field showing a profile setting the app refused (`IpcError.field`). */
export function formField(field: SettingField): ProfileField {
  switch (field) {
    case "name":
    case "endpoint":
    case "flavour":
    case "cdn":
    case "watch":
      return field;
    case "partsInFlight":
      return "parts";
    case "partSizeMib":
      return "partSize";
    case "bandwidthLimit":
      return "bandwidth";
    case "linkLifetime":
      // Not in the form (set with `reelup profile set --link-lifetime`); the message says
      // which setting it is, shown at the top of the form.
      return "name";
  }
}

/**
 * A bandwidth limit as a creator types it, in bytes per second; null when it is not one
 * (or is 0). A bare number is MB/s (the field's unit); otherwise what the CLI's
 * `--limit-rate` takes, and bits too: `5MB`, `5 MB/s`, `4MiB`, `800kB`, `40Mbit`, `40 Mbps`,
 * (bits only when said: `bit`, `bps`). Decimal prefixes are powers of 1000, `Ki`/`Mi`/`Gi` of 1024.
 */
export function parseRate(text: string): number | null {
  const m = /^(\d+(?:[.,]\d*)?|[.,]\d+)\s*(?:([kKmMgG])(i?))?\s*(B|bytes?|b|bits?)?\s*(?:\/\s*s|ps)?$/.exec(text.trim());
  if (!m) return null;
  const [, number, prefix, binary, unit] = m;
  const value = Number(number.replace(",", "."));
  if (!prefix && !unit) {
    // The field's own unit.
    const bytes = Math.round(value * 1e6);
    return bytes > 0 ? bytes : null;
  }
  const power = { k: 1, m: 2, g: 3 }[(prefix ?? "").toLowerCase() as "k" | "m" | "g"] ?? 0;
  const scale = (binary ? 1024 : 1000) ** power;
  // Bits only when said (`bit`, `bps`): a lone B or b is bytes, whatever its case, as the
  // CLI reads it.
  const bits = unit?.toLowerCase().startsWith("bit") === true || /bps$/i.test(text.trim());
  const bytes = Math.round((value * scale) / (bits ? 8 : 1));
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}
