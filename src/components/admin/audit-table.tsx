"use client";

import Link from "next/link";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { AlertCircle, ChevronRight, ClipboardList } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription, AlertTitle } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { cn } from "~/components/ui/cn";
import { Table, TableBody, TableCaption, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { describeError, errorInfo } from "./describe-error";
import { formatSnapshot, formatUtc } from "./format";
import { RoleBadge } from "./role-badge";

export const AUDIT_PAGE_SIZE = 25;

type AuditItem = inferRouterOutputs<AppRouter>["audit"]["list"]["items"][number];

function Snapshot({ label, value }: { label: string; value: unknown }) {
  const text = formatSnapshot(value);
  return (
    <div className="min-w-0">
      <div className="text-xs font-medium text-muted-foreground">{label}</div>
      {text === null ? (
        <div className="text-xs text-muted-foreground">—</div>
      ) : (
        // Focusable so a keyboard user can scroll a long snapshot.
        <pre
          tabIndex={0}
          className="max-h-64 overflow-auto whitespace-pre-wrap rounded bg-muted p-2 font-mono text-xs [overflow-wrap:anywhere] outline-none focus-visible:outline-2 focus-visible:outline-ring"
        >
          {text}
        </pre>
      )}
    </div>
  );
}

function AuditRow({ item }: { item: AuditItem }) {
  const [open, setOpen] = useState(false);
  const hasChange = (item.before ?? null) !== null || (item.after ?? null) !== null;
  const detailsId = `audit-${item.id}-change`;
  return (
    <>
      <TableRow data-testid="audit-row" className={open ? "border-b-0" : undefined}>
        <TableCell className="whitespace-nowrap font-mono text-xs">
          <time dateTime={item.createdAt}>{formatUtc(item.createdAt)}</time>
        </TableCell>
        <TableCell className="min-w-32">
          <span className="mr-1.5 break-all">{item.actor}</span>
          <RoleBadge role={item.role} />
        </TableCell>
        <TableCell className="whitespace-nowrap font-mono text-xs">{item.action}</TableCell>
        <TableCell className="min-w-28 break-all font-mono text-xs">{item.target}</TableCell>
        <TableCell className="min-w-48">
          <p>{item.reason}</p>
          {hasChange ? (
            <button
              type="button"
              aria-expanded={open}
              aria-controls={detailsId}
              onClick={() => setOpen((v) => !v)}
              className="mt-0.5 inline-flex items-center gap-0.5 rounded text-xs font-medium text-primary outline-none hover:underline focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-ring"
            >
              <ChevronRight aria-hidden="true" className={cn("size-3.5 transition-transform", open && "rotate-90")} />
              Before / after
            </button>
          ) : null}
        </TableCell>
        <TableCell className="min-w-24 break-all font-mono text-xs text-muted-foreground">{item.requestId ?? "—"}</TableCell>
      </TableRow>
      {hasChange && open ? (
        <TableRow id={detailsId} data-testid="audit-change" className="hover:bg-transparent">
          <TableCell colSpan={6} className="pt-0 pb-3">
            <div className="grid gap-3 md:grid-cols-2">
              <Snapshot label="Before" value={item.before} />
              <Snapshot label="After" value={item.after} />
            </div>
          </TableCell>
        </TableRow>
      ) : null}
    </>
  );
}

export function AuditTable() {
  const trpc = useTRPC();
  const options = trpc.audit.list.infiniteQueryOptions(
    { limit: AUDIT_PAGE_SIZE },
    { getNextPageParam: (page) => page.nextCursor ?? undefined },
  );
  const audit = useInfiniteQuery(options);

  if (audit.isPending) {
    return (
      <p role="status" className="py-8 text-center text-sm text-muted-foreground">
        Loading the audit log…
      </p>
    );
  }

  if (audit.isError && !audit.data) {
    const signedOut = errorInfo(audit.error).appCode === "UNAUTHENTICATED";
    return (
      <Alert variant="destructive">
        <AlertCircle aria-hidden="true" />
        <AlertTitle>The audit log could not be loaded</AlertTitle>
        <AlertDescription>
          <p>{describeError(audit.error)}</p>
          {signedOut ? (
            <Link href="/admin/login" className="font-medium underline underline-offset-2">
              Sign in
            </Link>
          ) : (
            <Button variant="outline" size="sm" className="mt-2" onClick={() => void audit.refetch()}>
              Try again
            </Button>
          )}
        </AlertDescription>
      </Alert>
    );
  }

  const items = audit.data.pages.flatMap((page) => page.items);

  if (items.length === 0) {
    return (
      <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border px-6 py-12 text-center">
        <ClipboardList aria-hidden="true" className="size-8 text-muted-foreground" />
        <h2 className="text-sm font-semibold">No audit entries yet</h2>
        <p className="max-w-md text-sm text-muted-foreground">
          Every operator intervention (a refund retried or resolved, a circuit forced, a limit changed) is recorded here
          with who did it, why, and what changed.
        </p>
      </div>
    );
  }

  return (
    <div className="flex flex-col gap-3">
      <div className="rounded-lg border border-border">
        <Table regionLabel="Audit log entries">
          <TableCaption className="sr-only">Audit log, newest first</TableCaption>
          <TableHeader>
            <TableRow className="hover:bg-transparent">
              <TableHead>Time (UTC)</TableHead>
              <TableHead>Actor</TableHead>
              <TableHead>Action</TableHead>
              <TableHead>Target</TableHead>
              <TableHead>Reason</TableHead>
              <TableHead>Request id</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {items.map((item) => (
              <AuditRow key={item.id} item={item} />
            ))}
          </TableBody>
        </Table>
      </div>
      <div className="flex flex-wrap items-center gap-3">
        <p className="text-sm text-muted-foreground" role="status">
          {items.length} {items.length === 1 ? "entry" : "entries"} shown
          {audit.hasNextPage ? "" : " — the whole log"}
        </p>
        {audit.hasNextPage ? (
          <Button variant="outline" size="sm" onClick={() => void audit.fetchNextPage()} disabled={audit.isFetchingNextPage}>
            {audit.isFetchingNextPage ? "Loading…" : "Load more"}
          </Button>
        ) : null}
        {audit.isFetchNextPageError ? (
          <p role="alert" className="text-sm text-destructive">
            Loading more failed: {describeError(audit.error)}
          </p>
        ) : null}
      </div>
    </div>
  );
}
