import { afterEach, describe, expect, it } from "vitest";
import { clearMocks } from "@tauri-apps/api/mocks";
import { commandCalls, doneItem, mockBackend } from "../test/support";
import { commands } from "./ipc";
import { copiedMessage, copyLink, freshLink } from "./links";
import { embedSnippet } from "./poster";

describe("copyLink", () => {
  afterEach(() => clearMocks());

  it("copies a freshly signed link and says when it expires", async () => {
    const calls = mockBackend({
      sign_link: () => ({ url: "https://cdn.example.com/k.mp4?Expires=1900000000&Signature=s&Key-Pair-Id=K", expiresAt: 1_900_000_000 }),
    });
    const link = await copyLink(doneItem({ id: 7, url: "https://cdn.example.com/k.mp4" }), commands);
    expect(commandCalls(calls, "sign_link")).toEqual([{ id: 7 }]);
    expect(commandCalls(calls, "copy_text")).toEqual([{ text: link.url }]);
    expect(link.expiresAt).toBe(1_900_000_000);
    expect(copiedMessage(link)).toMatch(/^Link copied\. It works until .+\.$/);
    expect(copiedMessage(link, "embed")).toMatch(/^Embed code copied\. Its link works until .+\.$/);
  });

  it("copies the stored link where the endpoint cannot sign, and passes other failures on", async () => {
    let calls = mockBackend({
      sign_link: () => Promise.reject({ code: "links_unavailable", message: "cannot sign links" }),
    });
    const plain = await copyLink(doneItem({ id: 3, url: "https://cdn.example.com/k.mp4" }), commands);
    expect(plain).toEqual({ url: "https://cdn.example.com/k.mp4", expiresAt: null, posterUrl: null });
    expect(commandCalls(calls, "copy_text")).toEqual([{ text: "https://cdn.example.com/k.mp4" }]);
    expect(copiedMessage(plain)).toBeNull();
    clearMocks();
    calls = mockBackend({
      sign_link: () => Promise.reject({ code: "unauthorized", message: "the token was refused" }),
    });
    await expect(copyLink(doneItem({ id: 3 }), commands)).rejects.toMatchObject({ code: "unauthorized" });
    expect(commandCalls(calls, "copy_text")).toEqual([]);
  });

  it("signs the poster with the video, so an embed works where the CDN requires signed links", async () => {
    mockBackend({
      sign_link: () => ({
        url: "https://cdn.example.com/u/k.mp4?Expires=1900000000&Signature=s&Key-Pair-Id=K",
        expiresAt: 1_900_000_000,
        posterUrl: "https://cdn.example.com/u/p.jpg?Expires=1900000000&Signature=t&Key-Pair-Id=K",
      }),
    });
    const item = doneItem({ id: 4, url: "https://cdn.example.com/u/k.mp4", posterUrl: "https://cdn.example.com/u/p.jpg" });
    const link = await freshLink(item, commands);
    expect(embedSnippet(link)).toBe(
      '<video controls preload="metadata" poster="https://cdn.example.com/u/p.jpg?Expires=1900000000&#38;Signature=t&#38;Key-Pair-Id=K" ' +
        'src="https://cdn.example.com/u/k.mp4?Expires=1900000000&#38;Signature=s&#38;Key-Pair-Id=K"></video>',
    );
  });
});
