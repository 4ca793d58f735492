import type { Metadata } from "next";
import { HydrateClient, getQueryClient, getServerCaller, requireSessionUser, trpc } from "~/trpc/server";
import { OverviewPanel } from "~/components/admin/overview-panel";
import { PageHeader } from "~/components/admin/admin-shell";
import { RecentAuditCard } from "~/components/admin/recent-audit-card";
import { ServiceHealthCard } from "~/components/admin/service-health-card";

export const metadata: Metadata = { title: "Overview" };

export default async function OverviewPage() {
  const user = await requireSessionUser();
  const caller = await getServerCaller();
  // A failing audit read should not take the health card down with it.
  const [recent] = await Promise.all([
    caller.audit.list({ limit: 5 }).then(
      (page) => ({ ok: true as const, items: page.items }),
      () => ({ ok: false as const }),
    ),
    getQueryClient().prefetchQuery(trpc.system.overview.queryOptions()).catch(() => undefined),
  ]);
  return (
    <>
      <PageHeader title="Overview" description={`Signed in as ${user.email} (${user.role}).`} />
      <HydrateClient>
        <OverviewPanel />
      </HydrateClient>
      <div className="mt-4 grid gap-4 lg:grid-cols-[minmax(0,22rem)_minmax(0,1fr)]">
        <ServiceHealthCard />
        <RecentAuditCard result={recent} />
      </div>
    </>
  );
}
