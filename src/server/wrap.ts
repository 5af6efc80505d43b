/**
 * Every handler goes through these wrappers: a thrown error or rejected promise becomes a
 * proper gRPC status (never a crash, never a hung call), and each call's method, code and
 * duration reach the observer (metrics).
 */
import * as grpc from "@grpc/grpc-js";
import { MixflowError, type ErrorCode } from "../errors.js";

const TO_GRPC: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  CANCELLED: grpc.status.CANCELLED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  DATA_LOSS: grpc.status.DATA_LOSS,
  INTERNAL: grpc.status.INTERNAL,
};

export interface CallObserver {
  handled(method: string, code: grpc.status, seconds: number): void;
}

export function toServiceError(e: unknown): Partial<grpc.ServiceError> {
  const m = MixflowError.from(e);
  return { code: TO_GRPC[m.code], details: m.message, message: m.message };
}

export function unary<Req, Res>(
  method: string,
  obs: CallObserver | undefined,
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const t0 = performance.now();
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => {
          obs?.handled(method, grpc.status.OK, (performance.now() - t0) / 1000);
          callback(null, res);
        },
        (e: unknown) => {
          const se = toServiceError(e);
          obs?.handled(method, se.code!, (performance.now() - t0) / 1000);
          callback(se as grpc.ServiceError);
        },
      );
  };
}

export function serverStream<Req, Res>(
  method: string,
  obs: CallObserver | undefined,
  fn: (req: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const t0 = performance.now();
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        () => {
          obs?.handled(method, grpc.status.OK, (performance.now() - t0) / 1000);
          if (!call.writableEnded && !call.cancelled) call.end();
        },
        (e: unknown) => {
          const se = toServiceError(e);
          obs?.handled(method, call.cancelled ? grpc.status.CANCELLED : se.code!, (performance.now() - t0) / 1000);
          // emit("error"), not destroy(): grpc-js sends the status from its own "error"
          // listener; a destroyed stream never reaches _final, so the call would hang.
          // The status object itself: grpc-js takes code, details and metadata from it.
          if (!call.cancelled) call.emit("error", se);
        },
      );
  };
}
