/**
 * System tools the tests run for real (Prometheus, Chromium, openssl, etcd). A test that
 * needs one calls `requireTool` first: when the tool is missing it FAILS naming the Debian
 * package to install, instead of skipping, so a green run always checks the same things.
 * `npm test` installs all of them (scripts/setup.sh) when it runs as root.
 */
import { spawnSync } from "node:child_process";

/** The Debian package that provides each tool (see scripts/setup.sh). */
export const TOOL_PACKAGES = {
  prometheus: "prometheus",
  promtool: "prometheus",
  chromium: "chromium",
  openssl: "openssl",
  etcd: "etcd-server",
} as const;

export type Tool = keyof typeof TOOL_PACKAGES;

/** True when `bin` is on PATH. */
export function hasBinary(bin: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", bin], { encoding: "utf8" }).status === 0;
}

/** Throws, naming the package, when `tool` is not on PATH. */
export function requireTool(tool: Tool): void {
  if (hasBinary(tool)) return;
  const pkg = TOOL_PACKAGES[tool];
  throw new Error(`this test needs \`${tool}\` on PATH: install it with \`apt-get install ${pkg}\` (Debian), or run \`npm test\` as root, which installs it`);
}
