/**
 * One error type for the whole server, with a closed set of codes that map 1:1 onto gRPC
 * status codes. Inner code throws `MixflowError`; the server edge turns it (or anything
 * else that escaped) into a status with `MixflowError.from`.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";

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
  | "INTERNAL";

const TO_GRPC: Record<ErrorCode, GrpcStatus> = {
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  OUT_OF_RANGE: GrpcStatus.OUT_OF_RANGE,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  CANCELLED: GrpcStatus.CANCELLED,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  INTERNAL: GrpcStatus.INTERNAL,
};

export class MixflowError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MixflowError";
    this.code = code;
  }

  /** The gRPC status code for this error. */
  get grpcCode(): GrpcStatus {
    return TO_GRPC[this.code];
  }

  /** Normalise anything caught into a MixflowError (unknown errors become INTERNAL). */
  static from(e: unknown): MixflowError {
    if (e instanceof MixflowError) return e;
    if (e instanceof Error) return new MixflowError("INTERNAL", `internal error: ${e.message}`, { cause: e });
    return new MixflowError("INTERNAL", `internal error: ${String(e)}`);
  }
}

/** Shorthands used at validation sites. */
export const invalid = (msg: string): MixflowError => new MixflowError("INVALID_ARGUMENT", msg);
export const notFound = (msg: string): MixflowError => new MixflowError("NOT_FOUND", msg);
export const precondition = (msg: string): MixflowError => new MixflowError("FAILED_PRECONDITION", msg);
export const outOfRange = (msg: string): MixflowError => new MixflowError("OUT_OF_RANGE", msg);
