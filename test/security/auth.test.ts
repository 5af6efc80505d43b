/**
 * Bearer-token auth over real gRPC calls: every Mixer RPC with no token, a wrong token,
 * another run's token, its own run's token and the admin token; issued tokens surviving a
 * restart as digests; tokens never written in clear to logs, journal or state files.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { authSettings } from "../../src/auth/index.js";
import { serverConfig } from "../../src/config/schema.js";
import type { MixflowServer } from "../../src/server/server.js";
import { createLogger } from "../../src/util/log.js";
import { makeDataDir, METHODS, RawMixer, removeDir, requestFor, runConfigFor, startServer } from "./helpers.js";

const ADMIN = "admin-token-0123456789abcdef";
const CONFIG_RUN_TOKEN = "config-run-token-0123456789";
const ADMIN_ONLY = new Set(["CreateRun", "ListRuns", "CloseRun"]);
const DENIED = new Set([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED]);

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("auth: admin and per-run bearer tokens", () => {
  let dir: string;
  let server: MixflowServer;
  let raw: RawMixer;
  const logLines: string[] = [];
  let tokenA = "";
  let tokenB = "";

  const authCfg = {
    auth: { adminToken: ADMIN, runTokens: { fixed: "sha256:" + createHash("sha256").update(CONFIG_RUN_TOKEN).digest("hex") } },
    runs: [runConfigFor("fixed")],
  };

  beforeAll(async () => {
    dir = makeDataDir();
    server = await startServer(dir, authCfg, createLogger("debug", (l) => logLines.push(l)));
    raw = new RawMixer(server.address);
    for (const id of ["run-a", "run-b"]) {
      const r = await raw.unary("CreateRun", { config_json: JSON.stringify(runConfigFor(id)) }, { token: ADMIN });
      expect(r.code, r.details).toBe(grpc.status.OK);
      const token = r.response!.run_token as string;
      expect(token).toMatch(/^mfr_[A-Za-z0-9_-]{43}$/);
      if (id === "run-a") tokenA = token;
      else tokenB = token;
    }
  });

  afterAll(async () => {
    raw?.close();
    await server?.stop();
    removeDir(dir);
  });

  const call = (method: string, token: string | undefined, runId = "run-a") =>
    raw.call(method, requestFor(method, runId), { ...(token !== undefined ? { token } : {}), deadlineMs: 1500 });

  it.each(METHODS)("%s without a token is UNAUTHENTICATED", async (m) => {
    const r = await call(m, undefined);
    expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(r.details).toContain("authorization: Bearer");
  });

  it.each(METHODS)("%s with a wrong token is UNAUTHENTICATED", async (m) => {
    expect((await call(m, "not-a-token-of-this-server-at-all")).code).toBe(grpc.status.UNAUTHENTICATED);
    // The admin token with one character changed, and a non-Bearer scheme, are just as wrong.
    expect((await call(m, ADMIN.slice(0, -1) + "X")).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it.each(METHODS)("%s with another run's token is PERMISSION_DENIED", async (m) => {
    const r = await call(m, tokenB, "run-a");
    expect(r.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it.each(METHODS)("%s with the run's own token: allowed for run RPCs, PERMISSION_DENIED for run management", async (m) => {
    const r = await call(m, tokenA, "run-a");
    if (ADMIN_ONLY.has(m)) {
      expect(r.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(r.details).toContain("admin token");
    } else {
      expect(DENIED.has(r.code), `${m}: ${r.code} ${r.details}`).toBe(false);
    }
  });

  it.each(METHODS.filter((m) => m !== "CloseRun"))("%s with the admin token is never denied", async (m) => {
    const r = await call(m, ADMIN, "run-a");
    expect(DENIED.has(r.code), `${m}: ${r.code} ${r.details}`).toBe(false);
  });

  it("a token configured as a sha256 digest authenticates its run and only it", async () => {
    expect((await raw.unary("GetRun", { run_id: "fixed" }, { token: CONFIG_RUN_TOKEN })).code).toBe(grpc.status.OK);
    expect((await raw.unary("GetRun", { run_id: "run-a" }, { token: CONFIG_RUN_TOKEN })).code).toBe(grpc.status.PERMISSION_DENIED);
    // The digest itself is not a token.
    const digest = authCfg.auth.runTokens.fixed;
    expect((await raw.unary("GetRun", { run_id: "fixed" }, { token: digest })).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("a full trainer flow works with the run token: batch, report, weights", async () => {
    const b = await raw.unary("NextBatch", { run_id: "run-a", step: 0, rank: 1 }, { token: tokenA });
    expect(b.code).toBe(grpc.status.OK);
    expect(b.response!.slots).toBe(4);
    const rep = await raw.unary("ReportSignals", { run_id: "run-a", step: 0, rank: 1, sample_losses: Buffer.from(new Float32Array([1, 2, 3, 4]).buffer) }, { token: tokenA });
    expect(rep.code, rep.details).toBe(grpc.status.OK);
    expect(rep.response!.duplicate).toBe(false);
    const w = await raw.unary("GetWeights", { run_id: "run-a" }, { token: tokenA });
    expect((w.response!.versions as unknown[]).length).toBeGreaterThanOrEqual(1);
    // run_token is returned by CreateRun only.
    const info = await raw.unary("GetRun", { run_id: "run-a" }, { token: tokenA });
    expect(info.response!.run_token).toBe("");
  });

  it("tokens appear nowhere in clear: logs, journal, state files; digests of issued ones are stored", async () => {
    await call("GetRun", "wrong-token-that-should-not-be-logged");
    const secrets = [ADMIN, CONFIG_RUN_TOKEN, tokenA, tokenB, "wrong-token-that-should-not-be-logged"];
    expect(logLines.length).toBeGreaterThan(0);
    const haystacks = [logLines.join("\n"), ...filesUnder(join(dir, "state")).map((f) => readFileSync(f).toString("latin1"))];
    for (const s of secrets) for (const h of haystacks) expect(h.includes(s)).toBe(false);
    const store = JSON.parse(readFileSync(join(dir, "state", "auth", "run-tokens.json"), "utf8")) as { runs: Record<string, string> };
    expect(store.runs["run-a"]).toBe(createHash("sha256").update(tokenA).digest("hex"));
    expect(Object.keys(store.runs).sort()).toEqual(["run-a", "run-b"]);
  });

  it("issued run tokens survive a restart (the server keeps their digests)", async () => {
    raw.close();
    await server.stop();
    server = await startServer(dir, authCfg);
    raw = new RawMixer(server.address);
    expect((await raw.unary("GetRun", { run_id: "run-a" }, { token: tokenA })).code).toBe(grpc.status.OK);
    expect((await raw.unary("GetRun", { run_id: "run-a" }, { token: tokenB })).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await raw.unary("ListRuns", {}, { token: ADMIN })).code).toBe(grpc.status.OK);
  });
});

describe("auth configuration", () => {
  it("resolves the admin token from a file or an environment variable", () => {
    const dir = makeDataDir(1);
    try {
      writeFileSync(join(dir, "admin.token"), "  file-token-0123456789abcdef\n");
      const fromFile = authSettings(serverConfig.parse({ auth: { adminTokenFile: "admin.token" } }), dir);
      expect(fromFile).toMatchObject({ enabled: true, adminToken: "file-token-0123456789abcdef" });
      const fromEnv = authSettings(serverConfig.parse({ auth: { adminTokenEnv: "MF_ADMIN" } }), dir, { MF_ADMIN: "env-token-0123456789abcdef" });
      expect(fromEnv.adminToken).toBe("env-token-0123456789abcdef");
      expect(() => authSettings(serverConfig.parse({ auth: { adminTokenEnv: "MF_NOPE" } }), dir, {})).toThrow(/auth\.adminTokenEnv: environment variable MF_NOPE is not set/);
      expect(() => authSettings(serverConfig.parse({ auth: { adminTokenFile: "missing" } }), dir)).toThrow(/auth\.adminTokenFile: cannot read/);
      expect(authSettings(serverConfig.parse({}), dir).enabled).toBe(false);
    } finally {
      removeDir(dir);
    }
  });

  it("rejects auth enabled without a token, two token sources, and short tokens, naming the field", () => {
    const issues = (v: unknown) => {
      const r = serverConfig.safeParse(v);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    };
    expect(issues({ auth: { enabled: true } })[0]).toMatch(/^auth\.adminToken: auth is enabled but no admin token/);
    expect(issues({ auth: { adminToken: "a".repeat(20), adminTokenEnv: "X" } })[0]).toMatch(/^auth\.adminToken: set only one/);
    expect(issues({ auth: { adminToken: "short" } })[0]).toMatch(/^auth\.adminToken:/);
    expect(issues({ tls: { cert: "c", key: "k", requireClientCert: true } })[0]).toMatch(/^tls\.ca: requireClientCert needs ca/);
  });

  it("warns loudly (log and stderr) when auth is off on a non-loopback address, and not on loopback", async () => {
    const dir = makeDataDir(1);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const s = await startServer(dir, { listen: "0.0.0.0:0" }, createLogger("warn", (l) => lines.push(l)));
      await s.stop();
      const stderr = spy.mock.calls.map((c) => String(c[0])).join("");
      expect(stderr).toContain("mixflow WARNING: auth is disabled but the server listens on 0.0.0.0:0");
      expect(lines.some((l) => l.includes("AUTH DISABLED ON A NETWORK ADDRESS"))).toBe(true);
      spy.mockClear();
      lines.length = 0;
      const t = await startServer(dir, { listen: "127.0.0.1:0" }, createLogger("warn", (l) => lines.push(l)));
      await t.stop();
      expect(spy.mock.calls.map((c) => String(c[0])).join("")).not.toContain("WARNING");
      expect(lines).toEqual([]);
    } finally {
      spy.mockRestore();
      removeDir(dir);
    }
  });
});
