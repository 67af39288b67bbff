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
  },
});
