/**
 * The benchmark measures the production build: `dist/server.js` (the Node
 * entry) and `.next/` (the dashboard). Rebuilt unless both are newer than
 * every file under src/ and prisma/schema.prisma.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

const OUTPUTS = ["dist/server.js", ".next/BUILD_ID"];
const INPUTS = ["src", "prisma/schema.prisma"];

/** The newest file under `p` (a file or a folder), by modification time. */
function newest(p: string): { file: string; mtimeMs: number } {
  const st = statSync(p);
  if (!st.isDirectory()) return { file: p, mtimeMs: st.mtimeMs };
  let best = { file: p, mtimeMs: 0 };
  for (const e of readdirSync(p)) {
    const n = newest(path.join(p, e));
    if (n.mtimeMs > best.mtimeMs) best = n;
  }
  return best;
}

/** Why a build is needed, or null when the outputs are newer than every input. */
export function staleReason(): string | null {
  const missing = OUTPUTS.filter((o) => !existsSync(o));
  if (missing.length > 0) return `${missing.join(" and ")} missing`;
  const built = Math.min(...OUTPUTS.map((o) => statSync(o).mtimeMs));
  const input = INPUTS.filter((i) => existsSync(i))
    .map(newest)
    .reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a));
  if (input.mtimeMs >= built) return `${input.file} is newer than the build`;
  return null;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

/** Builds when needed (or only checks the outputs exist, with `skip`); prints what it does. */
export async function ensureBuild(skip: boolean): Promise<{ built: boolean; seconds: number }> {
  const t0 = Date.now();
  if (skip) {
    const missing = OUTPUTS.filter((o) => !existsSync(o));
    if (missing.length > 0) throw new Error(`--no-build, but ${missing.join(" and ")} missing: run \`npm run build\``);
    console.log("build: --no-build, using dist/ and .next/ as they are");
    return { built: false, seconds: 0 };
  }
  const reason = staleReason();
  if (!reason) {
    console.log("build: dist/server.js and .next/ are newer than src/ and prisma/schema.prisma, not rebuilding");
    return { built: false, seconds: 0 };
  }
  console.log(`build: ${reason}; running \`npm run build\``);
  await run("npm", ["run", "-s", "build"]);
  const seconds = (Date.now() - t0) / 1000;
  console.log(`build: done in ${seconds.toFixed(0)} s`);
  return { built: true, seconds };
}
