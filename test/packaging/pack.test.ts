/**
 * The server as a user installs it (issue 16, point 6): `npm pack` gives a package whose
 * `mixflow` bin runs from compiled JS outside the checkout, and the lock file is the one
 * npm itself would write, so `npm ci` takes it and `npm install` does not rewrite it.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-pack-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * Runs npm asynchronously: a synchronous child blocks this worker's event loop, and with it
 * vitest's RPC, for as long as npm runs (npm pack builds, npm ci installs: tens of seconds,
 * which vitest reported as 'Timeout calling "onTaskUpdate"').
 */
async function npm(args: string[], cwd: string): Promise<string> {
  const child = spawn("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const guard = setTimeout(() => child.kill("SIGKILL"), 240_000);
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve(code));
  }).finally(() => clearTimeout(guard));
  expect(status, `npm ${args.join(" ")} failed:\n${stderr.slice(-4000)}`).toBe(0);
  return stdout;
}

describe("packaging", () => {
  it("package-lock.json is what npm writes for package.json (npm install leaves it unchanged)", async () => {
    const dir = path.join(tmp, "lock");
    fs.mkdirSync(dir);
    for (const f of ["package.json", "package-lock.json"]) fs.copyFileSync(path.join(repo, f), path.join(dir, f));
    await npm(["install", "--package-lock-only", "--ignore-scripts"], dir);
    expect(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8")).toBe(fs.readFileSync(path.join(repo, "package-lock.json"), "utf8"));
  }, 250_000);

  it("npm ci takes the lock file as it is (installs, leaves it unchanged)", async () => {
    const dir = path.join(tmp, "ci");
    fs.mkdirSync(dir);
    for (const f of ["package.json", "package-lock.json"]) fs.copyFileSync(path.join(repo, f), path.join(dir, f));
    await npm(["ci", "--ignore-scripts"], dir);
    expect(fs.existsSync(path.join(dir, "node_modules", ".package-lock.json"))).toBe(true);
    expect(fs.existsSync(path.join(dir, "node_modules", "vitest", "package.json"))).toBe(true);
    expect(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8")).toBe(fs.readFileSync(path.join(repo, "package-lock.json"), "utf8"));
  }, 250_000);

  it("npm pack gives a package whose mixflow bin serves from compiled JS in a folder outside the checkout", async () => {
    const out = await npm(["pack", "--json", "--pack-destination", tmp], repo);
    const [packed] = JSON.parse(out.slice(out.indexOf("["))) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    expect(files).toContain("dist/src/cli/main.js");
    expect(files).toContain("proto/mixflow/v1/mixer.proto");
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);

    const app = path.join(tmp, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
    await npm(["install", "--ignore-scripts", path.join(tmp, packed!.filename)], app);
    const bin = path.join(app, "node_modules", ".bin", "mixflow");
    const strategies = spawnSync(bin, ["strategies"], { cwd: app, encoding: "utf8", timeout: 60_000 });
    expect(strategies.status, strategies.stderr).toBe(0);
    expect(strategies.stdout).toMatch(/^static\s/m);

    // A real server from the installed package: loads its proto, listens, drains on SIGTERM.
    fs.writeFileSync(path.join(app, "docs.jsonl"), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `doc ${i}` })).join("\n"));
    const config = { metrics: { enabled: false }, logLevel: "info", runs: [{ id: "r", batchSize: 4, worldSize: 1, seed: 1, strategy: { name: "static" }, domains: [{ name: "d", train: { format: "jsonl", paths: ["docs.jsonl"] } }] }] };
    fs.writeFileSync(path.join(app, "mixflow.json"), JSON.stringify(config));
    const srv = spawn(bin, ["serve", "--config", "mixflow.json", "--listen", "127.0.0.1:0", "--data-dir", "state", "--durability", "none"], { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    srv.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const first = await new Promise<string>((resolve) => {
      let buf = "";
      srv.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
      });
      srv.on("exit", () => resolve(buf));
    });
    const exited = new Promise<string>((resolve) => srv.on("exit", (code, signal) => resolve(`code ${code} signal ${signal}`)));
    srv.kill("SIGTERM");
    expect(JSON.parse(first).event, stderr).toBe("listening");
    // Sent the moment "listening" is read: the drain handler is already in place.
    expect(await exited, stderr).toBe("code 0 signal null");
    expect(fs.realpathSync(bin)).toContain(path.join(app, "node_modules", "mixflow"));
  }, 500_000);
});
