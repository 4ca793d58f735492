import { CheckCircle2 } from "lucide-react";
import { cn } from "~/components/ui/cn";

/**
 * Confirms a change where it was made. The live region is always rendered, so
 * a screen reader announces the message when it appears.
 */
export function ActionNotice({ message, className, testId }: { message: string | null; className?: string; testId?: string }) {
  return (
    <div role="status" aria-live="polite" className={cn(!message && "sr-only", className)} data-testid={testId}>
      {message ? (
        <p className="flex items-start gap-2 rounded-lg border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-900">
          <CheckCircle2 aria-hidden="true" className="mt-0.5 size-4 shrink-0 text-green-700" />
          <span>{message}</span>
        </p>
      ) : null}
    </div>
  );
}
