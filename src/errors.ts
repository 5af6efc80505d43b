/**
 * One error type for the whole server, with a closed set of stable codes named after the
 * gRPC status codes they become. Inner code throws `MixflowError` (or a subclass, e.g. the
 * journal's and the sources' errors); only the server edge (`src/server/wrap.ts`) knows the
 * wire and turns it, or anything else that escaped, into a status with `MixflowError.from`.
 * This module imports nothing, so storage code (the journal) can use it without the server.
 */

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "OUT_OF_RANGE"
  | "RESOURCE_EXHAUSTED"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "UNAVAILABLE"
  | "CANCELLED"
  | "DEADLINE_EXCEEDED"
  | "DATA_LOSS"
  | "INTERNAL";

export class MixflowError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MixflowError";
    this.code = code;
  }

  /**
   * Normalise anything caught into a MixflowError. An operating-system I/O error (errno
   * code such as EIO, ENOSPC, EFBIG) is the storage failing, not the request: UNAVAILABLE,
   * which clients retry. Anything else unknown becomes INTERNAL.
   */
  static from(e: unknown): MixflowError {
    if (e instanceof MixflowError) return e;
    if (isIoError(e)) return unavailable(`storage error: ${e.message}`, e);
    if (e instanceof Error) return new MixflowError("INTERNAL", `internal error: ${e.message}`, { cause: e });
    return new MixflowError("INTERNAL", `internal error: ${String(e)}`);
  }
}

function isIoError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!);
}

/** Shorthands used at validation sites. */
export const invalid = (msg: string): MixflowError => new MixflowError("INVALID_ARGUMENT", msg);
export const notFound = (msg: string): MixflowError => new MixflowError("NOT_FOUND", msg);
export const precondition = (msg: string): MixflowError => new MixflowError("FAILED_PRECONDITION", msg);
export const outOfRange = (msg: string): MixflowError => new MixflowError("OUT_OF_RANGE", msg);
export const internal = (msg: string, cause?: unknown): MixflowError => new MixflowError("INTERNAL", msg, cause === undefined ? undefined : { cause });
export const unavailable = (msg: string, cause?: unknown): MixflowError =>
  new MixflowError("UNAVAILABLE", msg, cause === undefined ? undefined : { cause });

/**
 * A journal write failed (I/O error, or the journal stopped after an earlier failure or at
 * shutdown): nothing of the request was acknowledged, and the same request may succeed
 * once the server has been restarted and its journal reopened, so the status is
 * UNAVAILABLE (retryable), never INTERNAL (which clients treat as permanent).
 */
export function journalUnavailable(e: unknown): MixflowError {
  const why = e instanceof Error ? e.message : String(e);
  return unavailable(`journal unavailable, nothing was recorded: ${why}; retry once the server is restarted`, e);
}
