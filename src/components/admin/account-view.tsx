"use client";

import { useState, type FormEvent } from "react";
import { useRouter } from "next/navigation";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Wallet } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "~/components/ui/card";
import { Input } from "~/components/ui/input";
import { Table, TableBody, TableCaption, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { describeError } from "./describe-error";
import { FormField } from "./form-field";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";
import { LEDGER_PAGE_SIZE } from "./list-settings";


export type AccountRef = { userId: string; creditTypeId: string };

/** Looks up one account (a user in one credit type): its balance, then its ledger, newest first, in pages. */
export function AccountLookup({ initial }: { initial: AccountRef | null }) {
  const router = useRouter();
  const [userId, setUserId] = useState(initial?.userId ?? "");
  const [creditTypeId, setCreditTypeId] = useState(initial?.creditTypeId ?? "points");
  const [shown, setShown] = useState<AccountRef | null>(initial);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const ref = { userId: userId.trim(), creditTypeId: creditTypeId.trim() };
    if (!ref.userId || !ref.creditTypeId) return;
    setShown(ref);
    router.replace(`/admin/accounts?userId=${encodeURIComponent(ref.userId)}&creditTypeId=${encodeURIComponent(ref.creditTypeId)}`);
  }

  return (
    <div className="flex flex-col gap-4">
      <form onSubmit={submit} className="flex flex-wrap items-end gap-3" aria-label="Find an account">
        <FormField id="account-user" label="User id" className="w-64">
          {(control) => <Input {...control} value={userId} onChange={(e) => setUserId(e.target.value)} required maxLength={64} />}
        </FormField>
        <FormField id="account-type" label="Credit type" className="w-40">
          {(control) => <Input {...control} value={creditTypeId} onChange={(e) => setCreditTypeId(e.target.value)} required maxLength={64} />}
        </FormField>
        <Button type="submit">Show</Button>
      </form>
      {shown ? <AccountDetails key={`${shown.userId}/${shown.creditTypeId}`} account={shown} /> : null}
    </div>
  );
}

function AccountDetails({ account }: { account: AccountRef }) {
  const trpc = useTRPC();
  const balance = useQuery(trpc.credit.account.queryOptions(account));
  const ledger = useInfiniteQuery(
    trpc.credit.ledger.infiniteQueryOptions({ ...account, limit: LEDGER_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
  );
  if (balance.isError && !balance.data) {
    return (
      <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border px-6 py-12 text-center" data-testid="account-missing">
        <Wallet aria-hidden="true" className="size-8 text-muted-foreground" />
        <h2 className="text-sm font-semibold">No account shown</h2>
        <p className="max-w-md text-sm text-muted-foreground">{describeError(balance.error)}</p>
      </div>
    );
  }
  if (!balance.data) return <QueryFallback what="The account" query={balance} />;
  const items = ledger.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <div className="flex flex-col gap-4">
      <Card>
        <CardHeader>
          <CardTitle className="break-all">
            {account.userId} <span className="text-sm font-normal text-muted-foreground">in {account.creditTypeId}</span>
          </CardTitle>
        </CardHeader>
        <CardContent className="flex flex-wrap gap-8 text-sm">
          <div>
            <div className="text-xs text-muted-foreground">Balance</div>
            <div className="font-mono text-2xl" data-testid="account-balance">
              {balance.data.balance}
            </div>
          </div>
          <div>
            <div className="text-xs text-muted-foreground">Version (changes so far)</div>
            <div className="font-mono text-2xl">{balance.data.version}</div>
          </div>
        </CardContent>
      </Card>
      {!ledger.data ? (
        <QueryFallback what="The ledger" query={ledger} />
      ) : (
        <div className="rounded-lg border border-border">
          <Table regionLabel="Ledger entries">
            <TableCaption className="sr-only">Ledger of the account, newest first</TableCaption>
            <TableHeader>
              <TableRow className="hover:bg-transparent">
                <TableHead>Time (UTC)</TableHead>
                <TableHead>Type</TableHead>
                <TableHead className="text-right">Amount</TableHead>
                <TableHead className="text-right">Balance after</TableHead>
                <TableHead>Business key</TableHead>
                <TableHead>Transaction</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {items.map((e) => (
                <TableRow key={e.transactionId} data-testid="ledger-row">
                  <TableCell className="whitespace-nowrap font-mono text-xs">{formatUtc(e.createdAt)}</TableCell>
                  <TableCell>
                    <Badge variant={e.type === "CREDIT" ? "success" : "secondary"}>{e.type}</Badge>
                  </TableCell>
                  <TableCell className="text-right font-mono">{e.type === "CREDIT" ? `+${e.amount}` : `−${e.amount}`}</TableCell>
                  <TableCell className="text-right font-mono">{e.balanceAfter}</TableCell>
                  <TableCell className="break-all font-mono text-xs">
                    {e.businessCode} / {e.businessId}
                  </TableCell>
                  <TableCell className="break-all font-mono text-xs text-muted-foreground">{e.transactionId}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <div className="flex flex-wrap items-center gap-3 p-3">
            <p className="text-sm text-muted-foreground" role="status">
              {items.length} {items.length === 1 ? "entry" : "entries"} shown{ledger.hasNextPage ? "" : ", the whole ledger"}
            </p>
            {ledger.hasNextPage ? (
              <Button variant="outline" size="sm" onClick={() => void ledger.fetchNextPage()} disabled={ledger.isFetchingNextPage}>
                {ledger.isFetchingNextPage ? "Loading…" : "Load more"}
              </Button>
            ) : null}
          </div>
        </div>
      )}
    </div>
  );
}
