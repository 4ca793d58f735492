import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cache = new Map<string, string>();

/**
 * The source of `src/server/infra/lua/<file>`. Looked up beside this module
 * first (tsx, vitest), then under the working directory, because the bundled
 * server (`dist/server.js`) no longer sits next to the source tree.
 */
export function luaSource(file: string): string {
  const hit = cache.get(file);
  if (hit !== undefined) return hit;
  const candidates: string[] = [];
  try {
    candidates.push(path.join(path.dirname(fileURLToPath(import.meta.url)), "lua", file));
  } catch {
    // import.meta.url is not a file: URL inside some bundles
  }
  candidates.push(path.join(process.cwd(), "src", "server", "infra", "lua", file));
  for (const candidate of candidates) {
    try {
      const source = readFileSync(candidate, "utf8");
      cache.set(file, source);
      return source;
    } catch {
      // try the next place
    }
  }
  throw new Error(`Lua script ${file} not found (looked in ${candidates.join(", ")})`);
}

/** Every Lua script the service runs, as ioredis commands: name, keys, file. */
export const LUA_COMMANDS = [
  { name: "fpTokenBucket", numberOfKeys: 1, file: "token-bucket.lua" },
  { name: "fpCircuit", numberOfKeys: 2, file: "circuit-breaker.lua" },
  { name: "fpSaleReserve", numberOfKeys: 5, file: "flash-sale-reserve.lua" },
  { name: "fpSaleFinish", numberOfKeys: 4, file: "flash-sale-finish.lua" },
  { name: "fpSaleSweep", numberOfKeys: 3, file: "flash-sale-sweep.lua" },
  { name: "fpSaleWarm", numberOfKeys: 5, file: "flash-sale-warm.lua" },
  { name: "fpSaleReconcile", numberOfKeys: 2, file: "flash-sale-reconcile.lua" },
  { name: "fpServerTime", numberOfKeys: 1, file: "server-time.lua" },
] as const;

type Definable = { defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void };

/**
 * Defines every script on a new client, before it sends anything. It must be
 * done up front: ioredis' auto-pipelining builds each pipeline with the
 * commands defined at that moment, so a command defined later, while a
 * pipeline is open, fails inside it (and takes the process down).
 */
export function defineLuaCommands(client: Definable): void {
  for (const c of LUA_COMMANDS) client.defineCommand(c.name, { numberOfKeys: c.numberOfKeys, lua: luaSource(c.file) });
}
