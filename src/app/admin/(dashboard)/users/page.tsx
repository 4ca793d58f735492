import type { Metadata } from "next";
import { HydrateClient, getQueryClient, requireSessionUser, trpc } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { UsersPanel } from "~/components/admin/access-panels";
import { AdminOnly } from "~/components/admin/admin-only";

export const metadata: Metadata = { title: "Users" };

export default async function UsersPage() {
  const user = await requireSessionUser();
  const isAdmin = user.role === "admin";
  if (isAdmin) await getQueryClient().prefetchQuery(trpc.adminUser.list.queryOptions()).catch(() => undefined);
  return (
    <>
      <PageHeader title="Users" description="Who may sign in to this dashboard, and with which role. Disabling someone signs them out everywhere at once." />
      {isAdmin ? (
        <HydrateClient>
          <UsersPanel selfEmail={user.email} />
        </HydrateClient>
      ) : (
        <AdminOnly what="users" />
      )}
    </>
  );
}
