import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { KeysPanel } from "~/components/admin/access-panels";
import { AdminOnly } from "~/components/admin/admin-only";

export const metadata: Metadata = { title: "API keys" };

export default async function KeysPage() {
  const user = await requireSessionUser();
  const isAdmin = user.role === "admin";
  if (isAdmin) await getQueryClient().prefetchQuery(trpc.apiKey.list.queryOptions()).catch(() => undefined);
  return (
    <>
      <PageHeader title="API keys" description="The keys services call the API with. A key's secret is shown once, when it is made; revoking one takes effect on every instance within 5 seconds." />
      {isAdmin ? (
        <HydrateClient>
          <KeysPanel />
        </HydrateClient>
      ) : (
        <AdminOnly what="API keys" />
      )}
    </>
  );
}
