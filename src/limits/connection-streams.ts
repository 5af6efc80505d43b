/**
 * Concurrent server streams (StreamBatches, WatchWeights) per client connection. Each
 * open stream holds a prefetch queue or a watcher, so one connection must not be able to
 * open them without bound; grpc.max_concurrent_streams caps all calls, this caps the
 * long-lived ones lower. A connection is identified by its peer address (ip:port).
 */
import { MixflowError } from "../errors.js";

export class ConnectionStreams {
  private readonly max: number;
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** Count a new stream on `peer`; returns its release (idempotent). RESOURCE_EXHAUSTED past the limit. */
  acquire(peer: string): () => void {
    const n = this.open.get(peer) ?? 0;
    if (n >= this.max) {
      throw new MixflowError(
        "RESOURCE_EXHAUSTED",
        `this connection already has ${n} open streams (limits.maxStreamsPerConnection); end some, use another connection, or raise the limit in the server config`,
      );
    }
    this.open.set(peer, n + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const m = (this.open.get(peer) ?? 1) - 1;
      if (m <= 0) this.open.delete(peer);
      else this.open.set(peer, m);
    };
  }

  /** Streams open over all connections. */
  get count(): number {
    return this.total;
  }

  /** Connections with at least one open stream. */
  get connections(): number {
    return this.open.size;
  }
}
