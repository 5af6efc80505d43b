/**
 * The writer's queue entries (journal.ts, "Concurrency model"): every call becomes one of
 * these, synchronously, with its final place on disk; one loop executes them in order.
 * Consecutive appends share a batch (one write, one fsync); rotation, checkpoint and close
 * are barriers.
 */

export type Resolver = (v: never) => void;

export interface BatchOp {
  kind: "batch";
  seg: number;
  buf: Buffer;
  used: number;
  records: number;
  openedAt: number;
  resolves: Resolver[];
  rejects: ((e: unknown) => void)[];
  values: unknown[];
}
export interface RotateOp {
  kind: "rotate";
  seg: number;
}
export interface CheckpointOp {
  kind: "checkpoint";
  seg: number;
  buf: Buffer;
  records: number;
  dropOlder: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}
export interface CloseOp {
  kind: "close";
  resolve: () => void;
  reject: (e: unknown) => void;
}
export type Op = BatchOp | RotateOp | CheckpointOp | CloseOp;
