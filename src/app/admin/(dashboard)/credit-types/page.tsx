import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { CreditTypesPanel } from "~/components/admin/credit-types-panel";

export const metadata: Metadata = { title: "Credit types" };

export default async function CreditTypesPage() {
  const user = await requireSessionUser();
  await getQueryClient().prefetchQuery(trpc.creditType.list.queryOptions()).catch(() => undefined);
  return (
    <>
      <PageHeader title="Credit types" description="The kinds of points accounts hold. Admins (and services with the catalog scope) add them; they are never renamed or deleted." />
      <HydrateClient>
        <CreditTypesPanel canCreate={user.role === "admin"} />
      </HydrateClient>
    </>
  );
}
