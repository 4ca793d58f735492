"use client";

import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { ArrowRight } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";
import { RECENT_AUDIT_LIMIT } from "./list-settings";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";

/** The newest audit rows; the overview prefetches them on the server, the browser re-reads them. */
export function RecentAuditCard() {
  const trpc = useTRPC();
  const recent = useQuery(trpc.audit.list.queryOptions({ limit: RECENT_AUDIT_LIMIT }, { refetchInterval: 15_000 }));
  const items = recent.data?.items;
  return (
    <Card aria-labelledby="recent-audit-title">
      <CardHeader className="flex-row items-start justify-between">
        <div className="flex flex-col gap-1">
          <CardTitle id="recent-audit-title">Latest interventions</CardTitle>
          <CardDescription>The newest entries of the audit log.</CardDescription>
        </div>
        <Link
          href="/admin/audit"
          className="flex items-center gap-1 rounded text-sm font-medium text-primary outline-none hover:underline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-ring"
        >
          Full audit log
          <ArrowRight aria-hidden="true" className="size-4" />
        </Link>
      </CardHeader>
      <CardContent>
        {!items ? (
          <QueryFallback what="The audit log" query={recent} />
        ) : items.length === 0 ? (
          <p className="text-sm text-muted-foreground">No interventions recorded yet.</p>
        ) : (
          <ul className="divide-y divide-border text-sm">
            {items.map((item) => (
              <li key={item.id} className="flex flex-wrap items-baseline gap-x-3 gap-y-0.5 py-2 first:pt-0 last:pb-0">
                <time dateTime={item.createdAt} className="font-mono text-xs text-muted-foreground">
                  {formatUtc(item.createdAt)}
                </time>
                <span className="font-mono text-xs">{item.action}</span>
                <span className="min-w-0 break-all text-muted-foreground">{item.target}</span>
                <span className="ml-auto">{item.actor}</span>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}
