/**
 * Who may call what. Two kinds of bearer token:
 * - the admin token: every RPC on every run (run management included);
 * - a run token: the run-scoped RPCs (GetRun, NextBatch, StreamBatches, ReportSignals,
 *   GetWeights, WatchWeights) of its own run only.
 * No token or an unknown token is UNAUTHENTICATED; a valid token used beyond its reach
 * (a run token on another run, or on CreateRun/ListRuns/CloseRun) is PERMISSION_DENIED.
 *
 * The check runs inside each Mixer handler rather than in a grpc-js server interceptor:
 * authorising a run token needs the request's run_id, which an interceptor only sees after
 * deserialisation in a separate callback, and rejecting there would bypass the handler
 * wrapper that records every call's status code (rejected requests by code in metrics).
 * Authentication (the token alone) is checked before anything in the request is looked at.
 */
import type * as grpc from "@grpc/grpc-js";
import { MixflowError } from "../errors.js";
import { bearerToken, digestConfigured, digestToken, generateRunToken, MIN_TOKEN_LENGTH, sameDigest, type TokenDigest } from "./tokens.js";
import { RunTokenStore } from "./token-store.js";

/** RPCs that only the admin token may call. */
export const ADMIN_METHODS: ReadonlySet<string> = new Set(["CreateRun", "ListRuns", "CloseRun"]);

/** The caller as established from its token. */
export type Principal = { readonly kind: "admin" } | { readonly kind: "run"; readonly runId: string } | { readonly kind: "open" };

/** What the server config says about auth, after the admin token was resolved. */
export interface AuthSettings {
  readonly enabled: boolean;
  /** The admin token in clear (resolved from adminToken/File/Env); required when enabled. */
  readonly adminToken: string | null;
  /** Run id → token ("sha256:<hex>" accepted) from the config file. */
  readonly runTokens: Readonly<Record<string, string>>;
  /** Where issued run tokens' digests are kept (`<dataDir>/auth`). */
  readonly stateDir: string;
}

const OPEN: Principal = { kind: "open" };
const ADMIN: Principal = { kind: "admin" };

export class Authorizer {
  readonly enabled: boolean;
  private readonly admin: TokenDigest | null;
  /** Hex digest → run id and digest, for every configured and issued run token. */
  private readonly byDigest = new Map<string, { runId: string; digest: TokenDigest }>();
  /** Run id → hex digest of its current token. */
  private readonly byRun = new Map<string, string>();
  /** Runs whose token comes from the config file (CreateRun does not replace it). */
  private readonly configured = new Set<string>();
  private readonly store: RunTokenStore | null;

  private constructor(enabled: boolean, admin: TokenDigest | null, store: RunTokenStore | null) {
    this.enabled = enabled;
    this.admin = admin;
    this.store = store;
  }

  /** Auth switched off: every call is allowed (local use on loopback). */
  static disabled(): Authorizer {
    return new Authorizer(false, null, null);
  }

  static open(s: AuthSettings): Authorizer {
    if (!s.enabled) return Authorizer.disabled();
    if (s.adminToken === null || s.adminToken.length < MIN_TOKEN_LENGTH) {
      throw new MixflowError("INVALID_ARGUMENT", `auth: the admin token must be at least ${MIN_TOKEN_LENGTH} characters`);
    }
    const store = RunTokenStore.open(s.stateDir);
    const a = new Authorizer(true, digestToken(s.adminToken), store);
    for (const [runId, hex] of store.entries()) a.bind(runId, Buffer.from(hex, "hex"));
    for (const [runId, token] of Object.entries(s.runTokens)) {
      a.bind(runId, digestConfigured(token));
      a.configured.add(runId);
    }
    return a;
  }

  /** Establish the caller from `authorization: Bearer <token>`; UNAUTHENTICATED if missing or unknown. */
  authenticate(md: grpc.Metadata): Principal {
    if (!this.enabled) return OPEN;
    const token = bearerToken(md.get("authorization"));
    if (token === null) {
      throw new MixflowError("UNAUTHENTICATED", "missing credentials: send metadata \"authorization: Bearer <token>\" (the admin token or the run's token)");
    }
    const d = digestToken(token);
    if (this.admin && sameDigest(d, this.admin)) return ADMIN;
    const hit = this.byDigest.get(d.toString("hex"));
    // The map lookup is keyed by a SHA-256 digest, which an attacker cannot steer toward a
    // stored one; the constant-time comparison re-checks the full digest anyway.
    if (hit !== undefined && sameDigest(d, hit.digest)) return { kind: "run", runId: hit.runId };
    throw new MixflowError("UNAUTHENTICATED", "invalid token");
  }

  /** PERMISSION_DENIED unless `p` may call `method` on `runId` (null for run management). */
  authorize(p: Principal, method: string, runId: string | null): void {
    if (p.kind !== "run") return;
    if (ADMIN_METHODS.has(method)) {
      throw new MixflowError("PERMISSION_DENIED", `${method} needs the admin token; a run token only reaches its own run's RPCs`);
    }
    if (runId !== p.runId) {
      throw new MixflowError("PERMISSION_DENIED", `this token belongs to another run, not to run "${runId ?? ""}"`);
    }
  }

  /**
   * A fresh token for a run just created by CreateRun, durable (as a digest) before it is
   * returned. Null when auth is off or the config file already fixes the run's token.
   */
  async issueRunToken(runId: string): Promise<string | null> {
    if (!this.enabled || !this.store || this.configured.has(runId)) return null;
    const token = generateRunToken();
    const digest = digestToken(token);
    await this.store.set(runId, digest.toString("hex"));
    this.bind(runId, digest);
    return token;
  }

  /** Make `digest` the run's token, replacing any earlier one. */
  private bind(runId: string, digest: TokenDigest): void {
    const hex = digest.toString("hex");
    const old = this.byRun.get(runId);
    if (old !== undefined) this.byDigest.delete(old);
    this.byRun.set(runId, hex);
    this.byDigest.set(hex, { runId, digest });
  }
}
