"use client";

import { AlertCircle } from "lucide-react";
import { Alert, AlertDescription, AlertTitle } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";

/**
 * What an error boundary shows. In production Next replaces a server error's
 * message by a digest; the digest is what to look for in the server log.
 */
export function PageError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <Alert variant="destructive" className="max-w-xl">
      <AlertCircle aria-hidden="true" />
      <AlertTitle>This page could not be shown</AlertTitle>
      <AlertDescription>
        <p>The service may be briefly unavailable. Try again; if it keeps failing, check the server log.</p>
        {error.digest ? <p className="font-mono text-xs">Error digest: {error.digest}</p> : null}
        <Button variant="outline" size="sm" className="mt-2" onClick={reset}>
          Try again
        </Button>
      </AlertDescription>
    </Alert>
  );
}
