"use client";

import { useCallback, useState } from "react";
import { CheckCircle2 } from "lucide-react";
import { toast } from "sonner";
import { cn } from "~/components/ui/cn";

/**
 * The result of an action: a toast (announced by its live region) and the same
 * sentence kept in place above what changed, until the next action.
 */
export function useActionNotice(): [string | null, (message: string | null) => void] {
  const [notice, setNotice] = useState<string | null>(null);
  const show = useCallback((message: string | null) => {
    setNotice(message);
    if (message) toast.success(message);
  }, []);
  return [notice, show];
}

/** Where a result stays in view. Not a live region itself: the toast already announces it. */
export function ActionNotice({ message, className, testId }: { message: string | null; className?: string; testId?: string }) {
  if (!message) return null;
  return (
    <div className={className} data-testid={testId}>
      <p className={cn("flex items-start gap-2 rounded-lg border border-success-line bg-success-soft px-3 py-2 text-sm text-success-text")}>
        <CheckCircle2 aria-hidden="true" className="mt-0.5 size-4 shrink-0 text-success-icon" />
        <span>{message}</span>
      </p>
    </div>
  );
}
