import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { RefundsPanel } from "~/components/admin/refunds-panel";
import { REFUND_TABS, REFUNDS_PAGE_SIZE, type RefundTab } from "~/components/admin/list-settings";

export const metadata: Metadata = { title: "Refunds" };

export default async function RefundsPage({ searchParams }: { searchParams: Promise<{ status?: string }> }) {
  const user = await requireSessionUser();
  const asked = (await searchParams).status;
  const tab: RefundTab = (REFUND_TABS as readonly string[]).includes(asked ?? "") ? (asked as RefundTab) : "FAILED";
  // Read on the server into the page's query cache; a failed read is left to the browser, which shows it and retries.
  await getQueryClient()
    .prefetchInfiniteQuery(
      trpc.refund.list.infiniteQueryOptions({ status: tab, limit: REFUNDS_PAGE_SIZE }, { getNextPageParam: (page) => page.nextCursor ?? undefined }),
    )
    .catch(() => undefined);
  return (
    <>
      <PageHeader
        title="Refunds"
        description="Points owed back to buyers: queued, retried by the worker with growing waits, and — after the last attempt — FAILED and waiting for a person. Every retry and resolve is audited."
      />
      <HydrateClient>
        <RefundsPanel role={user.role} initialTab={tab} />
      </HydrateClient>
    </>
  );
}
