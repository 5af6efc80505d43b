/**
 * `mixflow serve` as a child process (node --import tsx, so the pid is the server's own
 * and signals reach it directly), its listening line parsed, its RSS read from /proc.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

export interface ChildServer {
  readonly proc: ChildProcess;
  readonly address: string;
  /** Resolves with the exit code once the process ended. */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export async function spawnServer(configFile: string, extraArgs: string[] = []): Promise<ChildServer> {
  const proc = spawn(process.execPath, [...(process.env.MIXFLOW_SERVER_NODE_ARGS ?? "").split(" ").filter(Boolean), "--import", "tsx", "src/cli/main.ts", "serve", "--config", configFile, "--listen", "127.0.0.1:0", ...extraArgs], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const lines = createInterface({ input: proc.stdout! });
  const address = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`server did not start in 30 s: ${err}`)), 30_000);
    lines.once("line", (l) => {
      clearTimeout(t);
      res((JSON.parse(l) as { grpc: string }).grpc);
    });
    void exited.then((c) => rej(new Error(`server exited with ${c}: ${err}`)));
  });
  return { proc, address, exited, stderr: () => err };
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** The q-quantile of a sample (sorted copy, nearest rank). */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
