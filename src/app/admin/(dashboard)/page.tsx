import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { OverviewPanel } from "~/components/admin/overview-panel";
import { PageHeader } from "~/components/admin/admin-shell";
import { RecentAuditCard } from "~/components/admin/recent-audit-card";
import { ServiceHealthCard } from "~/components/admin/service-health-card";
import { RECENT_AUDIT_LIMIT } from "~/components/admin/list-settings";

export const metadata: Metadata = { title: "Overview" };

export default async function OverviewPage() {
  const user = await requireSessionUser();
  // Read on the server into the page's query cache; a read that fails is left to
  // its card in the browser, which says so and retries, without taking the others down.
  const queryClient = getQueryClient();
  await Promise.all([
    queryClient.prefetchQuery(trpc.system.overview.queryOptions()),
    queryClient.prefetchQuery(trpc.audit.list.queryOptions({ limit: RECENT_AUDIT_LIMIT })),
  ]);
  return (
    <>
      <PageHeader title="Overview" description={`Signed in as ${user.email} (${user.role}).`} />
      <HydrateClient>
        <OverviewPanel />
        <div className="mt-4 grid gap-4 lg:grid-cols-[minmax(0,22rem)_minmax(0,1fr)]">
          <ServiceHealthCard />
          <RecentAuditCard />
        </div>
      </HydrateClient>
    </>
  );
}
