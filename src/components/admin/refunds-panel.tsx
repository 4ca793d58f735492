"use client";

import Link from "next/link";
import { useState } from "react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { RotateCcw } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { cn } from "~/components/ui/cn";
import { Table, TableBody, TableCaption, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { ActionNotice, useActionNotice } from "./action-notice";
import { describeError } from "./describe-error";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";
import { BulkRetryDialog, ResolveRefundDialog, RetryRefundDialog, type BulkResult, type RefundView } from "./refund-dialogs";
import { hasRole } from "./roles";
import { REFUND_TABS, REFUNDS_PAGE_SIZE, type RefundTab } from "./list-settings";

/** Refunds move on their own (the worker): the open tab is re-read this often. */
export const REFUNDS_REFRESH_MS = 5_000;

const TAB_HELP: Record<RefundTab, string> = {
  FAILED: "Every attempt failed. Each raised one alert and waits for a person: retry once the cause is fixed, or resolve if the points went back another way.",
  RETRYING: "An attempt failed; the worker tries again at the time shown, with growing waits.",
  PENDING: "Queued, not attempted yet: the worker takes them within a second.",
  SUCCEEDED: "The points are back, credited exactly once.",
  RESOLVED: "Settled by hand without a credit.",
};

const STATUS_VARIANT: Record<RefundTab, "destructive" | "warning" | "secondary" | "success" | "outline"> = {
  FAILED: "destructive",
  RETRYING: "warning",
  PENDING: "secondary",
  SUCCEEDED: "success",
  RESOLVED: "outline",
};

const actionable = (r: RefundView) => r.status === "FAILED" || r.status === "RETRYING" || r.status === "PENDING";

export function RefundsPanel({ role, initialTab }: { role: string; initialTab: RefundTab }) {
  const [tab, setTab] = useState<RefundTab>(initialTab);
  const [notice, setNotice] = useActionNotice();
  const [results, setResults] = useState<BulkResult[] | null>(null);
  const canOperate = hasRole(role, "operator");

  function select(next: RefundTab) {
    setTab(next);
    setNotice(null);
    setResults(null);
    window.history.replaceState(null, "", next === "FAILED" ? "/admin/refunds" : `/admin/refunds?status=${next}`);
  }

  return (
    <div className="flex flex-col gap-4">
      <div role="tablist" aria-label="Refunds by status" className="flex flex-wrap gap-1 border-b border-border">
        {REFUND_TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`refunds-tab-${t}`}
            aria-selected={tab === t}
            aria-controls="refunds-tabpanel"
            onClick={() => select(t)}
            className={cn(
              "-mb-px border-b-2 px-3 py-2 font-mono text-xs font-medium outline-none focus-visible:outline-2 focus-visible:outline-ring",
              tab === t ? "border-primary text-primary" : "border-transparent text-muted-foreground hover:text-foreground",
            )}
          >
            {t}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="refunds-tabpanel" aria-labelledby={`refunds-tab-${tab}`} className="flex flex-col gap-3">
        <p className="text-sm text-muted-foreground">{TAB_HELP[tab]}</p>
        <ActionNotice message={notice} testId="refunds-notice" />
        {results ? <BulkResults results={results} /> : null}
        <RefundTable
          key={tab}
          status={tab}
          canOperate={canOperate}
          onDone={(message) => {
            setResults(null);
            setNotice(message);
          }}
          onBulkDone={(r) => {
            setNotice(null);
            setResults(r);
          }}
        />
      </div>
    </div>
  );
}

function BulkResults({ results }: { results: BulkResult[] }) {
  const ok = results.filter((r) => r.ok).length;
  return (
    <section aria-label="Results of the bulk retry" data-testid="bulk-results" className="rounded-lg border border-border p-3 text-sm">
      <h2 className="mb-2 font-semibold">
        Bulk retry: {ok} of {results.length} succeeded
      </h2>
      <ul className="flex flex-col gap-1">
        {results.map((r) => (
          <li key={r.id} className="flex gap-2">
            <Badge variant={r.ok ? "success" : "destructive"}>{r.ok ? "done" : "failed"}</Badge>
            <span className="break-all font-mono text-xs">{r.id.slice(0, 8)}</span>
            <span className="min-w-0 [overflow-wrap:anywhere]">{r.text}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function RefundTable({
  status,
  canOperate,
  onDone,
  onBulkDone,
}: {
  status: RefundTab;
  canOperate: boolean;
  onDone: (message: string) => void;
  onBulkDone: (results: BulkResult[]) => void;
}) {
  const trpc = useTRPC();
  const list = useInfiniteQuery({
    ...trpc.refund.list.infiniteQueryOptions({ status, limit: REFUNDS_PAGE_SIZE }, { getNextPageParam: (page) => page.nextCursor ?? undefined }),
    refetchInterval: REFUNDS_REFRESH_MS,
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());

  if (!list.data) return <QueryFallback what="The refunds" query={list} />;
  const items = list.data.pages.flatMap((p) => p.items);
  if (items.length === 0) {
    return (
      <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border px-6 py-12 text-center">
        <RotateCcw aria-hidden="true" className="size-8 text-muted-foreground" />
        <h2 className="text-sm font-semibold">No {status} refunds</h2>
        <p className="max-w-md text-sm text-muted-foreground">
          {status === "FAILED" ? "Nothing needs a person right now." : "Refunds in this state appear here as they happen."}
        </p>
      </div>
    );
  }
  const chosen = items.filter((r) => selected.has(r.id) && actionable(r));
  // Only these wait for the worker: a time of the next attempt means something.
  const scheduled = status === "RETRYING" || status === "PENDING";
  const selectable = canOperate && items.some(actionable);
  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <div className="flex flex-col gap-3">
      {selectable ? (
        <div className="flex flex-wrap items-center gap-2">
          <BulkRetryDialog
            refunds={chosen}
            onDone={(results) => {
              setSelected(new Set());
              onBulkDone(results);
            }}
          />
          <span className="text-xs text-muted-foreground">Select refunds with the checkboxes to retry several at once.</span>
        </div>
      ) : null}
      <div className="rounded-lg border border-border">
        <Table regionLabel={`${status} refunds`}>
          <TableCaption className="sr-only">{status} refunds, newest first</TableCaption>
          <TableHeader>
            <TableRow className="hover:bg-transparent">
              {selectable ? <TableHead className="w-8"><span className="sr-only">Select</span></TableHead> : null}
              <TableHead>Created (UTC)</TableHead>
              <TableHead>Account</TableHead>
              <TableHead className="text-right">Amount</TableHead>
              <TableHead>Status</TableHead>
              <TableHead>Attempts / last error</TableHead>
              {scheduled ? <TableHead>Next attempt</TableHead> : null}
              {canOperate ? <TableHead>Actions</TableHead> : null}
            </TableRow>
          </TableHeader>
          <TableBody>
            {items.map((r) => (
              <TableRow key={r.id} data-testid="refund-row" data-refund-id={r.id}>
                {selectable ? (
                  <TableCell>
                    {actionable(r) ? (
                      <input
                        type="checkbox"
                        aria-label={`Select the refund of ${r.amount} to ${r.userId}`}
                        checked={selected.has(r.id)}
                        onChange={() => toggle(r.id)}
                        className="size-4 accent-primary"
                      />
                    ) : null}
                  </TableCell>
                ) : null}
                <TableCell className="min-w-24 font-mono text-xs">
                  <time dateTime={r.createdAt}>{formatUtc(r.createdAt)}</time>
                </TableCell>
                <TableCell className="min-w-28 break-all">
                  <Link
                    className="font-medium text-primary underline-offset-2 hover:underline"
                    href={`/admin/accounts?userId=${encodeURIComponent(r.userId)}&creditTypeId=${encodeURIComponent(r.creditTypeId)}`}
                  >
                    {r.userId}
                  </Link>
                  <span className="ml-1 text-xs text-muted-foreground">{r.creditTypeId}</span>
                </TableCell>
                <TableCell className="text-right font-mono">{r.amount}</TableCell>
                <TableCell>
                  <Badge variant={STATUS_VARIANT[r.status]} data-testid="refund-status">
                    {r.status}
                  </Badge>
                </TableCell>
                <TableCell className="min-w-56 text-xs">
                  <span className="font-mono">{r.attempts}</span>
                  {r.attempts > 0 ? (
                    <Link
                      className="ml-2 text-primary underline-offset-2 hover:underline"
                      href={`/admin/operations?businessCode=refund&businessId=${r.id}`}
                      aria-label={`The latest attempt at the refund to ${r.userId}`}
                    >
                      latest attempt
                    </Link>
                  ) : null}
                  {r.lastError ? <p className="mt-0.5 text-destructive [overflow-wrap:anywhere]">{r.lastError}</p> : null}
                  <p className="mt-0.5 text-muted-foreground [overflow-wrap:anywhere]">{r.reason}</p>
                </TableCell>
                {scheduled ? (
                  <TableCell className="font-mono text-xs">
                    <time dateTime={r.nextAttemptAt}>{formatUtc(r.nextAttemptAt)}</time>
                  </TableCell>
                ) : null}
                {canOperate ? (
                  <TableCell>
                    <div className="flex flex-col gap-1">
                      {actionable(r) ? <RetryRefundDialog refund={r} onDone={onDone} /> : null}
                      {r.status === "FAILED" ? <ResolveRefundDialog refund={r} onDone={onDone} /> : null}
                    </div>
                  </TableCell>
                ) : null}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </div>
      <div className="flex flex-wrap items-center gap-3">
        <p className="text-sm text-muted-foreground" role="status">
          {items.length} shown{list.hasNextPage ? "" : ", all of them"}
        </p>
        {list.hasNextPage ? (
          <Button variant="outline" size="sm" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
            {list.isFetchingNextPage ? "Loading…" : "Load more"}
          </Button>
        ) : null}
        {list.isRefetchError ? (
          <p role="alert" className="text-sm text-destructive">
            Refreshing failed: {describeError(list.error)}
          </p>
        ) : null}
      </div>
    </div>
  );
}
