/**
 * Zero skips, enforced: no test in the repository may skip itself, run only sometimes, or
 * swallow errors with an empty catch. A test whose real part is missing must fail naming
 * what to install (test/helpers/tools.ts), so every green run checks the same things.
 * Scans the TypeScript tests (vitest) and the Python client's tests (pytest).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function files(dir: string, ext: RegExp): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name.startsWith(".") ? [] : files(p, ext);
    return ext.test(e.name) ? [p] : [];
  });
}

/** Forbidden constructs, assembled so that this file does not match itself. */
const TS_BANNED = [
  ["\\.(skip|only|todo)\\s*\\(", "describe/it .skip/.only/.todo"],
  ["\\.(skipIf|runIf)\\s*\\(", "skipIf/runIf"],
  ["catch\\s*(\\([^)]*\\))?\\s*\\{\\s*\\}", "an empty catch"],
].map(([re, what]) => [new RegExp(re!), what!] as const);
const PY_BANNED = [
  ["pytest\\.(skip|importorskip|xfail)\\s*\\(", "pytest.skip/importorskip/xfail"],
  ["@pytest\\.mark\\.(skip|skipif|xfail)\\b", "a skip/xfail mark"],
  ["except[^:\\n]*:\\s*\\n\\s*pass\\b", "except: pass"],
].map(([re, what]) => [new RegExp(re!), what!] as const);

function offenders(list: string[], banned: readonly (readonly [RegExp, string])[]): string[] {
  const out: string[] = [];
  for (const f of list) {
    if (f === fileURLToPath(import.meta.url)) continue;
    const text = fs.readFileSync(f, "utf8");
    for (const [re, what] of banned) {
      const m = re.exec(text);
      if (m) out.push(`${path.relative(repo, f)}:${text.slice(0, m.index).split("\n").length}: ${what}`);
    }
  }
  return out;
}

describe("no skipped tests", () => {
  it("vitest files neither skip nor swallow errors", () => {
    const list = files(path.join(repo, "test"), /\.ts$/);
    expect(list.length).toBeGreaterThan(30);
    expect(offenders(list, TS_BANNED)).toEqual([]);
  });
  it("pytest files neither skip nor xfail", () => {
    const list = files(path.join(repo, "clients", "python", "tests"), /\.py$/);
    expect(list.length).toBeGreaterThan(5);
    expect(offenders(list, PY_BANNED)).toEqual([]);
  });
});
