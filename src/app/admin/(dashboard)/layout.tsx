import type { ReactNode } from "react";
import { requireSessionUser } from "~/trpc/server";
import { AdminShell } from "~/components/admin/admin-shell";

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  const user = await requireSessionUser();
  return <AdminShell user={user}>{children}</AdminShell>;
}
