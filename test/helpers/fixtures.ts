/**
 * Test fixtures: tiny generated JSONL domains in a temp dir, server configs around them,
 * and an in-process server on a loopback port with a real grpc-js client.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { serverConfig, type ServerConfig } from "../../src/config/schema.js";
import { MixflowServer } from "../../src/server/server.js";
import { MixflowClient } from "../../src/client/index.js";
import { createLogger } from "../../src/util/log.js";

export function tmpDir(prefix = "mixflow-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Write `n` JSONL docs for each named domain (train and eval) into dir; returns domain configs. */
export function writeDomains(dir: string, names: readonly string[], n = 50, evalN = 10): Record<string, unknown>[] {
  return names.map((name, di) => {
    for (const [split, count] of [
      ["train", n],
      ["eval", evalN],
    ] as const) {
      const lines: string[] = [];
      for (let i = 0; i < count; i++) {
        lines.push(JSON.stringify({ id: `${name}-${split}-${i}`, text: `${name} ${split} document ${i} ${"x".repeat((i * 7 + di) % 23)}` }));
      }
      fs.writeFileSync(path.join(dir, `${name}.${split}.jsonl`), lines.join("\n") + "\n");
    }
    return {
      name,
      train: { format: "jsonl", paths: [`${name}.train.jsonl`] },
      eval: { format: "jsonl", paths: [`${name}.eval.jsonl`] },
    };
  });
}

export function runConfigFor(dir: string, over: Record<string, unknown> = {}, names = ["a", "b", "c"]): Record<string, unknown> {
  return {
    id: "r1",
    batchSize: 16,
    worldSize: 2,
    seed: 11,
    maxSteps: 1000,
    aggregationTimeoutMs: 60_000,
    domains: writeDomains(dir, names),
    ...over,
  };
}

export interface TestServer {
  server: MixflowServer;
  client: MixflowClient;
  dir: string;
  config: ServerConfig;
  stop(): Promise<void>;
}

export async function startServer(dir: string, runs: Record<string, unknown>[] = [], over: Record<string, unknown> = {}): Promise<TestServer> {
  const config = serverConfig.parse({
    dataDir: path.join(dir, "state"),
    listen: "127.0.0.1:0",
    metrics: { enabled: false },
    journal: { durability: "none" },
    logLevel: "silent",
    runs,
    ...over,
  });
  const server = await MixflowServer.start({ config, baseDir: dir, logger: createLogger("silent") });
  const client = new MixflowClient(server.address, { deadlineMs: 10_000 });
  return {
    server,
    client,
    dir,
    config,
    async stop() {
      client.close();
      await server.stop(1000);
    },
  };
}
