/**
 * Spawn `heap-child.ts` (node --expose-gc) on a config file and read its heap after GC.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

export interface HeapServer {
  readonly proc: ChildProcess;
  readonly address: string;
  /** Heap used (bytes) after two forced full collections in the server process. */
  heapAfterGc(): Promise<number>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  stderr(): string;
}

export async function spawnHeapServer(configFile: string): Promise<HeapServer> {
  const proc = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "test/load/heap-child.ts", "--config", configFile, "--listen", "127.0.0.1:0"], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  const lines: Interface = createInterface({ input: proc.stdout! });
  const pending: ((l: string) => void)[] = [];
  const queued: string[] = [];
  lines.on("line", (l) => {
    const p = pending.shift();
    if (p) p(l);
    else queued.push(l);
  });
  const nextLine = (what: string): Promise<string> =>
    new Promise((res, rej) => {
      const q = queued.shift();
      if (q !== undefined) return res(q);
      pending.push(res);
      void exited.then((c) => rej(new Error(`server exited with ${c} while waiting for ${what}: ${err}`)));
    });
  const listening = JSON.parse(await nextLine("the listening line")) as { grpc: string };
  return {
    proc,
    address: listening.grpc,
    async heapAfterGc() {
      proc.stdin!.write("heap\n");
      return (JSON.parse(await nextLine("a heap reading")) as { heapUsed: number }).heapUsed;
    },
    async stop() {
      proc.kill("SIGTERM");
      return exited;
    },
    stderr: () => err,
  };
}
