import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { loadEnv } from "./env";
import { createLogger } from "./logger";
import { ManualClock } from "./clock";
import type { Metrics } from "./metrics";
import { sendAlert } from "./alerts";

let server: Server;
let base: string;
const received: { path: string; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString()));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(text || "null") });
      if (req.url === "/slow") setTimeout(() => res.writeHead(204).end(), 1_000);
      else res.writeHead(req.url === "/broken" ? 500 : 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function deps(url?: string) {
  return {
    env: loadEnv({ DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none", ...(url ? { ALERT_WEBHOOK_URL: url } : {}) }),
    log: createLogger("silent"),
    clock: new ManualClock(Date.UTC(2030, 0, 1)),
    metrics: { registry: new Registry() } as unknown as Metrics,
  };
}

const alert = { kind: "circuit.open", severity: "critical" as const, summary: "credit.deduct opened", details: { circuit: "credit.deduct" } };

describe("sendAlert", () => {
  it("POSTs the alert as JSON to ALERT_WEBHOOK_URL and counts it", async () => {
    const d = deps(`${base}/ok`);
    expect(await sendAlert(d, alert)).toBe(true);
    expect(received.at(-1)).toEqual({
      path: "/ok",
      body: {
        service: "flashpoints",
        kind: "circuit.open",
        severity: "critical",
        summary: "credit.deduct opened",
        details: { circuit: "credit.deduct" },
        at: "2030-01-01T00:00:00.000Z",
      },
    });
    expect(await d.metrics.registry.getSingleMetricAsString("fp_alerts_total")).toContain('kind="circuit.open",outcome="sent"} 1');
  });

  it("never throws: no URL, an error status or a slow receiver just count as not delivered", async () => {
    expect(await sendAlert(deps(), alert)).toBe(false);
    const broken = deps(`${base}/broken`);
    const before = received.length;
    expect(await sendAlert(broken, alert)).toBe(false);
    // Tried three times, counted once.
    expect(received.length - before).toBe(3);
    expect(await broken.metrics.registry.getSingleMetricAsString("fp_alerts_total")).toContain('outcome="failed"} 1');
    const started = Date.now();
    expect(await sendAlert(deps(`${base}/slow`), alert, { timeoutMs: 100, attempts: 1 })).toBe(false);
    expect(Date.now() - started).toBeLessThan(800);
    expect(await sendAlert(deps("http://127.0.0.1:1/closed"), alert, { attempts: 2 })).toBe(false);
  });
});
