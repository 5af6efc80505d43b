/**
 * The mixflow server: gRPC (Mixer, health, reflection) over the run registry, started and
 * stopped as one unit. Shutdown drains: health turns NOT_SERVING, open streams end
 * cleanly at their next step, queued aggregations finish, the journal is flushed.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import type { ServerConfig } from "../config/schema.js";
import { RunRegistry } from "../runs/registry.js";
import type { RunObserver } from "../runs/run.js";
import { createLogger, type Logger } from "../util/log.js";
import { HealthService } from "./health.js";
import { mixerHandlers, type StreamTracker } from "./mixer-service.js";
import { healthService, loadMixflowProto, mixerService } from "./proto.js";
import type { CallObserver } from "./wrap.js";

export interface ServerOptions {
  readonly config: ServerConfig;
  /** Relative paths in the config resolve against this directory (the config file's). */
  readonly baseDir?: string;
  readonly logger?: Logger;
  readonly observer?: RunObserver & Partial<CallObserver> & { streams?(kind: string, run: string, delta: number): void };
}

export class MixflowServer {
  readonly registry: RunRegistry;
  readonly logger: Logger;
  /** The bound gRPC address (host:port). */
  readonly address: string;
  private readonly grpcServer: grpc.Server;
  private readonly health: HealthService;
  private readonly openStreams = new Set<() => void>();
  private draining = false;
  private stopping: Promise<void> | null = null;

  private constructor(registry: RunRegistry, grpcServer: grpc.Server, health: HealthService, address: string, logger: Logger) {
    this.registry = registry;
    this.grpcServer = grpcServer;
    this.health = health;
    this.address = address;
    this.logger = logger;
  }

  static async start(opts: ServerOptions): Promise<MixflowServer> {
    const cfg = opts.config;
    const logger = opts.logger ?? createLogger(cfg.logLevel);
    const baseDir = path.resolve(opts.baseDir ?? ".");
    const registry = await RunRegistry.open({ config: cfg, baseDir, logger, ...(opts.observer ? { observer: opts.observer } : {}) });
    const limit = cfg.limits.maxMessageBytes;
    const server = new grpc.Server({
      "grpc.max_receive_message_length": limit,
      "grpc.max_send_message_length": limit,
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
    server.addService(mixerService(grpcObject), mixerHandlers(registry, tracker, callObs));
    server.addService(healthService(grpcObject), health.handlers());
    new ReflectionService(definition).addToServer(server);
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(cfg.listen, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (e) {
      await registry.shutdown();
      throw new Error(`cannot listen on ${cfg.listen}: ${(e as Error).message}`);
    }
    const host = cfg.listen.slice(0, cfg.listen.lastIndexOf(":"));
    self = new MixflowServer(registry, server, health, `${host}:${port}`, logger);
    logger.info("listening", { address: self.address });
    return self;
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
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve();
      }, graceMs);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    await this.registry.shutdown();
    this.logger.info("stopped");
  }
}
