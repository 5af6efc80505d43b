/**
 * Errors behind the edge carry a stable code and name the file, never its contents
 * (issue 11): a damaged HF datasets state.json is refused as INVALID_ARGUMENT with the
 * file's path and JSON's reason, without the text JSON.parse would have quoted; a text
 * source asked for a token window is a caller bug (INTERNAL).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { MixflowError } from "../../src/errors.js";
import { TextBlobSource, expandPaths } from "../../src/sources/index.js";
import { tmpDir } from "../helpers/fixtures.js";

function thrown(fn: () => unknown): MixflowError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MixflowError) return e;
    throw e;
  }
  throw new MixflowError("INTERNAL", "expected a throw");
}

describe("source errors", () => {
  it("a state.json that is not JSON: INVALID_ARGUMENT naming the file, without quoting it", () => {
    const dir = tmpDir();
    const state = path.join(dir, "state.json");
    fs.writeFileSync(state, 'SECRET-TOKEN-4711 {"_data_files": []}');
    const e = thrown(() => expandPaths([dir], "arrow"));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain(state);
    expect(e.message).not.toContain("SECRET");
  });

  it("a state.json without a data file list: INVALID_ARGUMENT saying so", () => {
    const dir = tmpDir();
    const state = path.join(dir, "state.json");
    fs.writeFileSync(state, JSON.stringify({ _data_files: [{ name: "x" }] }));
    const e = thrown(() => expandPaths([dir], "arrow"));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toBe(`${state}: not a HF datasets state.json (no _data_files list)`);
  });

  it("a token window from a text source is INTERNAL (a caller bug)", () => {
    expect(thrown(() => TextBlobSource.prototype.copyWindow.call(null)).code).toBe("INTERNAL");
  });
});
