import type { Metadata } from "next";
import { getServerCaller, requireSessionUser } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { RateLimitCard } from "~/components/admin/rate-limit-card";
import { SwitchesCard } from "~/components/admin/switches-card";

export const metadata: Metadata = { title: "Limits & switches" };

/** Read here so the page arrives filled in; a failed read is left to the browser to show. */
async function loadInitial() {
  const caller = await getServerCaller();
  const [limits, switches] = await Promise.all([
    caller.rateLimit.get().catch(() => undefined),
    caller.switch.list().catch(() => undefined),
  ]);
  return { limits, switches, at: Date.now() };
}

export default async function LimitsPage() {
  const user = await requireSessionUser();
  const initial = await loadInitial();
  return (
    <>
      <PageHeader
        title="Limits & switches"
        description="How much each user may call, and which features are shed under pressure. Every change is audited."
      />
      <div className="flex max-w-4xl flex-col gap-4">
        <RateLimitCard role={user.role} initial={initial.limits} at={initial.at} />
        <SwitchesCard role={user.role} initial={initial.switches} at={initial.at} />
      </div>
    </>
  );
}
