/** "30 s", "2 min", "1 min 30 s", "2 h": thresholds are set in whole seconds. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  const min = Math.floor(s / 60);
  const rest = s % 60;
  return rest === 0 ? `${min} min` : `${min} min ${rest} s`;
}

/** 0.1 → "10 %"; up to three significant digits. */
export function formatPercent(ratio: number): string {
  return `${Number((ratio * 100).toPrecision(3))} %`;
}

/** Tokens per second without float noise: 7 → "7", 2.5 → "2.5". */
export function formatRate(perSecond: number): string {
  return String(Number(perSecond.toPrecision(6)));
}

/** "12:00:01 UTC": for "updated at" lines, where the date is today's. */
export function formatUtcTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}
