import { getCurrentWebview } from "@tauri-apps/api/webview";
import { button, byId, byTestId, h } from "./dom";
import type { Schedule } from "./frame";
import { HistoryView } from "./history";
import { PosterMaker } from "./poster";
import { InviteView } from "./invite";
import { asIpcError, commands, events, type Connection, type InvitePreview, type UploadItem } from "./ipc";
import { notify, type Notify } from "./notices";
import { Preview } from "./preview";
import { QueueView, inQueue } from "./queue";
import { SettingsView } from "./settings";
import { Tabs } from "./tabs";
import { UpdatesView } from "./updates";

export { notify };

export interface StartOptions {
  /** How progress passes are scheduled; requestAnimationFrame by default. */
  schedule?: Schedule;
  /** How long finished uploads are gathered into one "ready" toast (ms). */
  readyDelayMs?: number;
  /** How a poster frame is drawn from a video URL; the webview's media stack by default. */
  capturePoster?: (src: string) => Promise<Uint8Array>;
}

export interface App {
  tabs: Tabs;
  queue: QueueView;
  history: HistoryView;
  settings: SettingsView;
  updates: UpdatesView;
  invite: InviteView;
  preview: Preview;
  refreshConnection(): Promise<void>;
}

/** The header line for a working connection: "Uploading to local (http://127.0.0.1:7300)". */
export function connectionText(conn: Connection): string {
  if (conn.profile && conn.endpoint) return `Uploading to ${conn.profile} (${conn.endpoint})`;
  return `Uploading to ${conn.endpoint ?? conn.profile ?? "?"}`;
}

/**
 * What the toast says of uploads that just finished. A file whose container did not read
 * as a video (no details: random bytes named .mp4, a truncated file) is up, but is not
 * said to be ready to stream.
 */
export function readyMessage(items: Pick<UploadItem, "name" | "details">[]): string {
  const unreadable = items.filter((i) => i.details === null).length;
  if (items.length === 1) {
    const [only] = items;
    return unreadable === 0
      ? `“${only.name}” is ready to stream.`
      : `“${only.name}” is up, but it does not read as a video, so it may not play.`;
  }
  if (unreadable === 0) return `${items.length} uploads are ready to stream.`;
  return `${items.length} uploads are up; ${unreadable} of them do${unreadable === 1 ? "es" : ""} not read as video and may not play.`;
}

const NO_ENDPOINT =
  "Not connected yet. Open the invite link your studio sent you (it sets everything up), or add a profile with its endpoint and token in Settings.";

export async function start(opts: StartOptions = {}): Promise<App> {
  // Toasts go to this page's container, even from a timer that fires late.
  const noticeBox = byId("notices");
  const toast: Notify = (message, o) => notify(message, { container: noticeBox, ...o });
  const errorNotice = (e: unknown) => void toast(asIpcError(e).message, { kind: "error" });
  const tabs = new Tabs();
  const preview = new Preview(byId("preview"), (url) => void commands.openUrl(url).catch(errorNotice));

  const queueBadge = byId("queue-count");
  const queue = new QueueView(byId("view-queue"), {
    commands,
    notify: toast,
    schedule: opts.schedule,
    onCount: (n) => {
      const value = n > 0 ? String(n) : "";
      if (queueBadge.textContent !== value) queueBadge.textContent = value;
      queueBadge.hidden = n === 0;
    },
    onWaiting: (n) => {
      waitingUploads = n;
      if (lastConnection) showConnection(lastConnection);
    },
  });
  const history = new HistoryView(byId("view-history"), { commands, notify: toast, preview });
  const posters = new PosterMaker(commands, opts.capturePoster);

  // --- connection (header + drop zone) ---
  const connection = byId("connection");
  const dropZone = byId("drop-zone");
  let connectionSeq = 0;
  // Uploads waiting for the server (queue.ts): the header says so, whatever the last
  // connection check said, until one gets through.
  let waitingUploads = 0;
  let lastConnection: Connection | null = null;
  const showConnection = (conn: Connection) => {
    lastConnection = conn;
    const problem = conn.problem ?? (conn.endpoint ? null : NO_ENDPOINT);
    let box = dropZone.querySelector<HTMLElement>(".drop-problem");
    if (problem) {
      connection.textContent = "Not connected";
      connection.title = problem;
      connection.dataset.state = "problem";
      dropZone.dataset.state = "disabled";
      if (!box) {
        const fix = button({ label: "Open Settings", testid: "open-settings", icon: "settings", className: "primary" });
        fix.addEventListener("click", () => tabs.show("settings", true));
        box = h("div", { class: "drop-problem", role: "alert" }, h("p", { testid: "connection-problem" }), fix);
        dropZone.append(box);
      }
      byTestId(box, "connection-problem").textContent = problem;
    } else if (waitingUploads > 0) {
      const text = "Waiting for the server: uploads go on by themselves when it is back";
      if (connection.textContent !== text) connection.textContent = text;
      connection.title = `${connectionText(conn)}: ${waitingUploads} upload${waitingUploads === 1 ? "" : "s"} waiting`;
      connection.dataset.state = "waiting";
      dropZone.dataset.state = "ready";
      box?.remove();
    } else {
      connection.textContent = connectionText(conn);
      connection.title = conn.cdn ? `Streaming links start with ${conn.cdn}` : "";
      connection.dataset.state = "ok";
      dropZone.dataset.state = "ready";
      box?.remove();
    }
  };
  const refreshConnection = async () => {
    const seq = ++connectionSeq;
    try {
      const conn = await commands.connection();
      if (seq === connectionSeq) showConnection(conn);
    } catch (e) {
      errorNotice(e);
    }
  };

  const settings = new SettingsView(byId("view-settings"), {
    commands,
    notify: toast,
    onChange: () => void refreshConnection(),
  });
  const updates = new UpdatesView(byId("view-settings"), commands, toast);
  const invite = new InviteView(byId("view-settings"), commands, toast, (s) => settings.render(s));
  // An invite opened from outside: straight to Settings, where the user agrees or not.
  const showInvite = (preview: InvitePreview) => {
    tabs.show("settings", true);
    invite.show(preview);
  };

  // --- uploads: one item lives in the queue or in history, never both ---
  /** Ids an event has spoken for: newer than anything the initial list may say about them. */
  const seen = new Set<number>();
  // Finished rows leave the queue; one toast (per burst) says where they went.
  let ready: UploadItem[] = [];
  let readyTimer: ReturnType<typeof setTimeout> | null = null;
  const announceReady = () => {
    readyTimer = null;
    const items = ready;
    ready = [];
    if (items.length === 0 || tabs.active === "history") return;
    toast(readyMessage(items), { testid: "notice-ready", action: { label: "Show", run: () => tabs.show("history", true) } });
  };
  const route = (item: UploadItem) => {
    if (inQueue(item.state)) {
      history.remove(item.id);
      queue.upsert(item);
    } else {
      if (queue.has(item.id)) {
        ready.push(item);
        // Finished while the app watched: draw its poster frame.
        if (item.state === "done") void posters.request(item);
        readyTimer ??= setTimeout(announceReady, opts.readyDelayMs ?? 1200);
      }
      queue.remove(item.id);
      history.upsert(item);
    }
  };

  // Subscribe before listing so no update falls between the two.
  await Promise.all([
    events.onUpload((item) => {
      seen.add(item.id);
      route(item);
    }),
    // A drop or a folder arrives as one event: its queued rows go in with one render.
    events.onUploadsAdded(({ items }) => {
      for (const item of items) seen.add(item.id);
      const queued = items.filter((i) => inQueue(i.state));
      for (const item of queued) history.remove(item.id);
      queue.upsertMany(queued);
      for (const item of items) if (!inQueue(item.state)) route(item);
    }),
    events.onProgress((batch) => queue.progress(batch)),
    events.onWaiting((e) => queue.waiting(e)),
    events.onRemoved(({ id }) => {
      seen.add(id);
      queue.remove(id);
      history.remove(id);
    }),
    events.onNotice((n) => void toast(n.message)),
    events.onSettings((s) => settings.apply(s)),
    events.onWatch((statuses) => settings.setWatch(statuses)),
    events.onConnection((conn) => {
      ++connectionSeq;
      showConnection(conn);
    }),
    events.onUpdate((status) => {
      updates.show(status);
      if (status.available) {
        toast(`Reelup ${status.available.version} is available.`, {
          testid: "notice-update",
          action: { label: "Show", run: () => tabs.show("settings", true) },
        });
      }
    }),
    events.onInvite(showInvite),
  ]);

  const loadUploads = async () => {
    try {
      const items = (await commands.listUploads()).filter((i) => !seen.has(i.id));
      queue.upsertMany(items.filter((i) => inQueue(i.state)));
      history.upsertMany(items.filter((i) => !inQueue(i.state)));
    } catch (e) {
      errorNotice(e);
    }
  };
  const loadSettings = async () => {
    try {
      settings.render(await commands.getSettings());
    } catch (e) {
      errorNotice(e);
    }
  };
  const loadWatch = async () => {
    try {
      settings.setWatch(await commands.watchStatus());
    } catch (e) {
      errorNotice(e);
    }
  };
  const loadOpenedInvite = async () => {
    try {
      const opened = await commands.takeOpenedInvite();
      if (opened) showInvite(opened);
    } catch (e) {
      errorNotice(e);
    }
  };
  await Promise.all([refreshConnection(), loadUploads(), loadSettings(), loadWatch(), updates.load()]);
  // After the settings are drawn, so the confirmation is not drawn over.
  await loadOpenedInvite();

  // "Add videos" / "Add a folder": the system's picker (in the app), then queued as a drop.
  for (const [testid, folder] of [["add-videos", false], ["add-folder", true]] as const) {
    const btn = byTestId<HTMLButtonElement>(dropZone, testid);
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      try {
        const added = await commands.pickVideos(folder);
        for (const r of added.rejected) toast(`${r.path}: ${r.reason}`);
        if (added.added.length > 0) queue.upsertMany(added.added);
      } catch (e) {
        errorNotice(e);
      } finally {
        btn.disabled = false;
      }
    });
  }

  // Drops are handled by the app; here they only light up the drop zone.
  try {
    await getCurrentWebview().onDragDropEvent((event) => {
      const over = event.payload.type === "enter" || event.payload.type === "over";
      if (over && tabs.active !== "queue") tabs.show("queue");
      dropZone.classList.toggle("dragging", over);
    });
  } catch (e) {
    errorNotice(e);
  }

  // Ctrl+F (Cmd+F): search history.
  document.body.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "f") {
      e.preventDefault();
      tabs.show("history");
      byTestId<HTMLInputElement>(document, "history-search").focus();
    }
  });

  return { tabs, queue, history, settings, updates, invite, preview, refreshConnection };
}
