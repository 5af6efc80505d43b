/**
 * Certificates for the cluster's TLS tests, made by the openssl CLI in a directory: a CA
 * ("ca") and an untrusted one ("other-ca"); leaves signed by either, each with the SAN and
 * extended key usage asked for. Files: <name>.pem and <name>.key.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { requireTool } from "../helpers/tools.js";

export function makeCa(dir: string, name: string): void {
  requireTool("openssl");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`], { cwd: dir, stdio: "pipe" });
}

/** A leaf certificate `name` signed by CA `signer`; `ext` is openssl extension config (SAN, EKU). */
export function makeLeaf(dir: string, name: string, signer: string, ext: string): void {
  requireTool("openssl");
  const run = (...args: string[]): void => void execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  run("x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.pem`, "-CAkey", `${signer}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
}
