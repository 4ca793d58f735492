import type { Metadata } from "next";
import { requireSessionUser } from "~/trpc/server";
import { PageHeader } from "~/components/admin/admin-shell";
import { AuditTable } from "~/components/admin/audit-table";

export const metadata: Metadata = { title: "Audit" };

export default async function AuditPage() {
  await requireSessionUser();
  return (
    <>
      <PageHeader
        title="Audit"
        description="Every operator intervention, newest first. Entries are append-only."
      />
      <AuditTable />
    </>
  );
}
