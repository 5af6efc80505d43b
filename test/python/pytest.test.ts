/**
 * Runs the Python client's pytest suite (clients/python/tests, without the `slow` torchrun
 * test) against real servers, so `npm test` covers the Python client too. Needs the
 * virtualenv at .venv (see clients/python/README.md); skipped with a message without it.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const python = path.join(repo, ".venv", "bin", "python");
const haveVenv = existsSync(python);

if (!haveVenv) {
  console.warn(
    "test/python: skipping the Python client tests: no .venv. Create it with\n" +
      "  python3 -m venv .venv && .venv/bin/pip install grpcio grpcio-tools protobuf numpy pytest && .venv/bin/pip install -e clients/python",
  );
}

describe.skipIf(!haveVenv)("Python client (pytest)", () => {
  it("passes clients/python/tests -m 'not slow'", () => {
    const r = spawnSync(python, ["-m", "pytest", "clients/python/tests", "-q", "-m", "not slow", "-p", "no:cacheprovider"], {
      cwd: repo,
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: path.join(repo, "clients", "python") },
      timeout: 170_000,
    });
    const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
    if (r.status !== 0) console.error(output.slice(-8000));
    expect(r.error, String(r.error)).toBeUndefined();
    expect(r.status).toBe(0);
    expect(output).toMatch(/\d+ passed/);
  }, 180_000);
});
