/**
 * Progress for long CLI operations (indexing, export, reports): a single self-rewriting
 * line on a terminal, nothing at all when stderr is not a TTY (CI logs, pipes).
 */
export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      shown = true;
      const pct = total > 0 ? ((100 * done) / total).toFixed(1) : "?";
      stream.write(`\r${label}: ${pct}% (${done.toLocaleString()} / ${total.toLocaleString()})\x1b[K`);
    },
    done() {
      if (shown) stream.write(`\r${label}: done\x1b[K\n`);
    },
  };
}
