/**
 * Bearer tokens: generation, digests and constant-time comparison. A token is only ever
 * held in memory as its SHA-256 digest, so what is compared, stored on disk or kept in a
 * map is never the secret itself; comparing fixed-length digests with
 * `crypto.timingSafeEqual` leaks neither the token's content nor its length.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A SHA-256 digest of a token (32 bytes). */
export type TokenDigest = Buffer;

/** Tokens shorter than this are refused: they are guessable. */
export const MIN_TOKEN_LENGTH = 16;

/** Prefix of generated run tokens, so secret scanners and people can recognise them. */
export const RUN_TOKEN_PREFIX = "mfr_";

/** The configured form of a pre-hashed token: "sha256:" and 64 hex digits. */
export const DIGEST_FORM = /^sha256:([0-9a-f]{64})$/;

export function digestToken(token: string): TokenDigest {
  return createHash("sha256").update(token, "utf8").digest();
}

/** A token as configured: clear text, or "sha256:<hex>" so the config need not hold the secret. */
export function digestConfigured(value: string): TokenDigest {
  const m = DIGEST_FORM.exec(value);
  return m ? Buffer.from(m[1]!, "hex") : digestToken(value);
}

/** Constant-time equality of two digests (both are always 32 bytes). */
export function sameDigest(a: TokenDigest, b: TokenDigest): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A fresh run token: 256 random bits, base64url, with the run-token prefix. */
export function generateRunToken(): string {
  return RUN_TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/**
 * The token of an `authorization` metadata value ("Bearer <token>", scheme
 * case-insensitive), or null when absent or malformed.
 */
export function bearerToken(values: readonly (string | Buffer)[]): string | null {
  if (values.length !== 1) return null;
  const v = values[0];
  if (typeof v !== "string") return null;
  const m = /^bearer[ ]+(\S+)\s*$/i.exec(v);
  return m ? m[1]! : null;
}
