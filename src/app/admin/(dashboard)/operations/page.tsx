import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { OperationLookup, type OperationQuery } from "~/components/admin/operation-lookup";
import { ZOperationStatusQuery } from "~/server/api/routers/operation";

export const metadata: Metadata = { title: "Operations" };

export default async function OperationsPage({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  await requireSessionUser();
  const params = Object.fromEntries(Object.entries(await searchParams).filter(([, v]) => typeof v === "string"));
  const parsed = ZOperationStatusQuery.safeParse(params);
  const query: OperationQuery | null = parsed.success ? parsed.data : null;
  if (query) await getQueryClient().prefetchQuery(trpc.operation.status.queryOptions(query)).catch(() => undefined);
  return (
    <>
      <PageHeader
        title="Operations"
        description="Every balance change is an operation: find one by its id, by a request id you sent, or by its business key (a refund's attempts: code refund, id the refund's id)."
      />
      <HydrateClient>
        <OperationLookup initial={query} />
      </HydrateClient>
    </>
  );
}
