/**
 * `mixflow serve` in a child process started with --expose-gc, answering "heap" lines on
 * stdin with the heap used after two full collections ({"heapUsed": bytes} on stdout).
 * The heap-slope tests use it: after a forced GC only retained objects are left, so the
 * growth between two points of a run, divided by the steps served between them, is what
 * the server keeps per step.
 */
import { createInterface } from "node:readline";
import { serveCommand } from "../../src/cli/serve.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write("heap-child: start node with --expose-gc\n");
  process.exit(2);
}
await serveCommand(process.argv.slice(2));
createInterface({ input: process.stdin }).on("line", (l) => {
  if (l.trim() !== "heap") return;
  gc();
  gc();
  process.stdout.write(JSON.stringify({ heapUsed: process.memoryUsage().heapUsed }) + "\n");
});
