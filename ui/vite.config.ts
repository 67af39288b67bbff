import { defineConfig } from "vite";

export default defineConfig({
  // Assets are served by Tauri from inside the binary, so paths stay relative.
  base: "./",
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "safari15",
  },
  test: {
    environment: "jsdom",
    // The 1,000-item test asserts DOM work, not speed; on a loaded 2-core CI box it can
    // take longer than the 5 s default.
    testTimeout: 30_000,
  },
});
