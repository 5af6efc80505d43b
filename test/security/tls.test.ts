/**
 * TLS and mutual TLS with certificates generated here by the openssl CLI (a CA, a server
 * certificate for 127.0.0.1/localhost, a client certificate, and a second CA the server
 * does not trust): real handshakes through the TypeScript client, and rejected clients.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MixflowClient } from "../../src/client/index.js";
import { makeDataDir, removeDir, runConfigFor, startServer } from "./helpers.js";
import { requireTool } from "../helpers/tools.js";

const ADMIN = "tls-admin-token-0123456789";

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA (ca.pem) signing server.pem (SAN 127.0.0.1, localhost) and client.pem; plus an untrusted other-ca and rogue client. */
function makePki(dir: string): void {
  requireTool("openssl");
  const ca = (name: string) => {
    openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.pem`);
  };
  const leaf = (name: string, signer: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.pem`, "-CAkey", `${signer}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  };
  ca("ca");
  ca("other-ca");
  leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
  leaf("rogue", "other-ca", "extendedKeyUsage=clientAuth\n");
}

describe("TLS and mTLS", () => {
  let dir: string;
  const pem = (n: string) => readFileSync(join(dir, n));

  beforeAll(() => {
    dir = makeDataDir(20);
    makePki(dir);
  });
  afterAll(() => removeDir(dir));

  it("server TLS: a client trusting the CA completes the handshake; plaintext and untrusting clients fail", async () => {
    const server = await startServer(dir, { tls: { cert: "server.pem", key: "server.key" }, runs: [runConfigFor("t1")] });
    const port = server.address.split(":").pop()!;
    try {
      for (const host of ["127.0.0.1", "localhost"]) {
        const ok = new MixflowClient(`${host}:${port}`, { credentials: grpc.credentials.createSsl(pem("ca.pem")), deadlineMs: 5000 });
        expect((await ok.getRun("t1")).runId).toBe("t1");
        const b = await ok.nextBatch("t1", 0, 0);
        expect(b.slots).toBe(4);
        ok.close();
      }
      const plain = new MixflowClient(server.address, { deadlineMs: 2000 });
      await expect(plain.getRun("t1")).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      plain.close();
      const wrongCa = new MixflowClient(server.address, { credentials: grpc.credentials.createSsl(pem("other-ca.pem")), deadlineMs: 2000 });
      await expect(wrongCa.getRun("t1")).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      wrongCa.close();
    } finally {
      await server.stop();
    }
  });

  it("mTLS: a client certificate from the CA is accepted; no certificate or one from another CA is rejected", async () => {
    const server = await startServer(dir, {
      tls: { cert: "server.pem", key: "server.key", ca: "ca.pem", requireClientCert: true },
      auth: { adminToken: ADMIN },
      runs: [runConfigFor("t2")],
    });
    try {
      const good = new MixflowClient(server.address, {
        credentials: grpc.credentials.createSsl(pem("ca.pem"), pem("client.key"), pem("client.pem")),
        token: ADMIN,
        deadlineMs: 5000,
      });
      expect((await good.listRuns()).map((r) => r.runId)).toContain("t2");
      // TLS does not replace auth: the same good certificate without the token is refused.
      const noToken = new MixflowClient(server.address, {
        credentials: grpc.credentials.createSsl(pem("ca.pem"), pem("client.key"), pem("client.pem")),
        deadlineMs: 5000,
      });
      await expect(noToken.listRuns()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      good.close();
      noToken.close();

      const noCert = new MixflowClient(server.address, { credentials: grpc.credentials.createSsl(pem("ca.pem")), token: ADMIN, deadlineMs: 3000 });
      await expect(noCert.listRuns()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      noCert.close();
      const rogue = new MixflowClient(server.address, {
        credentials: grpc.credentials.createSsl(pem("ca.pem"), pem("rogue.key"), pem("rogue.pem")),
        token: ADMIN,
        deadlineMs: 3000,
      });
      await expect(rogue.listRuns()).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      rogue.close();
    } finally {
      await server.stop();
    }
  });

  it("a missing certificate file fails at start with the field named", async () => {
    await expect(startServer(dir, { tls: { cert: "nope.pem", key: "server.key" } })).rejects.toThrow(/tls\.cert: cannot read .*nope\.pem: ENOENT/);
  });
});
