"use client";

import { useState } from "react";
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { Pause, Play, Plus, ShoppingBag } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "~/components/ui/card";
import { Input } from "~/components/ui/input";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { ActionNotice, useActionNotice } from "./action-notice";
import { FormField } from "./form-field";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";
import { hasRole } from "./roles";
import { SALES_PAGE_SIZE } from "./list-settings";

export type ActivityView = inferRouterOutputs<AppRouter>["flashSale"]["list"]["items"][number];
/** Stock moves by the second during a sale. */
export const SALES_REFRESH_MS = 3_000;

const STATUS_VARIANT = { ACTIVE: "success", SCHEDULED: "secondary", PAUSED: "warning", ENDED: "outline" } as const;
const OPERATOR_NEEDED = "pausing, resuming or creating a sale needs the operator role.";

export function SalesPanel({ role }: { role: string }) {
  const trpc = useTRPC();
  const canOperate = hasRole(role, "operator");
  const [notice, setNotice] = useActionNotice();
  const list = useInfiniteQuery({
    ...trpc.flashSale.list.infiniteQueryOptions({ limit: SALES_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
    refetchInterval: SALES_REFRESH_MS,
  });
  return (
    <div className="flex flex-col gap-4">
      <ActionNotice message={notice} testId="sales-notice" />
      {canOperate ? <CreateSaleDialog onDone={setNotice} /> : null}
      {!list.data ? (
        <QueryFallback what="The sales" query={list} />
      ) : list.data.pages[0]?.items.length === 0 ? (
        <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border px-6 py-12 text-center">
          <ShoppingBag aria-hidden="true" className="size-8 text-muted-foreground" />
          <h2 className="text-sm font-semibold">No flash sales yet</h2>
          <p className="max-w-md text-sm text-muted-foreground">A sale created here or through flashSale.createActivity appears with its stock, live.</p>
        </div>
      ) : (
        <>
          {list.data.pages
            .flatMap((p) => p.items)
            .map((a) => (
              <SaleCard key={a.id} activity={a} canOperate={canOperate} onDone={setNotice} />
            ))}
          {list.hasNextPage ? (
            <Button variant="outline" size="sm" className="self-start" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
              {list.isFetchingNextPage ? "Loading…" : "Load more"}
            </Button>
          ) : null}
        </>
      )}
    </div>
  );
}

function SaleCard({ activity, canOperate, onDone }: { activity: ActivityView; canOperate: boolean; onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const live = useQuery({ ...trpc.flashSale.liveStock.queryOptions({ activityId: activity.id }), refetchInterval: SALES_REFRESH_MS });
  const titleId = `sale-${activity.id}-title`;
  const running = activity.status === "ACTIVE" || activity.status === "SCHEDULED";
  return (
    <Card aria-labelledby={titleId} data-testid="sale-card">
      <CardHeader className="flex-row flex-wrap items-center justify-between gap-2">
        <div className="flex flex-wrap items-center gap-2">
          <CardTitle id={titleId}>{activity.name}</CardTitle>
          <Badge variant={STATUS_VARIANT[activity.status]} data-testid="sale-status">
            {activity.status}
          </Badge>
        </div>
        {canOperate && activity.status !== "ENDED" ? (
          running ? (
            <PauseDialog activity={activity} pause onDone={onDone} />
          ) : activity.status === "PAUSED" ? (
            <PauseDialog activity={activity} pause={false} onDone={onDone} />
          ) : null
        ) : null}
      </CardHeader>
      <CardContent className="flex flex-col gap-3 text-sm">
        <p className="text-muted-foreground">
          <span className="font-mono text-xs">{formatUtc(activity.startsAt)}</span> → <span className="font-mono text-xs">{formatUtc(activity.endsAt)}</span>
          {activity.pausedReason ? <span> · paused: {activity.pausedReason}</span> : null}
          <span className="ml-1 break-all font-mono text-xs">({activity.id})</span>
        </p>
        <div className="rounded-lg border border-border">
          <Table regionLabel={`Items of ${activity.name}`}>
            <TableHeader>
              <TableRow className="hover:bg-transparent">
                <TableHead>Item</TableHead>
                <TableHead className="text-right">Price</TableHead>
                <TableHead className="text-right">Stock</TableHead>
                <TableHead className="text-right">Sold</TableHead>
                <TableHead className="text-right">Reserved now</TableHead>
                <TableHead className="text-right">Left (gate)</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {activity.items.map((i) => {
                const l = live.data?.find((x) => x.itemId === i.id);
                return (
                  <TableRow key={i.id} data-testid="sale-item">
                    <TableCell className="min-w-40">
                      <span className="block">{i.name}</span>
                      <span className="block max-w-64 truncate font-mono text-xs text-muted-foreground" title={i.id}>
                        {i.id}
                      </span>
                    </TableCell>
                    <TableCell className="text-right font-mono">
                      {i.pointsPrice} <span className="text-xs text-muted-foreground">{i.creditTypeId}</span>
                    </TableCell>
                    <TableCell className="text-right font-mono">{i.stock}</TableCell>
                    <TableCell className="text-right font-mono" data-testid="sale-item-sold">
                      {i.sold}
                    </TableCell>
                    <TableCell className="text-right font-mono">{l ? l.reserved : "—"}</TableCell>
                    <TableCell className="text-right font-mono">{l?.left ?? <span className="text-muted-foreground">not loaded</span>}</TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        </div>
      </CardContent>
    </Card>
  );
}

function useSalesChanged() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return () => void queryClient.invalidateQueries({ queryKey: trpc.flashSale.pathKey() });
}

function PauseDialog({ activity, pause, onDone }: { activity: ActivityView; pause: boolean; onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useSalesChanged();
  const base = `${pause ? "pause" : "resume"}-${activity.id.replace(/\W/g, "-")}`;
  const dialog = useReasonDialog((pause ? trpc.flashSale.pause : trpc.flashSale.resume).mutationOptions(), {
    ids: { reason: `${base}-reason` },
    forbidden: OPERATOR_NEEDED,
  });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: pause ? Pause : Play, label: pause ? "Pause…" : "Resume…" }}
      title={`${pause ? "Pause" : "Resume"} ${activity.name}`}
      description={
        pause
          ? "Every instance refuses new purchases at once (ACTIVITY_NOT_ACTIVE) until someone resumes the sale. Orders already placed stand."
          : "Purchases are admitted again at once on every instance."
      }
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { activityId: activity.id, reason } }),
          (view) => {
            changed();
            onDone(`${view.name} is ${view.status}.`);
          },
        )
      }
      submitLabel={pause ? "Pause sale" : "Resume sale"}
      pendingLabel={pause ? "Pausing…" : "Resuming…"}
      destructive={pause}
    />
  );
}

/** A local date-time input's value as an ISO instant (the browser's time zone). */
function toIso(local: string): string | null {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

function localInput(msFromNow: number): string {
  const d = new Date(Date.now() + msFromNow);
  d.setSeconds(0, 0);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function CreateSaleDialog({ onDone }: { onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useSalesChanged();
  const [name, setName] = useState("");
  const [startsAt, setStartsAt] = useState(() => localInput(60_000));
  const [endsAt, setEndsAt] = useState(() => localInput(3_600_000));
  const [item, setItem] = useState({ name: "", creditTypeId: "points", pointsPrice: "100", stock: "10" });
  const ids = {
    name: "sale-name",
    startsAt: "sale-starts",
    endsAt: "sale-ends",
    itemName: "sale-item-name",
    creditTypeId: "sale-item-type",
    pointsPrice: "sale-item-price",
    stock: "sale-item-stock",
    reason: "sale-reason",
  };
  const dialog = useReasonDialog(trpc.flashSale.createActivity.mutationOptions(), { ids, forbidden: OPERATOR_NEEDED }, () => setName(""));
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: Plus, label: "New sale…", variant: "default", className: "self-start" }}
      title="New flash sale"
      description="One item to start with; the sale is loaded into Redis before it starts (at once if it starts within 5 minutes)."
      descriptionId="sale-create-description"
      alertId="sale-create-error"
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => {
            const fields: Record<string, string> = {};
            const s = toIso(startsAt);
            const e = toIso(endsAt);
            if (!name.trim()) fields.name = "Give the sale a name.";
            if (!s) fields.startsAt = "Pick a start.";
            if (!e) fields.endsAt = "Pick an end.";
            if (s && e && e <= s) fields.endsAt = "The end must be after the start.";
            if (!item.name.trim()) fields.itemName = "Name the item.";
            const price = Number(item.pointsPrice);
            const stock = Number(item.stock);
            if (!Number.isInteger(price) || price < 1) fields.pointsPrice = "A whole number of points, at least 1.";
            if (!Number.isInteger(stock) || stock < 0) fields.stock = "A whole number of units, 0 or more.";
            if (Object.keys(fields).length > 0 || !s || !e) return { fields };
            return {
              send: {
                name: name.trim(),
                startsAt: s,
                endsAt: e,
                items: [{ name: item.name.trim(), creditTypeId: item.creditTypeId.trim(), pointsPrice: price, stock }],
                reason,
              },
            };
          },
          (view) => {
            changed();
            onDone(`${view.name} is created (${view.status}).`);
          },
        )
      }
      submitLabel="Create sale"
      pendingLabel="Creating…"
    >
      <FormField id={ids.name} label="Name" error={dialog.errors.fields.name}>
        {(c) => <Input {...c} value={name} onChange={(e) => setName(e.target.value)} maxLength={200} />}
      </FormField>
      <div className="grid gap-3 sm:grid-cols-2">
        <FormField id={ids.startsAt} label="Starts (your time)" error={dialog.errors.fields.startsAt}>
          {(c) => <Input {...c} type="datetime-local" value={startsAt} onChange={(e) => setStartsAt(e.target.value)} />}
        </FormField>
        <FormField id={ids.endsAt} label="Ends (your time)" error={dialog.errors.fields.endsAt}>
          {(c) => <Input {...c} type="datetime-local" value={endsAt} onChange={(e) => setEndsAt(e.target.value)} />}
        </FormField>
      </div>
      <div className="grid gap-3 sm:grid-cols-2">
        <FormField id={ids.itemName} label="Item" error={dialog.errors.fields.itemName}>
          {(c) => <Input {...c} value={item.name} onChange={(e) => setItem({ ...item, name: e.target.value })} maxLength={200} />}
        </FormField>
        <FormField id={ids.creditTypeId} label="Credit type" error={dialog.errors.fields.creditTypeId}>
          {(c) => <Input {...c} value={item.creditTypeId} onChange={(e) => setItem({ ...item, creditTypeId: e.target.value })} maxLength={64} />}
        </FormField>
        <FormField id={ids.pointsPrice} label="Price (points)" error={dialog.errors.fields.pointsPrice}>
          {(c) => <Input {...c} inputMode="numeric" value={item.pointsPrice} onChange={(e) => setItem({ ...item, pointsPrice: e.target.value })} />}
        </FormField>
        <FormField id={ids.stock} label="Stock (units)" error={dialog.errors.fields.stock}>
          {(c) => <Input {...c} inputMode="numeric" value={item.stock} onChange={(e) => setItem({ ...item, stock: e.target.value })} />}
        </FormField>
      </div>
    </ReasonDialog>
  );
}
