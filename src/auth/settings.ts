/**
 * Turning the config's `auth` and `tls` sections into what the server runs with: the
 * admin token resolved from its source, and gRPC server credentials from PEM files.
 * Errors name the config field, so a bad deployment fails at start, not at first call.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { ServerConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import type { AuthSettings } from "./authorizer.js";

/** Resolve `auth` (admin token from clear text, a file or an environment variable). */
export function authSettings(cfg: ServerConfig, baseDir: string, env: NodeJS.ProcessEnv = process.env): AuthSettings {
  const a = cfg.auth;
  let admin: string | null = a.adminToken ?? null;
  if (a.adminTokenFile !== undefined) {
    const file = path.resolve(baseDir, a.adminTokenFile);
    try {
      admin = fs.readFileSync(file, "utf8").trim();
    } catch (e) {
      throw invalid(`auth.adminTokenFile: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (a.adminTokenEnv !== undefined) {
    const v = env[a.adminTokenEnv];
    if (v === undefined || v.trim() === "") throw invalid(`auth.adminTokenEnv: environment variable ${a.adminTokenEnv} is not set`);
    admin = v.trim();
  }
  const enabled = a.enabled ?? admin !== null;
  if (enabled && (admin === null || admin.length < 16)) {
    throw invalid("auth: the admin token must be at least 16 characters (generate one with `openssl rand -base64 32`)");
  }
  return {
    enabled,
    adminToken: enabled ? admin : null,
    runTokens: a.runTokens,
    stateDir: path.join(path.resolve(baseDir, cfg.dataDir), "auth"),
  };
}

/** Server credentials: insecure without `tls`, TLS (or mTLS) from PEM files with it. */
export function serverCredentials(cfg: ServerConfig, baseDir: string): grpc.ServerCredentials {
  const t = cfg.tls;
  if (!t) return grpc.ServerCredentials.createInsecure();
  const read = (field: string, p: string): Buffer => {
    const file = path.resolve(baseDir, p);
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw invalid(`tls.${field}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const cert = read("cert", t.cert);
  const key = read("key", t.key);
  const ca = t.ca !== undefined ? read("ca", t.ca) : null;
  try {
    return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], t.requireClientCert);
  } catch (e) {
    throw invalid(`tls: ${(e as Error).message}`);
  }
}

/** Whether a listen address only accepts local connections (loopback or a unix socket). */
export function isLoopback(listen: string): boolean {
  if (listen.startsWith("unix:")) return true;
  const host = listen.slice(0, listen.lastIndexOf(":")).replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
