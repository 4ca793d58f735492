/**
 * An open-loop load generator: call k is due at start + k / rate and is sent
 * then, however many earlier calls are still unanswered; its latency is
 * counted from that due time, not from when a socket became free. So a
 * server that stalls is charged for every call that waited behind the stall
 * (no coordinated omission), unlike a closed loop (autocannon, even with
 * `overallRate`), which simply stops sending while it waits.
 *
 * Node's own HTTP client with a keep-alive agent; when every socket is busy
 * the agent queues the call, and that wait counts too.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";
import { appCodeOf, countInto, type ErrorMix, type RawRun } from "./lib";

export type OpenLoopSpec = {
  url: string;
  path: string;
  apiKey: string;
  /** Calls per second, sent at fixed intervals. */
  rate: number;
  seconds: number;
  /** A fresh JSON body per call. */
  body: () => unknown;
  /** Most sockets open at once (past it calls queue in the client, still timed from their due time). */
  maxSockets?: number;
  /** A call unanswered this long after its due time counts as `timeout`. */
  timeoutMs?: number;
};

export type OpenLoopRun = RawRun & {
  /** Calls due (and sent) in the run. */
  sent: number;
  /** How far behind its due time the generator itself sent a call, at worst, ms. */
  maxSendLagMs: number;
};

export async function runOpenLoop(spec: OpenLoopSpec): Promise<OpenLoopRun> {
  const target = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.maxSockets ?? 256 });
  const timeoutMs = spec.timeoutMs ?? 30_000;
  const total = Math.max(1, Math.round(spec.rate * spec.seconds));
  const intervalMs = 1000 / spec.rate;
  const errors: ErrorMix = {};
  const latenciesMs: number[] = [];
  let ok = 0;
  let answered = 0;
  let maxSendLagMs = 0;
  const pending = new Set<Promise<void>>();

  const send = (dueAt: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const payload = JSON.stringify(spec.body());
      let settled = false;
      const finish = (code: string | null) => {
        if (settled) return;
        settled = true;
        answered++;
        if (code === null) ok++;
        else countInto(errors, code);
        if (code !== "timeout" && code !== "connection error") latenciesMs.push(performance.now() - dueAt);
        resolve();
      };
      const req = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          method: "POST",
          path: spec.path,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
            authorization: `Bearer ${spec.apiKey}`,
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            res.resume();
            res.once("end", () => finish(null));
            return;
          }
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.once("end", () => finish(appCodeOf(status, Buffer.concat(chunks).toString("utf8"))));
        },
      );
      req.once("error", () => finish("connection error"));
      const timer = setTimeout(() => {
        finish("timeout");
        req.destroy();
      }, Math.max(1, dueAt + timeoutMs - performance.now()));
      timer.unref();
      req.once("close", () => clearTimeout(timer));
      req.end(payload);
    });

  const started = performance.now();
  let k = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // Every call due by now goes out now, each timed from its own due time.
      while (k < total && started + k * intervalMs <= now) {
        const dueAt = started + k * intervalMs;
        maxSendLagMs = Math.max(maxSendLagMs, now - dueAt);
        const p = send(dueAt);
        pending.add(p);
        void p.then(() => pending.delete(p));
        k++;
      }
      if (k >= total) return resolve();
      setTimeout(tick, Math.max(0, started + k * intervalMs - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  agent.destroy();
  // The send window: answered calls per second of it is the rate achieved.
  return { seconds: total / spec.rate, calls: answered, ok, errors, latenciesMs, sent: total, maxSendLagMs };
}
