import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { CircuitsPanel } from "~/components/admin/circuits-panel";

export const metadata: Metadata = { title: "Circuits" };

export default async function CircuitsPage() {
  const user = await requireSessionUser();
  // Read on the server into the page's query cache, so the page arrives filled in;
  // a failed read is left to the browser, which shows the error and retries.
  const queryClient = getQueryClient();
  await Promise.all([
    queryClient.prefetchQuery(trpc.circuit.list.queryOptions()),
    queryClient.prefetchQuery(trpc.circuit.config.queryOptions()),
  ]);
  return (
    <>
      <PageHeader
        title="Circuits"
        description="Circuit breakers shared by every instance. One opens after repeated infrastructure failures and refuses calls with 503 CIRCUIT_OPEN until its dependency recovers."
      />
      <HydrateClient>
        <CircuitsPanel role={user.role} />
      </HydrateClient>
    </>
  );
}
