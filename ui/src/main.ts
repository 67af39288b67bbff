import { start, notify } from "./app";
import { asIpcError } from "./ipc";

start().catch((e) => notify(asIpcError(e).message));
