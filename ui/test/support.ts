// Shared by the *.test.ts files: the real page, an IPC mock that records calls, factories.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { mockIPC, mockWindows } from "@tauri-apps/api/mocks";
import type { ProfileView, Settings, UploadItem } from "../src/ipc";

const html = readFileSync(resolve(process.cwd(), "index.html"), "utf8");

/** Puts index.html's markup in the document (scripts do not run). */
export function loadPage(): void {
  document.documentElement.innerHTML = html;
}

export interface Call {
  cmd: string;
  args: Record<string, unknown>;
}

export type Handler = (args: Record<string, unknown>) => unknown;

/**
 * mockIPC with events on. `handlers` answer commands by name; a handler that throws rejects
 * the invoke with what it threw (an IpcError, like the app). Every command call is recorded.
 */
export function mockBackend(handlers: Record<string, Handler | unknown> = {}): Call[] {
  const calls: Call[] = [];
  mockWindows("main");
  mockIPC(
    (cmd, args) => {
      const a = (args ?? {}) as Record<string, unknown>;
      calls.push({ cmd, args: a });
      const h = handlers[cmd];
      if (typeof h === "function") return (h as Handler)(a);
      return h;
    },
    { shouldMockEvents: true },
  );
  return calls;
}

export function commandCalls(calls: Call[], cmd: string): Record<string, unknown>[] {
  return calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}

/** Lets pending promise callbacks (invoke answers) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

export function nextFrame(): Promise<void> {
  return new Promise((r) => requestAnimationFrame(() => r()));
}

export function item(over: Partial<UploadItem> = {}): UploadItem {
  return {
    id: 1,
    name: "clip.mp4",
    path: "/videos/clip.mp4",
    size: 40_000_000,
    sent: 0,
    state: "queued",
    url: null,
    error: null,
    profile: "studio",
    key: null,
    createdAt: 1_700_000_000,
    finishedAt: null,
    details: null,
    posterUrl: null,
    indexPosition: null,
    layout: null,
    verified: null,
    verifiedText: null,
    noPoster: null,
    retryable: false,
    ...over,
  };
}

export function doneItem(over: Partial<UploadItem> = {}): UploadItem {
  const id = over.id ?? 1;
  return item({
    state: "done",
    sent: over.size ?? 40_000_000,
    url: `https://cdn.example.com/u/${id}.mp4`,
    key: `u/${id}.mp4`,
    finishedAt: 1_700_000_100 + id,
    ...over,
  });
}

export function profile(over: Partial<ProfileView> = {}): ProfileView {
  return {
    name: "studio",
    endpoint: "https://uploads.example.com",
    flavour: "reelup-server",
    cdn: "https://cdn.example.com",
    partsInFlight: 4,
    bandwidthLimit: null,
    partSizeMib: 16,
    watch: [],
    linkLifetimeSecs: null,
    faststart: "always",
    hasToken: true,
    isDefault: true,
    ...over,
  };
}

export function settings(over: Partial<Settings> = {}): Settings {
  const profiles = over.profiles ?? [profile()];
  return {
    configPath: "/home/me/.config/reelup/config.toml",
    problem: null,
    profiles,
    defaultProfile: profiles.find((p) => p.isDefault)?.name ?? null,
    closeToTray: true,
    startAtLogin: false,
    keyringProblem: null,
    ...over,
  };
}

export function byTestId<T extends HTMLElement = HTMLElement>(testid: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`no [data-testid=${testid}]`);
  return el;
}

export function allByTestId<T extends HTMLElement = HTMLElement>(testid: string, root: ParentNode = document): T[] {
  return [...root.querySelectorAll<T>(`[data-testid="${testid}"]`)];
}

export function click(el: Element): void {
  (el as HTMLElement).click();
}

export function type(input: HTMLInputElement | HTMLSelectElement, value: string): void {
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

/**
 * The whole app on a mocked backend with no profile yet and an empty queue; `extra`
 * answers (or overrides) more commands. Returns the calls the app makes.
 */
export async function bootBare(extra: Record<string, Handler | unknown> = {}): Promise<Call[]> {
  const { start } = await import("../src/app");
  loadPage();
  const calls = mockBackend({
    connection: () => ({ profile: null, endpoint: null, cdn: null, problem: "none" }),
    list_uploads: () => [],
    get_settings: () => settings(),
    watch_status: () => [],
    ...extra,
  });
  await start({ readyDelayMs: 0 });
  return calls;
}
