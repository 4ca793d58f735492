"use client";

import { PageError } from "~/components/admin/page-error";

// Catches what the dashboard layout itself throws (e.g. the session lookup
// while the database is down), where the shell cannot be drawn.
export default function AdminError(props: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main className="flex min-h-dvh items-center justify-center bg-muted px-4">
      <PageError {...props} />
    </main>
  );
}
