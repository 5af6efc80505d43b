/**
 * The HTTP endpoint that exposes a metrics registry: GET /metrics in the Prometheus text
 * format, nothing else (405 for other methods, 404 for other paths). Kept apart from the
 * series themselves (index.ts), which know nothing about HTTP.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { invalid, precondition, unavailable } from "../errors.js";
import type { Logger } from "../util/log.js";

/** "host:port" / "[v6]:port" → parts. */
export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  if (i < 0) throw invalid(`metrics.listen: expected HOST:PORT, got "${listen}"`);
  let host = listen.slice(0, i);
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`metrics.listen: bad port in "${listen}"`);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host, port };
}

/** Start/stop of one endpoint serving `registry` on `listen`. */
export function metricsEndpoint(registry: Registry, listen: string, logger?: Logger): { start(): Promise<string>; stop(): Promise<void> } {
  let server: http.Server | null = null;
  return {
    async start() {
      if (server) throw precondition("metrics endpoint already started");
      const { host, port } = parseListen(listen);
      const srv = http.createServer((req, res) => {
        const url = (req.url ?? "/").split("?")[0];
        if (req.method !== "GET" && req.method !== "HEAD") {
          res.writeHead(405, { allow: "GET, HEAD" }).end();
          return;
        }
        if (url === "/metrics") {
          registry.metrics().then(
            (text) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : text),
            (e: unknown) => {
              logger?.error("metrics collection failed", { error: String(e) });
              res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
            },
          );
          return;
        }
        if (url === "/") {
          res.writeHead(200, { "content-type": "text/plain" }).end("mixflow metrics: GET /metrics\n");
          return;
        }
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      });
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(port, host, () => {
          srv.off("error", reject);
          resolve();
        });
      }).catch((e: unknown) => {
        throw unavailable(`cannot listen for metrics on ${listen}: ${(e as Error).message}`);
      });
      server = srv;
      const a = srv.address() as AddressInfo;
      const address = `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
      logger?.info("metrics listening", { address });
      return address;
    },
    async stop() {
      const srv = server;
      server = null;
      if (!srv) return;
      await new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      });
    },
  };
}
