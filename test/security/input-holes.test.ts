/**
 * Input holes an outside client found, through a real server (CreateRun over gRPC):
 * strategy weight maps with unknown domain names or all zeros are refused naming the
 * known domains; a data path at a file that is not JSONL (/etc/passwd) names the path and
 * line but never echoes its bytes.
 */
import * as fs from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, removeDir, runConfigFor, startServer } from "./helpers.js";
import type { MixflowServer } from "../../src/server/server.js";

let dir: string;
let server: MixflowServer;
let client: MixflowClient;
beforeAll(async () => {
  dir = makeDataDir(50);
  server = await startServer(dir);
  client = new MixflowClient(server.address, { deadlineMs: 10_000 });
});
afterAll(async () => {
  client.close();
  await server.stop(1000);
  removeDir(dir);
});

async function createError(cfg: Record<string, unknown>): Promise<grpc.ServiceError | null> {
  return client.createRun(cfg).then(
    () => null,
    (e: grpc.ServiceError) => e,
  );
}

describe("CreateRun input holes", () => {
  it("a weight map with a misspelt domain is refused with the known domains", async () => {
    const e = await createError({ ...runConfigFor("typo"), strategy: { name: "static", params: { weights: { alpah: 1, gamma: 1 } } } });
    expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e?.details).toContain('strategy.params.weights: unknown domain "alpah"; known domains: alpha, beta, gamma');
    const e2 = await createError({ ...runConfigFor("typo2"), strategy: { name: "exp3", params: { initial: { beta: 1, zeta: 2 } } } });
    expect(e2?.details).toContain('strategy.params.initial: unknown domain "zeta"');
    await expect(client.getRun("typo")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("an all-zero weight map is refused", async () => {
    const e = await createError({ ...runConfigFor("zero"), strategy: { name: "static", params: { weights: { alpha: 0, beta: 0 } } } });
    expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e?.details).toContain("strategy.params.weights: every weight is 0");
  });

  it("a data path at /etc/passwd names the path and line, not its bytes", async () => {
    const first = fs.readFileSync("/etc/passwd", "utf8").split("\n")[0]!;
    const cfg = { ...runConfigFor("passwd"), domains: [{ name: "p", train: { format: "jsonl", paths: ["/etc/passwd"] } }] };
    const e = await createError(cfg);
    expect(e?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e?.details).toContain("/etc/passwd:1");
    expect(e?.details).not.toContain(first.slice(0, 6));
    expect(e?.details).not.toContain("root");
  });
});
