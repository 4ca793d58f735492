"use client";

import { useQuery } from "@tanstack/react-query";
import { RefreshCw } from "lucide-react";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { formatUtc } from "./format";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";

type Health = { status: string; postgres?: string; redis?: string };

async function fetchHealth(signal: AbortSignal): Promise<Health> {
  const res = await fetch("/api/health", { cache: "no-store", signal });
  // 503 still carries the body that names what is down.
  const body = (await res.json().catch(() => null)) as Health | null;
  if (!body || typeof body.status !== "string") throw new Error(`health check answered HTTP ${res.status}`);
  return body;
}

function StateBadge({ state }: { state: string | undefined }) {
  if (state === "up" || state === "ok") return <Badge variant="success">{state}</Badge>;
  if (state === undefined) return <Badge variant="outline">unknown</Badge>;
  return <Badge variant="destructive">{state}</Badge>;
}


export function ServiceHealthCard() {
  const health = useQuery({
    queryKey: ["service-health"],
    queryFn: ({ signal }) => fetchHealth(signal),
    refetchInterval: 15_000,
    staleTime: 0,
  });
  const rows: { label: string; state: string | undefined }[] = [
    { label: "Overall", state: health.data?.status },
    { label: "PostgreSQL", state: health.data?.postgres },
    { label: "Redis", state: health.data?.redis },
  ];
  return (
    <Card aria-labelledby="health-title">
      <CardHeader className="flex-row items-start justify-between">
        <div className="flex flex-col gap-1">
          <CardTitle id="health-title">Service health</CardTitle>
          <CardDescription>
            What <code className="font-mono text-xs">/api/health</code> of this instance reports; checked every 15 s.
          </CardDescription>
        </div>
        <Button
          variant="ghost"
          size="icon"
          onClick={() => void health.refetch()}
          disabled={health.isFetching}
          aria-label="Check health now"
          title="Check health now"
        >
          <RefreshCw aria-hidden="true" className={health.isFetching ? "animate-spin motion-reduce:animate-none" : undefined} />
        </Button>
      </CardHeader>
      <CardContent>
        {health.isPending ? (
          <p className="text-sm text-muted-foreground" role="status">
            Checking…
          </p>
        ) : health.isError && !health.data ? (
          <p className="text-sm text-destructive" role="alert">
            The health check failed: {health.error.message}
          </p>
        ) : (
          <>
            <dl className="grid grid-cols-[auto_1fr] items-center gap-x-6 gap-y-2 text-sm">
              {rows.map((row) => (
                <div key={row.label} className="contents">
                  <dt className="text-muted-foreground">{row.label}</dt>
                  <dd>
                    <StateBadge state={row.state} />
                  </dd>
                </div>
              ))}
            </dl>
            <p className="mt-3 text-xs text-muted-foreground">
              {health.isError ? "Last check failed; showing the previous result. " : null}
              Checked at {formatUtc(new Date(health.dataUpdatedAt).toISOString())}
            </p>
          </>
        )}
      </CardContent>
    </Card>
  );
}
