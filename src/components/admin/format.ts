/**
 * "2026-11-26 00:28:53 UTC": the audit log, the server logs and request ids
 * are compared across people and time zones, so times are shown in UTC, and
 * the same on the server and in the browser (no hydration mismatch).
 */
export function formatUtc(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** Compact JSON for before/after snapshots; null when there is nothing to show. */
export function formatSnapshot(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return JSON.stringify(value, null, 2);
}
