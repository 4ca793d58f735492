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
