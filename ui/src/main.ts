import { start } from "./app";
import { asIpcError } from "./ipc";
import { notify } from "./notices";

start().catch((e) => notify(asIpcError(e).message, { kind: "error" }));
