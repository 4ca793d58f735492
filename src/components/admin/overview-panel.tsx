"use client";

import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Card, CardContent, CardHeader, CardTitle } from "~/components/ui/card";
import { QueryFallback } from "./query-fallback";

/** The overview is re-read as often as a statistics window closes. */
export const OVERVIEW_REFRESH_MS = 10_000;

const time = (iso: string) => iso.slice(11, 19);
// Chart text and tooltips take the theme's colours (SVG and inline styles resolve the CSS variables).
const AXIS_TICK = { fontSize: 10, fill: "var(--color-chart-axis)" };
const TOOLTIP_STYLE = { background: "var(--color-card)", borderColor: "var(--color-border)", color: "var(--color-foreground)", fontSize: 12 };
const STATE_VARIANT: Record<string, "success" | "warning" | "destructive"> = { CLOSED: "success", HALF_OPEN: "warning", OPEN: "destructive" };

function ChartCard({ title, summary, children }: { title: string; summary: string; children: React.ReactElement }) {
  return (
    <Card>
      <CardHeader>
        <CardTitle className="text-sm">{title}</CardTitle>
      </CardHeader>
      <CardContent>
        {/* The chart is a picture of the numbers below it; screen readers get the summary. */}
        <p className="sr-only">{summary}</p>
        <div className="h-44" aria-hidden="true">
          <ResponsiveContainer width="100%" height="100%">
            {children}
          </ResponsiveContainer>
        </div>
      </CardContent>
    </Card>
  );
}

export function OverviewPanel() {
  const trpc = useTRPC();
  const overview = useQuery({ ...trpc.system.overview.queryOptions(), refetchInterval: OVERVIEW_REFRESH_MS });
  if (!overview.data) return <QueryFallback what="The overview" query={overview} />;
  const o = overview.data;
  const points = o.traffic.map((p) => ({ ...p, t: time(p.at) }));
  const last = points.at(-1);
  const round = (n: number) => Math.round(n * 10) / 10;
  return (
    <div className="flex flex-col gap-4" data-testid="overview">
      <div className="grid gap-4 md:grid-cols-3">
        <ChartCard title="Calls and errors per second (all instances)" summary={`Last 10 s: ${round(last?.callsPerSec ?? 0)} calls/s, ${round(last?.errorsPerSec ?? 0)} errors/s.`}>
          <LineChart data={points} margin={{ top: 4, right: 8, left: -16, bottom: 0 }} accessibilityLayer={false}>
            <CartesianGrid strokeDasharray="3 3" stroke="var(--color-chart-grid)" />
            <XAxis dataKey="t" tick={AXIS_TICK} minTickGap={40} />
            <YAxis tick={AXIS_TICK} allowDecimals={false} />
            <Tooltip contentStyle={TOOLTIP_STYLE} />
            <Legend wrapperStyle={{ fontSize: 11 }} />
            <Line type="monotone" dataKey="callsPerSec" name="calls/s" stroke="var(--color-chart-calls)" dot={false} isAnimationActive={false} />
            <Line type="monotone" dataKey="errorsPerSec" name="errors/s" stroke="var(--color-chart-errors)" dot={false} isAnimationActive={false} />
          </LineChart>
        </ChartCard>
        <ChartCard title="p99 latency (ms)" summary={`Last 10 s: p99 ${last?.p99Ms ?? "—"} ms.`}>
          <LineChart data={points} margin={{ top: 4, right: 8, left: -16, bottom: 0 }} accessibilityLayer={false}>
            <CartesianGrid strokeDasharray="3 3" stroke="var(--color-chart-grid)" />
            <XAxis dataKey="t" tick={AXIS_TICK} minTickGap={40} />
            <YAxis tick={AXIS_TICK} />
            <Tooltip contentStyle={TOOLTIP_STYLE} />
            <Line type="stepAfter" dataKey="p99Ms" name="p99 ms" stroke="var(--color-chart-latency)" dot={false} connectNulls isAnimationActive={false} />
          </LineChart>
        </ChartCard>
        <ChartCard title="Rate-limit refusals per second" summary={`Last 10 s: ${round(last?.limitedPerSec ?? 0)} refusals/s.`}>
          <LineChart data={points} margin={{ top: 4, right: 8, left: -16, bottom: 0 }} accessibilityLayer={false}>
            <CartesianGrid strokeDasharray="3 3" stroke="var(--color-chart-grid)" />
            <XAxis dataKey="t" tick={AXIS_TICK} minTickGap={40} />
            <YAxis tick={AXIS_TICK} allowDecimals={false} />
            <Tooltip contentStyle={TOOLTIP_STYLE} />
            <Line type="monotone" dataKey="limitedPerSec" name="429/s" stroke="var(--color-chart-limited)" dot={false} isAnimationActive={false} />
          </LineChart>
        </ChartCard>
      </div>

      <div className="grid gap-4 md:grid-cols-3">
        <Card>
          <CardHeader>
            <CardTitle className="text-sm">Breakers</CardTitle>
          </CardHeader>
          <CardContent className="flex flex-col gap-2 text-sm">
            {o.circuits.map((c) => (
              <div key={c.name} className="flex items-center justify-between gap-2">
                <span className="font-mono text-xs">{c.name}</span>
                <Badge variant={STATE_VARIANT[c.state] ?? "secondary"} data-testid="overview-circuit">
                  {c.state}
                  {c.forced ? " (forced)" : ""}
                </Badge>
              </div>
            ))}
            <Link href="/admin/circuits" className="text-xs text-primary underline-offset-2 hover:underline">
              Circuits
            </Link>
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle className="text-sm">Refund queue</CardTitle>
          </CardHeader>
          <CardContent className="grid grid-cols-2 gap-2 text-sm">
            {o.refunds ? (
              <>
                <div>
                  <div className="text-xs text-muted-foreground">FAILED (needs a person)</div>
                  <div className={o.refunds.FAILED > 0 ? "font-mono text-xl text-destructive" : "font-mono text-xl"} data-testid="overview-failed-refunds">
                    {o.refunds.FAILED}
                  </div>
                </div>
                <div>
                  <div className="text-xs text-muted-foreground">Pending / retrying</div>
                  <div className="font-mono text-xl">
                    {o.refunds.PENDING} / {o.refunds.RETRYING}
                  </div>
                </div>
                <div className="col-span-2">
                  <div className="text-xs text-muted-foreground">Oldest due</div>
                  <div className="font-mono">{Math.round(o.refunds.oldestDueSeconds)} s</div>
                </div>
                <Link href="/admin/refunds" className="col-span-2 text-xs text-primary underline-offset-2 hover:underline">
                  Refunds
                </Link>
              </>
            ) : (
              <p className="col-span-2 text-muted-foreground">The queue could not be read (database).</p>
            )}
          </CardContent>
        </Card>
        <Card>
          <CardHeader>
            <CardTitle className="text-sm">Sales on now</CardTitle>
          </CardHeader>
          <CardContent className="flex flex-col gap-2 text-sm">
            {o.sales.length === 0 ? <p className="text-muted-foreground">No sale is running.</p> : null}
            {o.sales.map((s) => (
              <div key={s.id}>
                <div className="font-medium">{s.name}</div>
                {s.items.map((i) => (
                  <div key={i.id} className="flex justify-between gap-2 text-xs">
                    <span>{i.name}</span>
                    <span className="font-mono">
                      {i.left ?? i.stock - i.sold} left · {i.sold}/{i.stock} sold
                    </span>
                  </div>
                ))}
              </div>
            ))}
            <Link href="/admin/sales" className="text-xs text-primary underline-offset-2 hover:underline">
              Flash sales
            </Link>
          </CardContent>
        </Card>
      </div>

      {o.procedures.length > 0 ? (
        <Card>
          <CardHeader>
            <CardTitle className="text-sm">By procedure, last 15 minutes</CardTitle>
          </CardHeader>
          <CardContent>
            <table className="w-full text-left text-xs">
              <thead>
                <tr className="text-muted-foreground">
                  <th className="py-1 font-medium">Procedure</th>
                  <th className="py-1 text-right font-medium">Calls</th>
                  <th className="py-1 text-right font-medium">Errors</th>
                  <th className="py-1 text-right font-medium">429</th>
                  <th className="py-1 text-right font-medium">p99 ms</th>
                </tr>
              </thead>
              <tbody>
                {o.procedures.slice(0, 12).map((p) => (
                  <tr key={p.procedure} className="border-t border-border">
                    <td className="py-1 font-mono">{p.procedure}</td>
                    <td className="py-1 text-right font-mono">{p.calls}</td>
                    <td className={p.errors > 0 ? "py-1 text-right font-mono text-destructive" : "py-1 text-right font-mono"}>{p.errors}</td>
                    <td className="py-1 text-right font-mono">{p.limited}</td>
                    <td className="py-1 text-right font-mono">{p.p99Ms ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </CardContent>
        </Card>
      ) : null}
    </div>
  );
}
