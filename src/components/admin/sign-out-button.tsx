"use client";

import { useRouter } from "next/navigation";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { LogOut } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Button } from "~/components/ui/button";
import { describeError } from "./describe-error";

export function SignOutButton() {
  const trpc = useTRPC();
  const router = useRouter();
  const queryClient = useQueryClient();
  const logout = useMutation(
    trpc.auth.logout.mutationOptions({
      onSuccess: () => {
        // Nothing fetched for this operator may be shown to the next one.
        queryClient.clear();
        router.replace("/admin/login");
        router.refresh();
      },
    }),
  );
  const busy = logout.isPending || logout.isSuccess;
  return (
    <div className="flex items-center gap-2">
      {logout.isError ? (
        <p role="alert" className="text-xs text-destructive">
          Sign-out failed: {describeError(logout.error)}
        </p>
      ) : null}
      <Button variant="outline" size="sm" disabled={busy} onClick={() => logout.mutate({})}>
        <LogOut aria-hidden="true" />
        {/* Icon-only on narrow screens, where the email needs the room. */}
        <span className="sr-only sm:not-sr-only">{busy ? "Signing out…" : "Sign out"}</span>
      </Button>
    </div>
  );
}
