/**
 * A burst of HTTP calls from a process of its own, so the client's work does
 * not share the server's event loop: `node --import tsx src/test/burst-client.ts`
 * with a JSON job on stdin ({url, path, headers, bodies, warm}); prints one
 * JSON line: each call's status, body and time (ms from the burst's start).
 * With `warm`, every connection is opened first (one call each), as a
 * service's keep-alive pool would have them.
 */
import { Agent, request } from "node:http";

type Job = { url: string; path: string; headers: Record<string, string>; bodies: unknown[]; warm?: { path: string; body: unknown } };
export type BurstAnswer = { status: number; body: string; ms: number };

async function main(): Promise<void> {
  let input = "";
  for await (const chunk of process.stdin) input += String(chunk);
  const job = JSON.parse(input) as Job;
  const agent = new Agent({ keepAlive: true, maxSockets: job.bodies.length, maxFreeSockets: job.bodies.length });
  const target = new URL(job.url);
  const call = (path: string, body: unknown) =>
    new Promise<{ status: number; body: string }>((resolve) => {
      const data = JSON.stringify(body);
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path,
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...job.headers },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", (err) => resolve({ status: 0, body: String(err) }));
      req.end(data);
    });
  if (job.warm) await Promise.all(job.bodies.map(() => call(job.warm!.path, job.warm!.body)));
  const t0 = performance.now();
  const answers: BurstAnswer[] = await Promise.all(job.bodies.map(async (b) => ({ ...(await call(job.path, b)), ms: performance.now() - t0 })));
  process.stdout.write(`${JSON.stringify(answers)}\n`);
  agent.destroy();
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
