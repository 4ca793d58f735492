"use client";

import { useInfiniteQuery } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { formatUtc } from "./format";
import { REPAIRS_PAGE_SIZE } from "./list-settings";
import { QueryFallback } from "./query-fallback";

type Repair = inferRouterOutputs<AppRouter>["flashSale"]["repairs"]["items"][number];

const KIND = {
  rewarmed: { label: "Re-warmed", variant: "warning", what: "Redis had lost the item; its counter was loaded again from Postgres" },
  stock: { label: "Count set right", variant: "destructive", what: "the Redis count had drifted from stock − sold − live reservations" },
} as const;

const count = (n: number | null) => (n === null ? "missing" : n.toLocaleString("en-US"));

/** Each time the worker set the Redis gate right from Postgres (`flashSale.repairs`), newest first. */
export function RepairReports() {
  const trpc = useTRPC();
  const reports = useInfiniteQuery({
    ...trpc.flashSale.repairs.infiniteQueryOptions({ limit: REPAIRS_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
    refetchInterval: 15_000,
  });
  const items = reports.data?.pages.flatMap((p) => p.items);
  return (
    <Card aria-labelledby="repairs-title" data-testid="repair-reports">
      <CardHeader>
        <CardTitle id="repairs-title">Reconciliation reports</CardTitle>
        <CardDescription>
          Postgres is the truth; the worker compares each live item&apos;s Redis counter with it and sets it right, reporting each repair here, in the
          audit log and the worker&apos;s log. An occasional re-warm after a Redis restart is expected; repeated count repairs are not.
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        {!items ? (
          <QueryFallback what="The reconciliation reports" query={reports} />
        ) : items.length === 0 ? (
          <p className="text-sm text-muted-foreground">No repairs: Redis has agreed with Postgres for every sale.</p>
        ) : (
          <Table className="min-w-[40rem]" regionLabel="Reconciliation reports">
            <TableHeader>
              <TableRow>
                <TableHead>When (UTC)</TableHead>
                <TableHead>Repair</TableHead>
                <TableHead>Item · sale</TableHead>
                <TableHead className="text-right">Redis before</TableHead>
                <TableHead className="text-right">After</TableHead>
                <TableHead className="text-right">Reserved then</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {items.map((r: Repair) => (
                <TableRow key={r.id} data-testid="repair-row">
                  <TableCell className="whitespace-nowrap font-mono text-xs">
                    <time dateTime={r.at}>{formatUtc(r.at)}</time>
                  </TableCell>
                  <TableCell>
                    <Badge variant={KIND[r.kind].variant} title={KIND[r.kind].what}>
                      {KIND[r.kind].label}
                    </Badge>
                  </TableCell>
                  <TableCell className="min-w-48">
                    <span className="font-medium">{r.itemName ?? r.itemId}</span>
                    {r.activityName ? <span className="text-muted-foreground"> · {r.activityName}</span> : null}
                  </TableCell>
                  <TableCell className="text-right font-mono">{count(r.before)}</TableCell>
                  <TableCell className="text-right font-mono">{count(r.after)}</TableCell>
                  <TableCell className="text-right font-mono">{count(r.liveReservations)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
        {reports.hasNextPage ? (
          <Button variant="outline" size="sm" className="self-start" onClick={() => void reports.fetchNextPage()} disabled={reports.isFetchingNextPage}>
            {reports.isFetchingNextPage ? "Loading…" : "Load more"}
          </Button>
        ) : null}
      </CardContent>
    </Card>
  );
}
