/**
 * What a run reports: each scenario's ratio to the baseline measured in the
 * same run and whether its target is met, as a Markdown table (stdout and
 * docs/benchmarks.md, between the bench:table markers), and every figure as
 * JSON in bench/results/.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BenchSettings, ScenarioResult } from "./scenarios";

export type Check = {
  scenario: string;
  /** What it is compared with: a baseline scenario's id, or a latency bound. */
  against: string;
  label: string;
  /** scenario rate ÷ baseline rate (or the measured value for a bound). */
  value: number | null;
  target: string;
  /** null: informational, or not measurable in this run. */
  met: boolean | null;
  note?: string;
};

type RatioRule = { scenario: string; baseline: string; min: number | null };

/** Each scenario's comparisons: min = the target ratio (null: shown, no target). */
const RATIOS: RatioRule[] = [
  { scenario: "ping.full", baseline: "ping.api", min: null },
  { scenario: "deduct.api", baseline: "sql", min: 0.7 },
  { scenario: "deduct.api", baseline: "ping.api", min: 0.7 },
  { scenario: "deduct.full", baseline: "sql", min: 0.4 },
  { scenario: "deduct.full", baseline: "ping.full", min: 0.7 },
  { scenario: "deduct-hot", baseline: "sql-hot", min: 2 },
  { scenario: "batch", baseline: "sql", min: 5 },
  { scenario: "refunds", baseline: "sql", min: null },
  { scenario: "flash-sale.sold-out", baseline: "ping.between-floods", min: 0.8 },
  { scenario: "admission.deduct.on", baseline: "admission.deduct.off", min: 0.9 },
  { scenario: "admission.ping.on", baseline: "admission.ping.off", min: null },
];

/** In the flash-sale race every buyer must be answered within this, ms. */
export const RACE_MAX_MS = 2_000;

/** 1,000 due refunds must drain within this, s. */
export const REFUND_DRAIN_MAX_S = 10;

/** The open loop's bound on p99, ms. */
export const OPEN_LOOP_P99_MS = 50;

const SHORT: Record<string, string> = {
  "ping.api": "ping, API-only",
  "ping.full": "ping, full server",
  sql: "bare SQL, 1,000 accounts",
  "sql-hot": "bare SQL, one row",
  "admission.deduct.off": "admission off",
  "admission.ping.off": "admission off",
  "ping.between-floods": "ping, taking turns",
};

export function buildChecks(results: readonly ScenarioResult[]): Check[] {
  const by = new Map(results.map((r) => [r.id, r]));
  const checks: Check[] = [];
  for (const rule of RATIOS) {
    const r = by.get(rule.scenario);
    if (!r) continue;
    const base = by.get(rule.baseline);
    const target = rule.min === null ? "—" : `≥ ${rule.min}×`;
    const label = SHORT[rule.baseline] ?? rule.baseline;
    const measurable = r.status === "ok" && base?.status === "ok" && base.rate > 0;
    const value = measurable ? r.rate / base.rate : null;
    checks.push({
      scenario: r.id,
      against: rule.baseline,
      label,
      value,
      target,
      met: value === null || rule.min === null ? null : value >= rule.min,
      ...(measurable ? {} : { note: r.status !== "ok" ? r.status : `${label} not measured` }),
    });
  }
  const open = by.get("open-loop");
  if (open) {
    const p99 = open.status === "ok" ? (open.latencyMs?.p99 ?? null) : null;
    checks.push({
      scenario: "open-loop",
      against: "p99",
      label: "p99 latency",
      value: p99,
      target: `p99 ≤ ${OPEN_LOOP_P99_MS} ms`,
      met: p99 === null ? null : p99 <= OPEN_LOOP_P99_MS,
      ...(p99 === null ? { note: open.status } : {}),
    });
  }
  const flood = by.get("flash-sale.sold-out");
  if (flood) {
    const per = flood.status === "ok" && typeof flood.extra?.dbCheckoutsPerCall === "number" ? flood.extra.dbCheckoutsPerCall * 100 : null;
    checks.push({
      scenario: flood.id,
      against: "percent",
      label: "database checkouts per call",
      value: per,
      target: "< 1 %",
      met: per === null ? null : per < 1,
      ...(per === null ? { note: flood.status } : {}),
    });
  }
  const raced = by.get("flash-sale.race");
  if (raced) {
    const maxMs = raced.status === "ok" && typeof raced.extra?.maxMs === "number" ? raced.extra.maxMs : null;
    checks.push({
      scenario: raced.id,
      against: "p99",
      label: "every buyer answered within",
      value: maxMs,
      target: `≤ ${RACE_MAX_MS} ms`,
      met: maxMs === null ? null : maxMs <= RACE_MAX_MS,
      ...(maxMs === null ? { note: raced.note ?? raced.status } : {}),
    });
  }
  const refunds = by.get("refunds");
  if (refunds) {
    const seconds = refunds.status === "ok" && refunds.rate > 0 ? 1000 / refunds.rate : null;
    checks.push({
      scenario: "refunds",
      against: "drain",
      label: "1,000 refunds drained in",
      value: seconds,
      target: `≤ ${REFUND_DRAIN_MAX_S} s`,
      met: seconds === null ? null : seconds <= REFUND_DRAIN_MAX_S,
      ...(seconds === null ? { note: refunds.status } : {}),
    });
  }
  return checks;
}

// ── the table ──────────────────────────────────────────────────────────────────

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => (n < 10 ? n.toFixed(1) : int(n));

function rateCell(r: ScenarioResult): string {
  if (r.status !== "ok") return r.status;
  const main = `${int(r.rate)} ${r.unit}`;
  return r.callsPerSec === undefined ? main : `${main} (${int(r.callsPerSec)} calls/s)`;
}

function mixCell(r: ScenarioResult): string {
  if (r.status !== "ok") return r.note ?? "—";
  const calls = Object.entries(r.errors).map(([k, v]) => `${k} ${int(v)}`);
  const items = Object.entries(r.itemErrors ?? {}).map(([k, v]) => `item ${k} ${int(v)}`);
  const all = [...calls, ...items];
  return all.length === 0 ? "none" : all.join(", ");
}

function checkCells(c: Check | undefined): [string, string, string, string] {
  if (!c) return ["—", "—", "—", "—"];
  const value =
    c.value === null ? "n/a" : c.against === "p99" ? `${c.value.toFixed(1)} ms` : c.against === "drain" ? `${c.value.toFixed(2)} s` : c.against === "percent" ? `${c.value.toFixed(2)} %` : `${c.value.toFixed(2)}×`;
  const met = c.met === null ? (c.note ? `n/a (${c.note})` : "—") : c.met ? "met" : "**missed**";
  return [c.label, value, c.target, met];
}

/** One row per scenario, and a further row for each further comparison of it. */
export function renderTable(results: readonly ScenarioResult[], checks: readonly Check[]): string {
  const header = ["scenario", "rate", "p50 / p99 / p999 ms", "errors", "compared with", "ratio", "target", "met?"];
  const rows: string[][] = [];
  for (const r of results) {
    const mine = checks.filter((c) => c.scenario === r.id);
    const lat = r.latencyMs ? `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.p999)}` : "—";
    rows.push([r.label, rateCell(r), lat, mixCell(r), ...checkCells(mine[0])]);
    for (const c of mine.slice(1)) rows.push(["", "", "", "", ...checkCells(c)]);
  }
  const esc = (s: string) => s.replaceAll("|", "\\|");
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.map(esc).join(" | ")} |`).join("\n");
}

// ── machine, commit, files ─────────────────────────────────────────────────────

export type MachineInfo = {
  platform: string;
  release: string;
  arch: string;
  cpus: { model: string; speedMHz: number }[];
  totalMemGiB: number;
  node: string;
  postgres: string | null;
  loadAvgAtStart: number[];
  /** Share of CPU time a hypervisor took from this machine during the run, %; null where unknown. */
  stealPercent: number | null;
};

/** The 1, 5 and 15 minute load averages, rounded. */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.round(l * 100) / 100);
}

export function machineInfo(postgres: string | null, loadAvgAtStart: number[], stealPercent: number | null): MachineInfo {
  return {
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    cpus: os.cpus().map((c) => ({ model: c.model, speedMHz: c.speed })),
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres,
    loadAvgAtStart,
    stealPercent,
  };
}

export type GitInfo = { commit: string | null; changedFiles: number | null };

/** The commit, and how many files under src/ and prisma/ differ from it (read-only: no index refresh). */
export function gitInfo(): GitInfo {
  const git = (args: string[]) => execFileSync("git", ["--no-optional-locks", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  let commit: string | null = null;
  let changedFiles: number | null = null;
  try {
    commit = git(["rev-parse", "--short", "HEAD"]).trim();
    changedFiles = git(["status", "--porcelain", "--", "src", "prisma"]).split("\n").filter(Boolean).length;
  } catch {
    // not a git work tree
  }
  return { commit, changedFiles };
}

export function describeRun(settings: BenchSettings, git: GitInfo, machine: MachineInfo, startedAt: Date): string {
  const cpu = machine.cpus[0]?.model.trim() ?? "unknown CPU";
  const commit = git.commit
    ? `commit \`${git.commit}\`${git.changedFiles ? ` with ${git.changedFiles} changed files under src/ and prisma/` : ""}`
    : "commit unknown";
  return (
    `Run of ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC, ${commit}; ` +
    `${settings.seconds} s per scenario, ${settings.connections} connections; ` +
    `${machine.cpus.length} × ${cpu}, ${machine.platform} ${machine.release}, Node ${machine.node}` +
    `${machine.postgres ? `, PostgreSQL ${machine.postgres}` : ""}; load average at start ${machine.loadAvgAtStart.join(" / ")}` +
    // On a shared virtual machine, time the hypervisor gave to others: rates drop with it, ratios less so.
    `${machine.stealPercent === null ? "" : `; CPU time taken by the hypervisor during the run ${machine.stealPercent} %`}.`
  );
}

/** bench/results/<ISO timestamp, colons as dashes>.json */
export function writeResults(root: string, startedAt: Date, data: unknown): string {
  const dir = path.join(root, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-")}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return path.relative(root, file);
}

export const DOC = "docs/benchmarks.md";
const OPEN = "<!-- bench:table -->";
const CLOSE = "<!-- /bench:table -->";

/** Rewrites what lies between the markers of docs/benchmarks.md; the prose around them stays. */
export function updateDoc(root: string, block: string): boolean {
  const file = path.join(root, DOC);
  if (!existsSync(file)) return false;
  const text = readFileSync(file, "utf8");
  const start = text.indexOf(OPEN);
  const end = text.indexOf(CLOSE);
  if (start < 0 || end < start) return false;
  writeFileSync(file, `${text.slice(0, start + OPEN.length)}\n${block.trim()}\n${text.slice(end)}`);
  return true;
}
