/**
 * Bundle the mixflow CLI into one ESM file with esbuild (tsx's own dependency), so tests
 * that start and kill many server processes pay tens of milliseconds per start instead of
 * tsx's transpile time. The bundle finds the .proto files through MIXFLOW_PROTO_DIR, and
 * must live under the repository (see `bundleDir`) so @grpc/reflection resolves.
 */
import * as path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const PROTO_DIR = path.join(REPO, "proto");

/** Where test bundles go: inside the repo, so node_modules resolution works. */
export const bundleDir = path.join(REPO, "node_modules", ".mixflow-test");

export async function bundleCli(outfile: string): Promise<string> {
  const req = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"));
  const esbuild = req("esbuild") as typeof import("esbuild");
  // The server runs run preparation in worker threads (src/workers/pool.ts): their entry,
  // mixflow-worker.mjs, must sit next to the bundle. Written under a unique name, then
  // renamed, since test files bundle concurrently.
  const worker = path.join(path.dirname(outfile), "mixflow-worker.mjs");
  const tmp = `${worker}.${process.pid}.${Date.now()}.tmp.mjs`;
  await bundle(esbuild, path.join(REPO, "src/workers/main.ts"), tmp);
  (await import("node:fs")).renameSync(tmp, worker);
  return bundle(esbuild, path.join(REPO, "src/cli/main.ts"), outfile);
}

async function bundle(esbuild: typeof import("esbuild"), entry: string, outfile: string): Promise<string> {
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "silent",
    // @grpc/reflection and etcd3 read their own .proto files relative to their install directories.
    external: ["@grpc/reflection", "etcd3", "cockatiel"],
    // CommonJS dependencies (grpc-js, prom-client) use require() and __dirname; give the
    // ESM bundle both.
    banner: {
      js: [
        "import { createRequire as __cr } from 'node:module';",
        "import { fileURLToPath as __fu } from 'node:url';",
        "import { dirname as __dn } from 'node:path';",
        "const require = __cr(import.meta.url);",
        "const __filename = __fu(import.meta.url);",
        "const __dirname = __dn(__filename);",
      ].join(" "),
    },
  });
  return outfile;
}
