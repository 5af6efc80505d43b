#!/usr/bin/env node
// Entry point of the `mixflow` command. In a checkout (src/ present) it runs the TypeScript
// sources through tsx's loader, so a stale dist/ is never used; an installed package ships
// only the compiled JS (dist/, built by `npm run build`, which `npm pack` runs).
import { existsSync } from "node:fs";

const sources = new URL("../src/cli/main.ts", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else {
  await import(new URL("../dist/src/cli/main.js", import.meta.url).href);
}
