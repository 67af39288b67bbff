import { afterEach, describe, expect, it } from "vitest";
import { clearMocks } from "@tauri-apps/api/mocks";
import { commandCalls, doneItem, mockBackend } from "../test/support";
import { commands } from "./ipc";
import { copiedMessage, copyLink } from "./links";

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
  });

  it("copies the stored link where the endpoint cannot sign, and passes other failures on", async () => {
    let calls = mockBackend({
      sign_link: () => Promise.reject({ code: "links_unavailable", message: "cannot sign links" }),
    });
    const plain = await copyLink(doneItem({ id: 3, url: "https://cdn.example.com/k.mp4" }), commands);
    expect(plain).toEqual({ url: "https://cdn.example.com/k.mp4", expiresAt: null });
    expect(commandCalls(calls, "copy_text")).toEqual([{ text: "https://cdn.example.com/k.mp4" }]);
    expect(copiedMessage(plain)).toBeNull();
    clearMocks();
    calls = mockBackend({
      sign_link: () => Promise.reject({ code: "unauthorized", message: "the token was refused" }),
    });
    await expect(copyLink(doneItem({ id: 3 }), commands)).rejects.toMatchObject({ code: "unauthorized" });
    expect(commandCalls(calls, "copy_text")).toEqual([]);
  });
});
