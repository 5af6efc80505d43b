/**
 * The mixflow server: gRPC (Mixer, health, reflection) over the run registry, started and
 * stopped as one unit. Shutdown drains: health turns NOT_SERVING, open streams end
 * cleanly at their next step, queued aggregations finish, the journal is flushed.
 */
import * as os from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { Authorizer, authSettings, isLoopback, serverCredentials } from "../auth/index.js";
import type { ServerConfig } from "../config/schema.js";
import { ConnectionStreams, RunGuards } from "../limits/index.js";
import { RunRegistry, type JournalObserver, type RunHooks, type RunObserver } from "../runs/index.js";
import { createLogger, type Logger } from "../util/log.js";
import { HealthService } from "./health.js";
import { mixerHandlers, tolerantDeserializers, type EdgeGuards, type StreamTracker } from "./mixer-service.js";
import { healthService, loadMixflowProto, mixerService } from "./proto.js";
import type { CallObserver } from "./wrap.js";
import { precondition, unavailable } from "../errors.js";

export interface ServerOptions {
  readonly config: ServerConfig;
  /** Relative paths in the config resolve against this directory (the config file's). */
  readonly baseDir?: string;
  readonly logger?: Logger;
  /** Metrics hooks (src/metrics: `createMetrics(config.metrics).observer`). */
  readonly observer?: RunObserver & JournalObserver & Partial<CallObserver> & { streams?(kind: string, run: string, delta: number): void };
  /** Cluster mode: the replica's run hooks (src/cluster ClusterNode.hooks()). */
  readonly runHooks?: RunHooks;
}

export class MixflowServer {
  readonly registry: RunRegistry;
  readonly logger: Logger;
  /** The bound gRPC address (host:port). */
  readonly address: string;
  private readonly grpcServer: grpc.Server;
  private readonly health: HealthService;
  private readonly openStreams = new Set<() => void>();
  private readonly connStreams: ConnectionStreams;
  private draining = false;
  private stopping: Promise<void> | null = null;

  private constructor(
    registry: RunRegistry,
    grpcServer: grpc.Server,
    health: HealthService,
    address: string,
    logger: Logger,
    connStreams: ConnectionStreams,
  ) {
    this.connStreams = connStreams;
    this.registry = registry;
    this.grpcServer = grpcServer;
    this.health = health;
    this.address = address;
    this.logger = logger;
  }

  static async start(opts: ServerOptions): Promise<MixflowServer> {
    // Per-slot arrays and token payloads are written through typed arrays, which use the
    // platform's byte order; the wire format is little-endian.
    if (os.endianness() !== "LE") throw precondition("mixflow needs a little-endian platform (x64, arm64)");
    const cfg = opts.config;
    const logger = opts.logger ?? createLogger(cfg.logLevel);
    const baseDir = path.resolve(opts.baseDir ?? ".");
    // Credentials and tokens first: a bad auth or TLS setup fails before any state opens.
    const auth = Authorizer.open(authSettings(cfg, baseDir));
    const credentials = serverCredentials(cfg, baseDir);
    const lim = cfg.limits;
    const edge: EdgeGuards = {
      auth,
      runs: new RunGuards({ reportsPerSecond: lim.reportsPerSecond, reportBurst: lim.reportBurst, maxRanksPerRun: lim.maxRanksPerRun }),
      streams: new ConnectionStreams(lim.maxStreamsPerConnection),
      maxConfigBytes: lim.maxConfigBytes,
      maxDomainsPerRun: lim.maxDomainsPerRun,
      maxRanksPerRun: lim.maxRanksPerRun,
    };
    const registry = await RunRegistry.open({
      config: cfg,
      baseDir,
      logger,
      ...(opts.observer ? { observer: opts.observer } : {}),
      ...(opts.runHooks ? { hooks: opts.runHooks } : {}),
    });
    const server = new grpc.Server({
      "grpc.max_receive_message_length": lim.maxReceiveMessageBytes,
      "grpc.max_send_message_length": lim.maxMessageBytes,
      "grpc.max_concurrent_streams": lim.maxCallsPerConnection,
      "grpc.keepalive_permit_without_calls": 1,
    });
    const { definition, grpcObject } = loadMixflowProto();
    const health = new HealthService();
    let self: MixflowServer | null = null;
    const tracker: StreamTracker = {
      open: (kind, run, end) => {
        self?.openStreams.add(end);
        opts.observer?.streams?.(kind, run, 1);
        return () => {
          self?.openStreams.delete(end);
          opts.observer?.streams?.(kind, run, -1);
        };
      },
      get draining() {
        return self?.draining ?? false;
      },
    };
    const callObs: CallObserver | undefined = opts.observer?.handled
      ? { handled: (m, c, s) => opts.observer!.handled!(m, c, s) }
      : undefined;
    server.addService(tolerantDeserializers(mixerService(grpcObject)), mixerHandlers(registry, tracker, callObs, edge));
    server.addService(healthService(grpcObject), health.handlers());
    new ReflectionService(definition).addToServer(server);
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(cfg.listen, credentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (e) {
      await registry.shutdown();
      throw unavailable(`cannot listen on ${cfg.listen}: ${(e as Error).message}`);
    }
    const host = cfg.listen.slice(0, cfg.listen.lastIndexOf(":"));
    self = new MixflowServer(registry, server, health, `${host}:${port}`, logger, edge.streams);
    logger.info("listening", { address: self.address, tls: cfg.tls !== undefined, auth: auth.enabled });
    if (!auth.enabled && !isLoopback(cfg.listen)) {
      const msg = `auth is disabled but the server listens on ${cfg.listen}, a non-loopback address: anyone who can reach it can create, close and feed runs. Set auth.adminTokenFile (or adminTokenEnv) in the config, or listen on 127.0.0.1.`;
      logger.warn("AUTH DISABLED ON A NETWORK ADDRESS", { listen: cfg.listen });
      process.stderr.write(`\n*** mixflow WARNING: ${msg} ***\n\n`);
    }
    return self;
  }

  /** Server streams (StreamBatches, WatchWeights) open now, and the connections holding them. */
  streamStats(): { open: number; connections: number } {
    return { open: this.connStreams.count, connections: this.connStreams.connections };
  }

  /** Drain and stop. Safe to call more than once. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<void> {
    this.draining = true;
    this.health.setServing(false);
    for (const end of [...this.openStreams]) end();
    // drained: every call finished within the grace period (nothing is still being served).
    const drained = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve(false);
      }, graceMs);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
    await this.registry.shutdown({ drained });
    this.logger.info("stopped");
  }
}
