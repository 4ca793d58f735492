import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { SalesPanel } from "~/components/admin/sales-panel";
import { SALES_PAGE_SIZE } from "~/components/admin/list-settings";

export const metadata: Metadata = { title: "Flash sales" };

export default async function SalesPage() {
  const user = await requireSessionUser();
  await getQueryClient()
    .prefetchInfiniteQuery(trpc.flashSale.list.infiniteQueryOptions({ limit: SALES_PAGE_SIZE }, { getNextPageParam: (p) => p.nextCursor ?? undefined }))
    .catch(() => undefined);
  return (
    <>
      <PageHeader
        title="Flash sales"
        description="Every sale with its stock: sold (Postgres, the truth), reserved right now and left at the Redis gate. Operators pause, resume and create sales; each change is audited."
      />
      <HydrateClient>
        <SalesPanel role={user.role} />
      </HydrateClient>
    </>
  );
}
