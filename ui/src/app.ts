import { getCurrentWebview } from "@tauri-apps/api/webview";
import { asIpcError, commands, events } from "./ipc";
import { UploadList, summarize } from "./upload-list";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

/** Shows a message for a while without blocking anything. */
export function notify(message: string, container = byId("notices")): void {
  const note = document.createElement("div");
  note.className = "notice";
  note.dataset.testid = "notice";
  note.textContent = message;
  container.append(note);
  setTimeout(() => note.remove(), 6000);
}

export async function start(): Promise<void> {
  const empty = byId("empty");
  const totals = byId("totals");
  const list = new UploadList(byId("upload-list"), commands.copyText, (items) => {
    empty.hidden = items.size > 0;
    totals.textContent = summarize(items);
  });

  // Subscribe before listing so no update falls between the two.
  await events.onUpload((item) => list.upsert(item));
  await events.onNotice((n) => notify(n.message));

  const connection = byId("connection");
  const dropZone = byId("drop-zone");
  try {
    const conn = await commands.connection();
    if (conn.problem) {
      connection.textContent = "Not connected";
      connection.dataset.state = "problem";
      dropZone.dataset.state = "disabled";
      const problem = document.createElement("div");
      problem.className = "drop-problem";
      problem.dataset.testid = "connection-problem";
      problem.textContent = conn.problem;
      dropZone.append(problem);
    } else {
      connection.textContent = `Uploading to ${conn.endpoint}`;
      connection.title = `Streaming from ${conn.cdn}`;
      connection.dataset.state = "ok";
    }
    for (const item of await commands.listUploads()) list.upsert(item);
  } catch (e) {
    notify(asIpcError(e).message);
  }

  await getCurrentWebview().onDragDropEvent((event) => {
    const over = event.payload.type === "enter" || event.payload.type === "over";
    dropZone.classList.toggle("dragging", over);
  });
}
