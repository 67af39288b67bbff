// The UI's view of src-tauri/src/ipc.rs: commands, events and payloads. Change both together.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export const EVENT_UPLOAD = "reelup://upload";
export const EVENT_NOTICE = "reelup://notice";

export interface IpcError {
  code: string;
  message: string;
}

export type UploadState = "queued" | "uploading" | "paused" | "done" | "failed" | "canceled";

export interface UploadItem {
  id: number;
  name: string;
  path: string;
  size: number;
  sent: number;
  state: UploadState;
  url: string | null;
  error: IpcError | null;
}

export interface Connection {
  endpoint: string | null;
  cdn: string | null;
  problem: string | null;
}

export interface Notice {
  message: string;
}

export const commands = {
  connection: () => invoke<Connection>("connection"),
  listUploads: () => invoke<UploadItem[]>("list_uploads"),
  copyText: (text: string) => invoke<void>("copy_text", { text }),
};

export const events = {
  onUpload: (handler: (item: UploadItem) => void): Promise<UnlistenFn> =>
    listen<UploadItem>(EVENT_UPLOAD, (e) => handler(e.payload)),
  onNotice: (handler: (notice: Notice) => void): Promise<UnlistenFn> =>
    listen<Notice>(EVENT_NOTICE, (e) => handler(e.payload)),
};

/** Errors from `invoke` arrive as the serialised IpcError; anything else is wrapped. */
export function asIpcError(e: unknown): IpcError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    return e as IpcError;
  }
  return { code: "unknown", message: String(e) };
}
