import type { ReactNode } from "react";
import { cookies } from "next/headers";
import { requireSessionUser } from "~/trpc/server";
import { AdminShell } from "~/components/admin/admin-shell";
import { parseTheme, THEME_COOKIE } from "~/components/theme/theme";

export default async function DashboardLayout({ children }: { children: ReactNode }) {
  const user = await requireSessionUser();
  const theme = parseTheme((await cookies()).get(THEME_COOKIE)?.value);
  return (
    <AdminShell user={user} theme={theme}>
      {children}
    </AdminShell>
  );
}
