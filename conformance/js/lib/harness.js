// Start and stop a callsign server for the JS conformance tests (contract: conformance/README.md).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, accessSync, constants, openSync, closeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

const STARTUP_TIMEOUT_MS = 60_000;

export function callsignBin() {
  const bin = process.env.CALLSIGN_BIN;
  if (!bin) throw new Error("CALLSIGN_BIN is not set (use conformance/run.sh /path/to/callsign)");
  const abs = path.resolve(bin);
  accessSync(abs, constants.X_OK);
  return abs;
}

export async function startServer({ tls = false } = {}) {
  const bin = callsignBin();
  const accessKey = randomBytes(32).toString("base64");
  const workdir = mkdtempSync(path.join(tmpdir(), "callsign-conformance-js-"));
  const dataDir = path.join(workdir, "data");
  const stderrPath = path.join(workdir, "stderr.log");
  const args = ["serve", "--addr", "127.0.0.1:0", "--data", dataDir];
  if (tls) args.push("--tls");
  const errFd = openSync(stderrPath, "w");
  const child = spawn(bin, args, {
    env: { ...process.env, CALLSIGN_ACCESS_KEY: accessKey, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", errFd],
  });
  closeSync(errFd);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const stderrTail = () => {
    try {
      return readFileSync(stderrPath, "utf8").split("\n").slice(-40).join("\n");
    } catch {
      return "";
    }
  };

  const seen = [];
  const info = {};
  const rl = createInterface({ input: child.stdout });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("callsign did not print its endpoint within 60 s")),
        STARTUP_TIMEOUT_MS,
      );
      const done = (err) => {
        clearTimeout(timer);
        err ? reject(err) : resolve();
      };
      // The interface keeps draining stdout after startup, so the server never blocks on it.
      rl.on("line", (line) => {
        seen.push(line);
        if (line.startsWith("endpoint: ")) info.endpoint = line.slice("endpoint: ".length).trim();
        else if (line.startsWith("connection string: "))
          info.connectionString = line.slice("connection string: ".length).trim();
        else if (line.startsWith("ca certificate: ")) info.caPath = line.slice("ca certificate: ".length).trim();
        if (info.endpoint && info.connectionString && (!tls || info.caPath)) done();
      });
      child.once("exit", (code) => done(new Error(`callsign exited (code ${code}) before printing its endpoint`)));
      child.once("error", done);
    });
    if (!tls) {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      for (;;) {
        try {
          const res = await fetch(new URL("healthz", info.endpoint));
          if (res.status === 200) break;
        } catch {
          // not ready yet
        }
        if (Date.now() > deadline) throw new Error("GET /healthz did not return 200 within 60 s");
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    rmSync(workdir, { recursive: true, force: true });
    err.message += `\nstdout: ${JSON.stringify(seen)}\nstderr tail:\n${stderrTail()}`;
    throw err;
  }

  return {
    ...info,
    accessKey,
    stderrTail,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(killer);
      }
      rl.close();
      rmSync(workdir, { recursive: true, force: true });
    },
  };
}

/** Decodes a JWT's header and payload (base64url) without verifying it. */
export function decodeJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error(`not a JWT: ${token}`);
  const dec = (s) => JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
  return { header: dec(parts[0]), payload: dec(parts[1]) };
}
