import { AlertCircle } from "lucide-react";
import { Alert, AlertDescription } from "~/components/ui/alert";

/** A form's error that belongs to no single field (FORBIDDEN, an outage); nothing when there is none. */
export function FormAlert({ id, message }: { id?: string; message: string | null }) {
  if (!message) return null;
  return (
    <Alert variant="destructive" id={id}>
      <AlertCircle aria-hidden="true" />
      <AlertDescription>{message}</AlertDescription>
    </Alert>
  );
}
