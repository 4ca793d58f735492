import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { RateLimitCard } from "~/components/admin/rate-limit-card";
import { SwitchesCard } from "~/components/admin/switches-card";

export const metadata: Metadata = { title: "Limits & switches" };

export default async function LimitsPage() {
  const user = await requireSessionUser();
  // Read on the server into the page's query cache; a failed read is left to the browser to show.
  const queryClient = getQueryClient();
  await Promise.all([
    queryClient.prefetchQuery(trpc.rateLimit.get.queryOptions()),
    queryClient.prefetchQuery(trpc.switch.list.queryOptions()),
  ]);
  return (
    <>
      <PageHeader
        title="Limits & switches"
        description="How much each user may call, and which features are shed under pressure. Every change is audited."
      />
      <HydrateClient>
        <div className="flex max-w-4xl flex-col gap-4">
          <RateLimitCard role={user.role} />
          <SwitchesCard role={user.role} />
        </div>
      </HydrateClient>
    </>
  );
}
