import { ShieldAlert } from "lucide-react";
import { Alert, AlertDescription, AlertTitle } from "~/components/ui/alert";

/** What a non-admin sees on a page only admins may use (the procedures refuse them anyway). */
export function AdminOnly({ what }: { what: string }) {
  return (
    <Alert>
      <ShieldAlert aria-hidden="true" />
      <AlertTitle>Admins only</AlertTitle>
      <AlertDescription>Managing {what} needs the admin role. Ask an admin if you need a change.</AlertDescription>
    </Alert>
  );
}
