import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { SalesPanel } from "~/components/admin/sales-panel";
import { RepairReports } from "~/components/admin/repair-reports";
import { REPAIRS_PAGE_SIZE, SALES_PAGE_SIZE } from "~/components/admin/list-settings";

export const metadata: Metadata = { title: "Flash sales" };

export default async function SalesPage() {
  const user = await requireSessionUser();
  // Read on the server into the page's query cache; a failed read is left to the browser to show.
  const queryClient = getQueryClient();
  await Promise.all([
    queryClient.prefetchInfiniteQuery(
      trpc.flashSale.list.infiniteQueryOptions({ limit: SALES_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
    ),
    queryClient.prefetchInfiniteQuery(
      trpc.flashSale.repairs.infiniteQueryOptions({ limit: REPAIRS_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }),
    ),
  ]);
  return (
    <>
      <PageHeader
        title="Flash sales"
        description="Every sale with its stock: sold (Postgres, the truth), reserved right now and left at the Redis gate. Operators pause, resume and create sales; each change is audited."
      />
      <HydrateClient>
        <div className="flex flex-col gap-6">
          <SalesPanel role={user.role} />
          <RepairReports />
        </div>
      </HydrateClient>
    </>
  );
}
