import { describe, expect, it } from "vitest";
import { profile } from "../test/support";
import { checkUrl, emptyFormValues, formField, parseRate, toFormValues, toProfileInput, type ProfileFormValues } from "./profile-form";

function values(over: Partial<ProfileFormValues> = {}): ProfileFormValues {
  return { ...emptyFormValues(), name: "studio", endpoint: "https://uploads.example.com", ...over };
}

function fields(v: ProfileFormValues, taken: string[] = []): string[] {
  const r = toProfileInput(v, taken);
  return r.ok ? [] : r.errors.map((e) => e.field);
}

describe("toProfileInput", () => {
  it("builds the contract's ProfileInput: MB/s become bytes/s, empty means null", () => {
    const r = toProfileInput(
      values({
        name: "  studio ",
        endpoint: "https://uploads.example.com/",
        flavour: "companion",
        cdn: " https://d1.cloudfront.net ",
        parts: "8",
        bandwidth: "12.5",
        partSize: "64",
        watch: [{ path: "/home/me/Videos", recursive: true, afterUpload: "move" }],
        faststart: "ask",
      }),
    );
    expect(r).toEqual({
      ok: true,
      input: {
        name: "studio",
        endpoint: "https://uploads.example.com",
        flavour: "companion",
        cdn: "https://d1.cloudfront.net",
        partsInFlight: 8,
        bandwidthLimit: 12_500_000,
        partSizeMib: 64,
        watch: [{ path: "/home/me/Videos", recursive: true, afterUpload: "move" }],
        linkLifetimeSecs: null,
        faststart: "ask",
      },
    });
    // A value that is not a setting falls back to the default.
    const odd = toProfileInput(values({ faststart: "sometimes" }));
    expect(odd.ok && odd.input.faststart).toBe("always");
    const unlimited = toProfileInput(values({ bandwidth: "  ", cdn: "" }));
    expect(unlimited.ok && unlimited.input.bandwidthLimit).toBeNull();
    expect(unlimited.ok && unlimited.input.cdn).toBeNull();
    const comma = toProfileInput(values({ bandwidth: "0,5" }));
    expect(comma.ok && comma.input.bandwidthLimit).toBe(500_000);
  });

  it("checks every field as the app does", () => {
    expect(fields(values({ name: "" }))).toEqual(["name"]);
    expect(fields(values({ name: "my profile" }))).toEqual(["name"]);
    expect(fields(values({ name: "studio" }), ["studio"])).toEqual(["name"]);
    expect(fields(values({ endpoint: "" }))).toEqual(["endpoint"]);
    expect(fields(values({ endpoint: "uploads.example.com" }))).toEqual(["endpoint"]);
    expect(fields(values({ endpoint: "http://uploads.example.com" }))).toEqual(["endpoint"]);
    expect(fields(values({ endpoint: "http://127.0.0.1:7300" }))).toEqual([]);
    expect(fields(values({ endpoint: "http://localhost:7300" }))).toEqual([]);
    expect(fields(values({ endpoint: "http://[::1]:7300" }))).toEqual([]);
    expect(fields(values({ cdn: "ftp://cdn" }))).toEqual(["cdn"]);
    expect(fields(values({ flavour: "s3" }))).toEqual(["flavour"]);
    for (const parts of ["0", "33", "2.5", "", "four"]) expect(fields(values({ parts })), parts).toEqual(["parts"]);
    for (const parts of ["1", "32"]) expect(fields(values({ parts })), parts).toEqual([]);
    for (const bandwidth of ["0", "-1", "abc", "0.0000001"]) expect(fields(values({ bandwidth })), bandwidth).toEqual(["bandwidth"]);
    for (const partSize of ["4", "5121", "", "8.5"]) expect(fields(values({ partSize })), partSize).toEqual(["partSize"]);
    for (const partSize of ["5", "5120"]) expect(fields(values({ partSize })), partSize).toEqual([]);
    expect(fields(values({ watch: [{ path: "Videos", recursive: false, afterUpload: "leave" }] }))).toEqual(["watch"]);
    expect(
      fields(values({ watch: [{ path: "/v", recursive: false, afterUpload: "leave" }, { path: "/v", recursive: true, afterUpload: "move" }] })),
    ).toEqual(["watch"]);
    expect(fields(values({ name: "", endpoint: "", parts: "0" }))).toEqual(["name", "endpoint", "parts"]);
  });

  it("fills the form from a stored profile and round-trips", () => {
    const p = profile({ bandwidthLimit: 12_500_000, cdn: null, partsInFlight: 6, partSizeMib: 32, faststart: "off" });
    const v = toFormValues(p);
    expect(v).toMatchObject({ name: "studio", bandwidth: "12.5", cdn: "", parts: "6", partSize: "32" });
    const r = toProfileInput(v);
    expect(r.ok && r.input).toEqual({
      name: p.name,
      endpoint: p.endpoint,
      flavour: p.flavour,
      cdn: null,
      partsInFlight: 6,
      bandwidthLimit: 12_500_000,
      partSizeMib: 32,
      watch: [],
      linkLifetimeSecs: null,
      faststart: "off",
    });
    expect(toFormValues(null)).toEqual(emptyFormValues());
    // A setting the form does not show survives a save.
    const signed = toProfileInput(toFormValues(profile({ linkLifetimeSecs: 604_800 })));
    expect(signed.ok && signed.input.linkLifetimeSecs).toBe(604_800);
  });

  it("marks the form field of the setting the app refused", () => {
    expect(formField("endpoint")).toBe("endpoint");
    expect(formField("partSizeMib")).toBe("partSize");
    expect(formField("partsInFlight")).toBe("parts");
    expect(formField("bandwidthLimit")).toBe("bandwidth");
    expect(formField("name")).toBe("name");
    expect(checkUrl("https://a.example", "CDN")).toBeNull();
  });
});

describe("parseRate", () => {
  it("takes MB/s bare, the CLI's units, and bits", () => {
    const table: [string, number | null][] = [
      ["5", 5_000_000],
      ["2.5", 2_500_000],
      ["0,5", 500_000],
      // As `reelup profile set --limit-rate` takes them (crates/reelup-cli parse_rate's cases).
      ["5MB", 5_000_000],
      ["4MiB", 4 * 1024 * 1024],
      ["1.5 mib/s", 1_572_864],
      ["800kB", 800_000],
      ["2GiB", 2 * 1024 ** 3],
      ["5 MB/s", 5_000_000],
      // Bits, as links are sold.
      ["40Mbit", 5_000_000],
      ["40 Mbps", 5_000_000],
      ["40mbps", 5_000_000],
      ["8 kbit/s", 1000],
      // Not rates.
      ["0", null],
      ["0MB", null],
      ["5 parsecs", null],
      ["fast", null],
      ["-5", null],
      ["5 MB MB", null],
    ];
    for (const [text, bytes] of table) expect(parseRate(text), text).toBe(bytes);
  });
});
