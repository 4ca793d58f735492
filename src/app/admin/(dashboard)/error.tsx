"use client";

import { PageError } from "~/components/admin/page-error";

export default function DashboardError(props: { error: Error & { digest?: string }; reset: () => void }) {
  return <PageError {...props} />;
}
