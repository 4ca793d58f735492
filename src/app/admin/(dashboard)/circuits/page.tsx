import type { Metadata } from "next";
import { getServerCaller, requireSessionUser } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { CircuitsPanel, type CircuitsInitial } from "~/components/admin/circuits-panel";

export const metadata: Metadata = { title: "Circuits" };

/**
 * The first state is read here, so the page arrives filled in; the browser
 * then re-reads it every few seconds. A failed read leaves it to the browser,
 * which shows the error and retries.
 */
async function loadInitial(): Promise<CircuitsInitial> {
  const caller = await getServerCaller();
  const [circuits, config] = await Promise.all([
    caller.circuit.list().catch(() => undefined),
    caller.circuit.config().catch(() => undefined),
  ]);
  return { circuits, config, at: Date.now() };
}

export default async function CircuitsPage() {
  const user = await requireSessionUser();
  const initial = await loadInitial();
  return (
    <>
      <PageHeader
        title="Circuits"
        description="Circuit breakers shared by every instance. One opens after repeated infrastructure failures and refuses calls with 503 CIRCUIT_OPEN until its dependency recovers."
      />
      <CircuitsPanel role={user.role} initial={initial} />
    </>
  );
}
