/**
 * Replicas for the cluster tests: in-process (a MixflowServer with a ClusterNode, as
 * `mixflow serve --cluster` builds them) or as child processes of a bundled CLI that can
 * be killed with SIGKILL. Each replica has its own data directory (its own journal).
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { EtcdSecurity } from "../../src/cluster/etcd-client.js";
import type { ForwardTls } from "../../src/cluster/forward.js";
import { registerClusterMetrics } from "../../src/cluster/metrics.js";
import { ClusterNode } from "../../src/cluster/node.js";
import { createMetrics } from "../../src/metrics/index.js";
import { serverConfig } from "../../src/config/schema.js";
import { MixflowServer } from "../../src/server/server.js";
import { createLogger } from "../../src/util/log.js";
import { bundleCli, bundleDir, PROTO_DIR } from "../helpers/bundle.js";

export interface InProcessReplica {
  readonly server: MixflowServer;
  readonly node: ClusterNode;
  readonly address: string;
  /** host:port of the real Prometheus endpoint (null unless started with `metrics`). */
  readonly metricsAddress: string | null;
  stop(): Promise<void>;
}

export interface ReplicaOptions {
  /** Serve /metrics with the cluster series, as `mixflow serve --cluster` does. */
  readonly metrics?: boolean;
  /** TLS files and password auth for etcd (etcds:// urls). */
  readonly security?: EtcdSecurity;
  /** Mutual TLS for the forward service between replicas. */
  readonly forwardTls?: ForwardTls;
}

export async function startReplica(dir: string, url: string, nodeId: string, runs: Record<string, unknown>[] = [], reserveChunk = 16, opts: ReplicaOptions = {}): Promise<InProcessReplica> {
  const logger = createLogger("silent");
  const node = await ClusterNode.start({ url, nodeId, forwardListen: "127.0.0.1:0", ttlSeconds: 2, reserveChunk, ...(opts.security ? { security: opts.security } : {}), ...(opts.forwardTls ? { forwardTls: opts.forwardTls } : {}) }, logger);
  const config = serverConfig.parse({
    dataDir: path.join(dir, `state-${nodeId}`),
    listen: "127.0.0.1:0",
    metrics: opts.metrics ? { enabled: true, listen: "127.0.0.1:0" } : { enabled: false },
    journal: { durability: "none" },
    logLevel: "silent",
    runs,
  });
  const metrics = opts.metrics ? createMetrics(config.metrics, { logger }) : null;
  if (metrics) registerClusterMetrics(metrics.registry, node);
  const server = await MixflowServer.start({ config, baseDir: dir, logger, runHooks: node.hooks(), ...(metrics ? { observer: metrics.observer } : {}) });
  await node.attach(server.registry);
  const metricsAddress = metrics ? await metrics.start() : null;
  return {
    server,
    node,
    address: server.address,
    metricsAddress,
    async stop() {
      await node.stop();
      await server.stop(1000);
      await metrics?.stop();
    },
  };
}

/**
 * Bundle the CLI for child-process replicas. etcd3 stays external: it loads its .proto
 * files relative to its own install directory (the bundle lives under node_modules so
 * both it and @grpc/reflection resolve).
 */
export async function bundleClusterCli(): Promise<string> {
  fs.mkdirSync(bundleDir, { recursive: true });
  // bundleCli also puts the worker-thread entry next to the bundle (run preparation).
  return bundleCli(path.join(bundleDir, `cluster-${process.pid}.mjs`));
}

export interface ProcessReplica {
  readonly child: ChildProcess;
  readonly address: string;
  readonly nodeId: string;
  /** host:port of its Prometheus endpoint (null unless spawned with `metrics`). */
  readonly metricsAddress: string | null;
  /** The last ~16 KB of what it printed (stderr and stdout), for a failing test's message. */
  logs(): string;
  /** SIGKILL by pid; resolves on exit. */
  kill(): Promise<void>;
}

/** Start `mixflow serve --cluster` as a child; resolves once it printed its listening line. */
export function spawnReplica(
  cli: string,
  dir: string,
  url: string,
  nodeId: string,
  timeoutMs = 60_000,
  port = 0,
  reserve = 16,
  opts: { readonly metrics?: boolean; readonly args?: readonly string[]; readonly logLevel?: string } = {},
): Promise<ProcessReplica> {
  const cfgPath = path.join(dir, `server-${nodeId}.json`);
  fs.writeFileSync(
    cfgPath,
    JSON.stringify({
      dataDir: path.join(dir, `state-${nodeId}`),
      listen: `127.0.0.1:${port}`,
      metrics: opts.metrics ? { enabled: true, listen: "127.0.0.1:0" } : { enabled: false },
      journal: { durability: "fsync" },
      logLevel: opts.logLevel ?? "warn",
    }),
  );
  const child = spawn(process.execPath, [cli, "serve", "--config", cfgPath, "--cluster", url, "--node-id", nodeId, "--cluster-ttl", "2", "--cluster-reserve", String(reserve), ...(opts.args ?? [])], {
    env: { ...process.env, MIXFLOW_PROTO_DIR: PROTO_DIR },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let all = "";
    const keep = (d: Buffer): void => {
      all = (all + d.toString()).slice(-16_000);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`replica ${nodeId} did not start within ${timeoutMs} ms: ${err.slice(-2000)}`));
    }, timeoutMs);
    child.stderr!.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
      keep(d);
    });
    child.stdout!.on("data", keep);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      const info = JSON.parse(line) as { grpc: string; metrics: string | null };
      resolve({
        child,
        address: info.grpc,
        nodeId,
        metricsAddress: info.metrics ?? null,
        logs: () => all,
        kill: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once("exit", () => r());
            process.kill(child.pid!, "SIGKILL");
          }),
      });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`replica ${nodeId} exited with ${code} before listening: ${err.slice(-2000)}`));
    });
  });
}
