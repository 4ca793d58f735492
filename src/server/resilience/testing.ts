import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Db } from "~/server/infra/db";
import type { Deps } from "~/server/infra/deps";
import { circuitConfigSetting } from "./circuit-breaker";
import { updateSetting } from "./settings-update";

/**
 * Test support for admission control (integration only; imports nothing of
 * vitest): a webhook receiver and settings clean-up.
 */
/** Settings rows back to "none" (defaults), so other test files see the env's limits. */
export async function clearSettings(db: Db): Promise<void> {
  await db.setting.deleteMany({});
}

/**
 * Breakers that stay in play but open for a second rather than 30 (audited as
 * `who`): for runs that inject fault after fault, so one burst does not
 * silence the rest of the run.
 */
export async function setQuickBreakers(deps: Deps, who: string): Promise<void> {
  await updateSetting(deps, circuitConfigSetting, {
    actor: { email: `${who}@test.local`, role: "admin" },
    action: "circuit.config",
    target: "circuits",
    reason: `${who}: breakers that recover within a second`,
    change: () => ({ errorThreshold: 30, windowMs: 2000, openMs: 1000, halfOpenMs: 1000, probeRatio: 0.5 }),
  });
}

export type Webhook = { url: string; bodies: unknown[]; close: () => Promise<void> };

/** A local alert webhook that records every JSON body it receives. */
export async function startWebhook(): Promise<Webhook> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => (text += c.toString("utf8")));
    req.on("end", () => {
      try {
        bodies.push(JSON.parse(text));
      } catch {
        bodies.push(text);
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    bodies,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes; resolves to the elapsed ms (or -1). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 10): Promise<number> {
  const started = Date.now();
  while (Date.now() - started <= timeoutMs) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return -1;
}
