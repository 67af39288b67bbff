// The UI's door to the app. The contract itself (commands, event payloads, IpcError and
// its closed ErrorCode set) is generated from src-tauri into bindings.ts by `./dev
// bindings`, and a Rust test fails while that file is stale. This file only adapts it:
// event handlers get the payload, and whatever an invoke rejects with is read as an IpcError.
import type { UnlistenFn } from "@tauri-apps/api/event";
import { commands, events as generated, type IpcError } from "./bindings";

export { commands };
export type * from "./bindings";

/** The app's commands; each view takes the few it uses (`Pick<Commands, ...>`). */
export type Commands = typeof commands;

/** A generated event, as far as listening to it goes. */
interface Listenable<T> {
  listen(handler: (event: { payload: T }) => void): Promise<UnlistenFn>;
}

function on<T>(event: Listenable<T>) {
  return (handler: (payload: T) => void): Promise<UnlistenFn> => event.listen((e) => handler(e.payload));
}

export const events = {
  onUpload: on(generated.reelupUpload),
  onUploadsAdded: on(generated.reelupUploadsAdded),
  onProgress: on(generated.reelupProgress),
  onWaiting: on(generated.reelupWaiting),
  onRemoved: on(generated.reelupRemoved),
  onNotice: on(generated.reelupNotice),
  onSettings: on(generated.reelupSettings),
  onConnection: on(generated.reelupConnection),
  onWatch: on(generated.reelupWatch),
  onUpdate: on(generated.reelupUpdate),
  onInvite: on(generated.reelupInvite),
};

/**
 * A command's rejection: the app's IpcError, or (an unknown command, a denied permission, a
 * bad argument) Tauri's own text, which carries no code.
 */
export function asIpcError(e: unknown): IpcError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    const err = e as IpcError;
    return { code: err.code, message: err.message, field: err.field ?? null };
  }
  return { code: "unknown", message: String(e), field: null };
}
