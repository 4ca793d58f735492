import { AlertCircle } from "lucide-react";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { describeError } from "./describe-error";

/** What a card shows while its query has no data: why it failed, with a retry, or that it is loading. */
export function QueryFallback({
  what,
  query,
}: {
  /** The subject of "… could not be loaded", e.g. "The switches". */
  what: string;
  query: { isError: boolean; error: unknown; refetch: () => Promise<unknown> };
}) {
  if (query.isError) {
    return (
      <Alert variant="destructive">
        <AlertCircle aria-hidden="true" />
        <AlertDescription>
          <p>{what} could not be loaded: {describeError(query.error)}</p>
          <Button variant="outline" size="sm" className="mt-2" onClick={() => void query.refetch()}>
            Try again
          </Button>
        </AlertDescription>
      </Alert>
    );
  }
  return (
    <p role="status" className="text-sm text-muted-foreground">
      Loading…
    </p>
  );
}
