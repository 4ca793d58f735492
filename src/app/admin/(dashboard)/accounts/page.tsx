import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { AccountLookup, type AccountRef } from "~/components/admin/account-view";
import { LEDGER_PAGE_SIZE } from "~/components/admin/list-settings";

export const metadata: Metadata = { title: "Accounts" };

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export default async function AccountsPage({ searchParams }: { searchParams: Promise<{ userId?: string; creditTypeId?: string }> }) {
  await requireSessionUser();
  const { userId, creditTypeId } = await searchParams;
  const account: AccountRef | null = userId && creditTypeId && ID.test(userId) && ID.test(creditTypeId) ? { userId, creditTypeId } : null;
  if (account) {
    const qc = getQueryClient();
    await Promise.all([
      qc.prefetchQuery(trpc.credit.account.queryOptions(account)).catch(() => undefined),
      qc
        .prefetchInfiniteQuery(
          trpc.credit.ledger.infiniteQueryOptions({ ...account, limit: LEDGER_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
        )
        .catch(() => undefined),
    ]);
  }
  return (
    <>
      <PageHeader title="Accounts" description="A user's balance in one credit type, and every change to it (the ledger), newest first." />
      <HydrateClient>
        <AccountLookup initial={account} />
      </HydrateClient>
    </>
  );
}
