/**
 * `npm run bench`: every benchmark in one run, against the production build,
 * a throw-away database and a Redis key prefix of its own (both removed at the
 * end, also on Ctrl-C or an error). docs/benchmarks.md says what each scenario
 * measures and how to read the ratios.
 *
 *   npm run bench                          all scenarios, BENCH_SECONDS (10) each
 *   npm run bench -- --only deduct,batch   a subset (with the baselines they compare with)
 *   npm run bench -- --seconds 2           shorter runs
 *   npm run bench -- --no-build            use dist/ and .next/ as they are
 *   npm run bench -- --cluster             the several-instance topology instead: one
 *                                          instance vs two behind the balancer (cluster.ts)
 *
 * Exit code 1 only when the books are wrong after a scenario or the run
 * crashes; a missed target is printed, not an error.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { seed, ACCOUNTS } from "./accounts";
import { sqlPool, warmPool } from "./bare-sql";
import { ensureBuild } from "./build";
import { runClusterBench } from "./cluster";
import { createBenchDb, Teardown } from "./lib";
import { machineTicks, stealPercent } from "./cpu";
import { buildChecks, describeRun, DOC, gitInfo, loadAverage, machineInfo, renderTable, updateDoc, writeResults } from "./report";
import { GROUPS, resolveGroups, runScenarios, type BenchSettings } from "./scenarios";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const T0 = Date.now();
/** Set by Ctrl-C: from then on the teardown decides when the process exits, not the scenarios it cut short. */
let interrupted = false;

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return n;
}

function options() {
  const { values } = parseArgs({
    options: {
      only: { type: "string" },
      seconds: { type: "string" },
      "no-build": { type: "boolean", default: false },
      cluster: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(`usage: npm run bench -- [--only ${GROUPS.join(",")}] [--seconds N] [--no-build] [--cluster]`);
    process.exit(0);
  }
  const seconds = positive("--seconds", values.seconds ?? process.env.BENCH_SECONDS, 10);
  const connections = Math.round(positive("BENCH_CONNECTIONS", process.env.BENCH_CONNECTIONS, 32));
  const only = values.only
    ? values.only
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : null;
  const settings: BenchSettings = {
    seconds,
    connections,
    warmSeconds: Math.max(1, Math.round(seconds / 5)),
    sqlConnections: 16,
    sqlWorkers: 32,
    batchItems: 100,
    openLoopFraction: 0.8,
  };
  return { settings, only, noBuild: values["no-build"], cluster: values.cluster };
}

async function main(): Promise<number> {
  process.chdir(ROOT);
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const ticksAtStart = machineTicks();
  const { settings, only, noBuild, cluster } = options();
  if (cluster) {
    await ensureBuild(noBuild);
    return runClusterBench({ seconds: settings.seconds, warmSeconds: settings.warmSeconds, connections: settings.connections });
  }
  const { groups, added } = resolveGroups(only);
  const teardown = new Teardown();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // Ctrl-C reaches this process both from the terminal and relayed by tsx: only a later one means "quit now".
      if (Date.now() - firstSignalAt > 2_000) process.exit(130);
      return;
    }
    interrupted = true;
    firstSignalAt = Date.now();
    console.error(`\n${signal}: stopping the servers and removing the database (Ctrl-C again to quit at once)`);
    void teardown.run().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    console.log(`bench: ${groups.join(", ")}${added.length ? ` (${added.join(", ")} as baselines)` : ""}; ${settings.seconds} s each, ${settings.connections} connections`);
    const build = await ensureBuild(noBuild);

    const db = await createBenchDb();
    teardown.add(`drop ${db.name} and ${db.redisPrefix}*`, db.drop);
    console.log(`database ${db.name}, Redis prefix ${db.redisPrefix}`);
    const seeded = await seed(db.url);
    const pool = sqlPool(db.url, settings.sqlConnections);
    teardown.add("close the SQL pool", () => pool.end());
    await warmPool(pool, settings.sqlConnections);
    const pgVersion = (await pool.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version ?? null;
    console.log(`${ACCOUNTS.toLocaleString("en-US")} accounts and one hot account funded`);

    const results = await runScenarios({ db, seeded, pool, settings, teardown }, groups);
    const checks = buildChecks(results);
    const finishedAt = new Date();
    const git = gitInfo();
    const machine = machineInfo(pgVersion, loadAtStart, stealPercent(ticksAtStart, machineTicks()));
    const table = renderTable(results, checks);
    const booksOk = results.every((r) => r.books?.ok !== false);

    const json = {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      wallSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      groups,
      settings,
      build,
      git,
      machine: { ...machine, loadAvgAtEnd: loadAverage() },
      booksOk,
      scenarios: results,
      checks,
    };
    const file = writeResults(ROOT, startedAt, json);

    const summary = describeRun(settings, git, machine, startedAt);
    console.log(`\n${summary}\n\n${table}\n`);
    const missed = checks.filter((c) => c.met === false);
    const met = checks.filter((c) => c.met === true);
    if (missed.length > 0) {
      console.log(`targets: ${met.length} met, ${missed.length} MISSED:`);
      for (const c of missed) {
        const r = results.find((x) => x.id === c.scenario);
        const value =
          c.value === null ? "n/a" : c.against === "p99" ? `${c.value} ms` : c.against === "drain" ? `${c.value.toFixed(2)} s` : c.against === "percent" ? `${c.value.toFixed(2)} %` : `${c.value.toFixed(2)}×`;
        console.log(`  missed: ${r?.label ?? c.scenario} vs ${c.label}: ${value}, target ${c.target}`);
      }
    } else {
      console.log(`targets: all ${met.length} met`);
    }
    console.log(booksOk ? "books: right after every scenario" : "books: WRONG after some scenario (see above)");
    console.log(`results: ${file}`);

    if (only) {
      console.log(`${DOC}: not updated (--only runs a subset)`);
    } else {
      const books = results.at(-1)?.books;
      const block = [
        summary,
        "",
        table,
        "",
        `Books checked after every scenario: ${booksOk ? "right" : "WRONG"} (balance = Σ credits − Σ debits ≥ 0 for all ${books?.accounts.toLocaleString("en-US") ?? "?"} accounts, ${books?.ledgerRows.toLocaleString("en-US") ?? "?"} ledger rows at the end). Every figure: \`${file}\`.`,
      ].join("\n");
      console.log(updateDoc(ROOT, block) ? `${DOC}: table updated` : `${DOC}: no bench:table markers found, not updated`);
    }
    return booksOk ? 0 : 1;
  } finally {
    if (!interrupted) await teardown.run();
  }
}

main().then(
  (code) => {
    if (interrupted) return;
    console.log(`bench: done in ${Math.round((Date.now() - T0) / 1000)} s (exit ${code})`);
    process.exit(code);
  },
  (e: unknown) => {
    if (interrupted) return;
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
