"use client";

import { useRef, useState, type FormEvent } from "react";
import { useRouter } from "next/navigation";
import { useMutation } from "@tanstack/react-query";
import { AlertCircle, LogIn } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { Input } from "~/components/ui/input";
import { Label } from "~/components/ui/label";
import { describeError, errorInfo, retryAfterSeconds } from "./describe-error";

function loginErrorMessage(error: unknown): string {
  const info = errorInfo(error);
  switch (info.appCode) {
    case "UNAUTHENTICATED":
      return "Email or password is wrong.";
    case "VALIDATION":
      return "Enter a valid email address and a password.";
    case "RATE_LIMITED": {
      const s = retryAfterSeconds(info.retryAfterMs);
      return s ? `Too many sign-in attempts. Try again in ${s} s.` : "Too many sign-in attempts. Try again later.";
    }
    default:
      return describeError(error);
  }
}

export function LoginForm() {
  const trpc = useTRPC();
  const router = useRouter();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const passwordRef = useRef<HTMLInputElement>(null);
  const login = useMutation(
    trpc.auth.login.mutationOptions({
      onSuccess: () => {
        // The session cookie is set now; the dashboard's server layout reads it.
        router.replace("/admin");
        router.refresh();
      },
    }),
  );
  // Stays busy after success until the dashboard has replaced this page.
  const busy = login.isPending || login.isSuccess;
  const error = login.isError ? loginErrorMessage(login.error) : null;
  const invalid = login.isError && errorInfo(login.error).appCode !== "RATE_LIMITED" ? true : undefined;

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (busy) return;
    login.mutate(
      { email, password },
      {
        // The submit button was disabled under the user's focus: give focus back
        // where the next attempt starts.
        onError: () => {
          passwordRef.current?.focus();
          passwordRef.current?.select();
        },
      },
    );
  }

  return (
    <form onSubmit={onSubmit} className="flex flex-col gap-4">
      {error ? (
        <Alert variant="destructive" id="login-error">
          <AlertCircle aria-hidden="true" />
          <AlertDescription>{error}</AlertDescription>
        </Alert>
      ) : null}
      <div className="flex flex-col gap-2">
        <Label htmlFor="email">Email</Label>
        <Input
          id="email"
          name="email"
          type="email"
          autoComplete="username"
          inputMode="email"
          autoCapitalize="none"
          spellCheck={false}
          required
          maxLength={254}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          // Read-only rather than disabled while pending, so focus stays put.
          readOnly={busy}
          aria-invalid={invalid}
          aria-describedby={error ? "login-error" : undefined}
        />
      </div>
      <div className="flex flex-col gap-2">
        <Label htmlFor="password">Password</Label>
        <Input
          ref={passwordRef}
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          maxLength={200}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          // Read-only rather than disabled while pending, so focus stays put.
          readOnly={busy}
          aria-invalid={invalid}
          aria-describedby={error ? "login-error" : undefined}
        />
      </div>
      <Button type="submit" disabled={busy} className="mt-1 w-full">
        <LogIn aria-hidden="true" />
        {busy ? "Signing in…" : "Sign in"}
      </Button>
    </form>
  );
}
