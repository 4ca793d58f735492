import { z } from "zod";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { APP_ERROR_CODES } from "~/server/infra/app-error";
import { envSchema } from "~/server/infra/env";
import { appRouter } from "./root";
import { ERROR_DOCS, TRPC_CODE } from "./error-map";
import type { ProcedureMeta } from "./trpc";

/**
 * The generated parts of docs/api.md: each procedure's kind, who may call it
 * and its input (from the router's zod schemas), the error-code table and the
 * configuration table. Hand-written prose sits between the generated blocks;
 * `npm run docs:api` rewrites the blocks and a unit test fails while the file
 * and the code disagree (a procedure without a section, a stale block).
 *
 *   <!-- generated:procedure credit.grant -->  …  <!-- /generated -->
 *   <!-- generated:errors -->                  …  <!-- /generated -->
 *   <!-- generated:configuration -->           …  <!-- /generated -->
 */

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  description?: string;
};

type ProcedureDef = { type: "query" | "mutation" | "subscription"; inputs: z.ZodType[]; meta?: ProcedureMeta };

/** Every procedure of the router, by its dotted path. */
export function procedures(): Map<string, ProcedureDef> {
  const defs = (appRouter._def as unknown as { procedures: Record<string, { _def: ProcedureDef }> }).procedures;
  return new Map(Object.entries(defs).map(([path, p]) => [path, p._def]));
}

const fmt = (n: number) => (Math.abs(n) >= 10_000 ? n.toLocaleString("en-US") : String(n));
const cell = (s: string) => s.replace(/\|/g, "\\|");

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
  if (s.type === "array") return `array of ${s.items ? typeOf(s.items) : "anything"}`;
  if (s.format === "uuid") return "string (UUID)";
  if (s.format === "date-time") return "string (ISO 8601 date-time with offset, e.g. `2026-12-24T20:00:00Z`)";
  return s.type ?? "any";
}

function rulesOf(s: JsonSchema): string {
  const rules: string[] = [];
  if (s.minLength !== undefined || s.maxLength !== undefined) {
    rules.push(`${fmt(s.minLength ?? 0)}–${s.maxLength === undefined ? "…" : fmt(s.maxLength)} chars`);
  }
  if (s.pattern && s.format !== "uuid" && s.format !== "date-time") {
    const chars = /^\^(\[[^\]]+\])\+\$$/.exec(s.pattern);
    rules.push(chars ? `of \`${chars[1]}\`` : `matches \`${s.pattern}\``);
  }
  if (s.exclusiveMinimum !== undefined) rules.push(`> ${fmt(s.exclusiveMinimum)}`);
  if (s.minimum !== undefined || s.maximum !== undefined) {
    rules.push(`${s.minimum === undefined ? "…" : fmt(s.minimum)} … ${s.maximum === undefined ? "…" : fmt(s.maximum)}`);
  }
  if (s.minItems !== undefined || s.maxItems !== undefined) rules.push(`${fmt(s.minItems ?? 0)}–${fmt(s.maxItems ?? Infinity)} items`);
  if (s.default !== undefined) rules.push(`default \`${JSON.stringify(s.default)}\``);
  if (s.description) rules.push(s.description);
  return rules.join(", ") || "–";
}

/** One table row per field; array items of objects as `items[].field`. */
function fieldRows(obj: JsonSchema, prefix = ""): string[] {
  const rows: string[] = [];
  const required = new Set(obj.required ?? []);
  for (const [name, field] of Object.entries(obj.properties ?? {})) {
    const label = `${prefix}${name}${required.has(name) ? "" : "?"}`;
    rows.push(`| \`${label}\` | ${cell(typeOf(field))} | ${cell(rulesOf(field))} |`);
    if (field.type === "array" && field.items?.properties) rows.push(...fieldRows(field.items, `${prefix}${name}[].`));
  }
  return rows;
}

function inputTable(obj: JsonSchema): string[] {
  if (Object.keys(obj.properties ?? {}).length === 0) return ["Input: none (`{}` or nothing)."];
  return ["| field | type | rules |", "| --- | --- | --- |", ...fieldRows(obj)];
}

function inputSection(inputs: z.ZodType[]): string[] {
  if (inputs.length === 0) return ["Input: none."];
  const schema = z.toJSONSchema(inputs[0]!, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const lines: string[] = [];
  if (schema.anyOf) {
    lines.push("Input: exactly one of these shapes.", "");
    for (const [i, alt] of schema.anyOf.entries()) {
      if (i > 0) lines.push("");
      lines.push(...inputTable(alt));
    }
  } else {
    if (schema.default !== undefined) lines.push(`Input may be left out (default \`${JSON.stringify(schema.default)}\`).`, "");
    lines.push(...inputTable(schema));
  }
  lines.push("", "Unknown fields are refused (400 `VALIDATION`).");
  return lines;
}

export function renderProcedure(path: string, def: ProcedureDef): string {
  const access = def.meta?.access;
  if (!access) throw new Error(`procedure ${path} has no access meta: build it on a procedure of api/trpc.ts`);
  const how = def.type === "query" ? "`GET /api/trpc/" + path + "?input=<url-encoded JSON>`" : "`POST /api/trpc/" + path + "`";
  return [`**${def.type}** · who may call: **${access}** · ${how}`, "", ...inputSection(def.inputs)].join("\n");
}

export function renderErrors(): string {
  const rows = APP_ERROR_CODES.map((code) => {
    const doc = ERROR_DOCS[code];
    return `| \`${code}\` | ${getHTTPStatusCodeFromError(new TRPCError({ code: TRPC_CODE[code] }))} | ${cell(doc.when)} | ${cell(doc.retryAfterMs ?? "–")} |`;
  });
  return ["| appCode | HTTP | when | `retryAfterMs` |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

export function renderConfiguration(): string {
  const rows = Object.entries(envSchema).map(([name, schema]) => {
    const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
    const parsed = (schema as z.ZodType).safeParse(undefined);
    const def = parsed.success && parsed.data !== undefined && parsed.data !== false ? `\`${String(parsed.data)}\`` : parsed.success ? "unset" : "required";
    const range = json.minimum !== undefined && json.maximum !== undefined ? ` (${fmt(json.minimum)} … ${fmt(json.maximum)})` : "";
    return `| \`${name}\` | ${def} | ${cell((schema.description ?? "") + range)} |`;
  });
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

const BLOCK = /<!-- generated:([a-z]+)(?: ([A-Za-z.]+))? -->\n[\s\S]*?<!-- \/generated -->/g;

export type ReferenceProblem = string;

/**
 * The document with every generated block rewritten from the code, and what
 * is missing or unknown (a procedure without a block, a block for none).
 */
export function renderApiDoc(doc: string): { text: string; problems: ReferenceProblem[] } {
  const all = procedures();
  const seen = new Set<string>();
  const problems: ReferenceProblem[] = [];
  const text = doc.replace(BLOCK, (whole, kind: string, arg: string | undefined) => {
    let body: string;
    if (kind === "procedure" && arg) {
      const def = all.get(arg);
      if (!def) {
        problems.push(`docs/api.md documents ${arg}, which the router does not have`);
        return whole;
      }
      seen.add(arg);
      body = renderProcedure(arg, def);
    } else if (kind === "errors") body = renderErrors();
    else if (kind === "configuration") body = renderConfiguration();
    else {
      problems.push(`unknown generated block ${kind}${arg ? ` ${arg}` : ""}`);
      return whole;
    }
    return `<!-- generated:${kind}${arg ? ` ${arg}` : ""} -->\n${body}\n<!-- /generated -->`;
  });
  for (const path of all.keys()) {
    if (!seen.has(path)) problems.push(`docs/api.md has no section for ${path}: add "<!-- generated:procedure ${path} -->\\n<!-- /generated -->" under its heading`);
  }
  return { text, problems };
}
