import type { ReactNode } from "react";
import Link from "next/link";
import { Zap } from "lucide-react";
import { AdminNav } from "./admin-nav";
import { RoleBadge } from "./role-badge";
import { SignOutButton } from "./sign-out-button";
import { ThemeMenu } from "~/components/theme/theme-menu";
import type { Theme } from "~/components/theme/theme";

export function AdminShell({ user, theme, children }: { user: { email: string; role: string }; theme: Theme; children: ReactNode }) {
  return (
    <div className="flex min-h-dvh flex-col">
      <a
        href="#main"
        className="sr-only rounded-md bg-primary px-3 py-2 text-sm font-medium text-primary-foreground focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50"
      >
        Skip to content
      </a>
      <header className="sticky top-0 z-40 border-b border-border bg-background">
        <div className="flex h-12 items-center gap-3 px-4">
          <Link
            href="/admin"
            className="flex items-center gap-2 rounded-md font-semibold tracking-tight outline-none focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-ring"
          >
            <span className="flex size-6 items-center justify-center rounded-md bg-primary text-primary-foreground">
              <Zap aria-hidden="true" className="size-3.5" />
            </span>
            FlashPoints
            <span className="hidden text-sm font-normal text-muted-foreground sm:inline">Admin</span>
          </Link>
          <div className="ml-auto flex min-w-0 items-center gap-3">
            <p className="flex min-w-0 items-center gap-2 text-sm">
              <span className="sr-only">Signed in as</span>
              <span className="truncate" title={user.email} data-testid="session-email">
                {user.email}
              </span>
              <RoleBadge role={user.role} />
            </p>
            <ThemeMenu initial={theme} />
            <SignOutButton />
          </div>
        </div>
      </header>
      <div className="flex flex-1 flex-col md:flex-row">
        <aside className="border-b border-border bg-sidebar p-2 md:w-52 md:shrink-0 md:border-b-0 md:border-r md:p-3">
          <div className="md:sticky md:top-15">
            <AdminNav />
          </div>
        </aside>
        <main id="main" tabIndex={-1} className="min-w-0 flex-1 px-4 py-5 outline-none md:px-6">
          {children}
        </main>
      </div>
    </div>
  );
}

export function PageHeader({ title, description, actions }: { title: string; description?: string; actions?: ReactNode }) {
  return (
    <div className="mb-5 flex flex-wrap items-end justify-between gap-3">
      <div>
        <h1 className="text-xl font-semibold tracking-tight">{title}</h1>
        {description ? <p className="mt-1 text-sm text-muted-foreground">{description}</p> : null}
      </div>
      {actions}
    </div>
  );
}
