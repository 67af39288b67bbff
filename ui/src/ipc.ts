// The UI's view of src-tauri/src/ipc.rs: commands, events and payloads. Change both together.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export const EVENT_UPLOAD = "reelup://upload";
export const EVENT_PROGRESS = "reelup://progress";
export const EVENT_REMOVED = "reelup://removed";
export const EVENT_NOTICE = "reelup://notice";
export const EVENT_SETTINGS = "reelup://settings";
export const EVENT_WATCH = "reelup://watch";
export const EVENT_CONNECTION = "reelup://connection";
export const EVENT_UPDATE = "reelup://update";
export const EVENT_INVITE = "reelup://invite";

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
  profile: string | null;
  key: string | null;
  /** Unix seconds. */
  createdAt: number;
  /** Unix seconds, once done. */
  finishedAt: number | null;
}

export interface ProgressTick {
  id: number;
  sent: number;
  total: number;
  bytesPerSec: number;
  etaSecs: number | null;
}

export interface ProgressBatch {
  items: ProgressTick[];
}

export interface RemovedItem {
  id: number;
}

export interface RejectedPath {
  path: string;
  reason: string;
}

export interface AddedFiles {
  added: UploadItem[];
  rejected: RejectedPath[];
}

export interface Connection {
  profile: string | null;
  endpoint: string | null;
  cdn: string | null;
  problem: string | null;
}

export interface Notice {
  message: string;
}

export type Flavour = "reelup-server" | "companion";
export type AfterUpload = "leave" | "move";

export interface WatchFolder {
  path: string;
  recursive: boolean;
  afterUpload: AfterUpload;
  /** Extensions (no dot) the folder picks up; empty is every video type. Not edited in
   * Settings, but always handed back as it came. */
  extensions?: string[];
  /** Seconds a file must stay still; absent for a folder added here (the engine's default). */
  stableSecs?: number | null;
}

export interface ProfileInput {
  name: string;
  endpoint: string;
  flavour: Flavour;
  cdn: string | null;
  partsInFlight: number;
  /** Bytes per second; null is unlimited. */
  bandwidthLimit: number | null;
  partSizeMib: number;
  watch: WatchFolder[];
}

export interface ProfileView extends ProfileInput {
  hasToken: boolean;
  isDefault: boolean;
}

export interface Settings {
  configPath: string;
  problem: string | null;
  profiles: ProfileView[];
  defaultProfile: string | null;
  closeToTray: boolean;
  startAtLogin: boolean;
  keyringProblem: string | null;
}

export interface ConnectionCheck {
  ok: boolean;
  message: string;
  user: string | null;
  prefix: string | null;
}

export type WatchState = "watching" | "missing" | "unreadable";

export interface WatchStatus {
  profile: string;
  path: string;
  state: WatchState;
  message: string | null;
}

export interface AppOptions {
  closeToTray: boolean;
  startAtLogin: boolean;
}

export interface AvailableUpdate {
  version: string;
  notes: string | null;
}

export interface UpdateStatus {
  version: string;
  /** False for builds from source: only packages have an update key and feed. */
  updatesEnabled: boolean;
  available: AvailableUpdate | null;
}

/** What an invite link would connect to; the one-time code is never in here. */
export interface InvitePreview {
  link: string;
  endpoint: string;
  cdn: string;
  profile: string;
  replaces: boolean;
}

export interface AcceptedInvite {
  profile: string;
  user: string;
  check: ConnectionCheck;
}

export const commands = {
  connection: () => invoke<Connection>("connection"),
  /** Every item in the queue store: unfinished ones and history (done), newest first. */
  listUploads: () => invoke<UploadItem[]>("list_uploads"),
  pauseUpload: (id: number) => invoke<void>("pause_upload", { id }),
  /** Resumes a paused item or retries a failed one; finished parts are kept. */
  resumeUpload: (id: number) => invoke<void>("resume_upload", { id }),
  cancelUpload: (id: number) => invoke<void>("cancel_upload", { id }),
  /** Removes a finished, failed or canceled item from the list (never a running one). */
  removeUpload: (id: number) => invoke<void>("remove_upload", { id }),
  pauseAll: () => invoke<void>("pause_all"),
  resumeAll: () => invoke<void>("resume_all"),
  copyText: (text: string) => invoke<void>("copy_text", { text }),
  /** Opens an http(s) URL in the user's browser. */
  openUrl: (url: string) => invoke<void>("open_url", { url }),

  getSettings: () => invoke<Settings>("get_settings"),
  /** Adds a profile (previousName null) or replaces one, renaming it if the name changed. */
  saveProfile: (previousName: string | null, profile: ProfileInput) =>
    invoke<Settings>("save_profile", { previousName, profile }),
  removeProfile: (name: string) => invoke<Settings>("remove_profile", { name }),
  setDefaultProfile: (name: string) => invoke<Settings>("set_default_profile", { name }),
  /** Writes the token straight to the OS keyring; it is never read back into the UI. */
  setToken: (profile: string, token: string) => invoke<Settings>("set_token", { profile, token }),
  clearToken: (profile: string) => invoke<Settings>("clear_token", { profile }),
  testConnection: (profile: string) => invoke<ConnectionCheck>("test_connection", { profile }),
  /** The native folder picker; null when the user cancels. */
  pickFolder: () => invoke<string | null>("pick_folder"),
  setAppOptions: (options: AppOptions) => invoke<Settings>("set_app_options", { options }),
  watchStatus: () => invoke<WatchStatus[]>("watch_status"),

  updateStatus: () => invoke<UpdateStatus>("update_status"),
  checkUpdate: () => invoke<UpdateStatus>("check_update"),
  /** Downloads, verifies and installs the update found by the last check; restarts. */
  installUpdate: () => invoke<void>("install_update"),

  /** Reads an invite link without redeeming it, for the user to agree to. */
  inspectInvite: (link: string) => invoke<InvitePreview>("inspect_invite", { link }),
  /** Redeems the link's one-time code and sets up its profile with the token it gives. */
  acceptInvite: (link: string) => invoke<AcceptedInvite>("accept_invite", { link }),
  /** An invite link the app was opened with before this page was listening, once. */
  takeOpenedInvite: () => invoke<InvitePreview | null>("take_opened_invite"),
};

export const events = {
  onUpload: (handler: (item: UploadItem) => void): Promise<UnlistenFn> =>
    listen<UploadItem>(EVENT_UPLOAD, (e) => handler(e.payload)),
  onProgress: (handler: (batch: ProgressBatch) => void): Promise<UnlistenFn> =>
    listen<ProgressBatch>(EVENT_PROGRESS, (e) => handler(e.payload)),
  onRemoved: (handler: (removed: RemovedItem) => void): Promise<UnlistenFn> =>
    listen<RemovedItem>(EVENT_REMOVED, (e) => handler(e.payload)),
  onNotice: (handler: (notice: Notice) => void): Promise<UnlistenFn> =>
    listen<Notice>(EVENT_NOTICE, (e) => handler(e.payload)),
  onSettings: (handler: (settings: Settings) => void): Promise<UnlistenFn> =>
    listen<Settings>(EVENT_SETTINGS, (e) => handler(e.payload)),
  onConnection: (handler: (connection: Connection) => void): Promise<UnlistenFn> =>
    listen<Connection>(EVENT_CONNECTION, (e) => handler(e.payload)),
  onWatch: (handler: (statuses: WatchStatus[]) => void): Promise<UnlistenFn> =>
    listen<WatchStatus[]>(EVENT_WATCH, (e) => handler(e.payload)),
  onUpdate: (handler: (status: UpdateStatus) => void): Promise<UnlistenFn> =>
    listen<UpdateStatus>(EVENT_UPDATE, (e) => handler(e.payload)),
  onInvite: (handler: (invite: InvitePreview) => void): Promise<UnlistenFn> =>
    listen<InvitePreview>(EVENT_INVITE, (e) => handler(e.payload)),
};

/** Errors from `invoke` arrive as the serialised IpcError; anything else is wrapped. */
export function asIpcError(e: unknown): IpcError {
  if (e && typeof e === "object" && "code" in e && "message" in e) {
    return e as IpcError;
  }
  return { code: "unknown", message: String(e) };
}
