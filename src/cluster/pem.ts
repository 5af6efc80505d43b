/**
 * Reading the PEM files the cluster flags name (etcd's TLS files, the forward service's
 * mutual TLS). One reader, so a bad file is refused the same way for every flag: at
 * startup, naming the flag and the file and why, never the file's contents (a private key
 * must not end up in a log).
 */
import * as fs from "node:fs";
import { ClusterError } from "./errors.js";

/** The file's bytes, or BAD_SETTINGS if it cannot be read or holds no PEM block. */
export function readPem(flag: string, file: string): Buffer {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new ClusterError("BAD_SETTINGS", `${flag} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "read error"})`);
  }
  if (!b.toString("latin1").includes("-----BEGIN ")) throw new ClusterError("BAD_SETTINGS", `${flag} ${file}: not a PEM file (no "-----BEGIN" line)`);
  return b;
}
