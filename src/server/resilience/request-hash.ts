import { createHash } from "node:crypto";

/** JSON with object keys sorted, so equal inputs hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** What identifies a request for X-Request-Id replay: the procedure and its canonical input. */
export function requestHash(procedure: string, input: unknown): string {
  return createHash("sha256").update(procedure).update("\n").update(canonicalJson(input)).digest("hex");
}
