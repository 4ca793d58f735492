"use client";

import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { AlertCircle, Save } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "~/components/ui/card";
import { Input } from "~/components/ui/input";
import { ActionNotice } from "./action-notice";
import { formatRate } from "./admission-format";
import { describeError } from "./describe-error";
import { FormField, focusFirstError } from "./form-field";
import { formErrors, NO_ERRORS, parseNumber, reasonError, withoutField, type FormErrors } from "./form-errors";
import { formatUtc } from "./format";
import { ReasonField } from "./reason-field";
import { hasRole } from "./roles";

export type RateLimits = inferRouterOutputs<AppRouter>["rateLimit"]["get"];

const IDS = { perSecond: "rate-per-second", burst: "rate-burst", reason: "rate-reason" } as const;

function CurrentLimits({ limits }: { limits: RateLimits }) {
  return (
    <div className="flex flex-col gap-3">
      <dl className="grid grid-cols-2 gap-3 sm:max-w-md">
        <div className="rounded-md border border-border px-3 py-2">
          <dt className="text-xs text-muted-foreground">Refill rate</dt>
          <dd className="text-2xl font-semibold tabular-nums">
            <span data-testid="rate-per-second">{formatRate(limits.perSecond)}</span>
            <span className="ml-1 text-sm font-normal text-muted-foreground">/ s</span>
          </dd>
        </div>
        <div className="rounded-md border border-border px-3 py-2">
          <dt className="text-xs text-muted-foreground">Burst</dt>
          <dd className="text-2xl font-semibold tabular-nums">
            <span data-testid="rate-burst">{limits.burst}</span>
            <span className="ml-1 text-sm font-normal text-muted-foreground">tokens</span>
          </dd>
        </div>
      </dl>
      <p className="text-xs text-muted-foreground" data-testid="rate-source">
        {limits.source === "settings" ? (
          <>
            Set by {limits.updatedBy ?? "an admin"}
            {limits.updatedAt ? (
              <>
                {" "}
                at <time dateTime={limits.updatedAt}>{formatUtc(limits.updatedAt)}</time>
              </>
            ) : null}{" "}
            (version {limits.version}).
          </>
        ) : (
          <>
            The server&apos;s default (<code className="font-mono">RATE_LIMIT_PER_SECOND</code>,{" "}
            <code className="font-mono">RATE_LIMIT_BURST</code>): no admin has changed it.
          </>
        )}
      </p>
    </div>
  );
}

function RateLimitForm({ current, onSaved }: { current: RateLimits; onSaved: (limits: RateLimits) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  // Seeded once: a background refresh must not overwrite what the admin is typing.
  const [perSecond, setPerSecond] = useState(() => formatRate(current.perSecond));
  const [burst, setBurst] = useState(() => String(current.burst));
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const save = useMutation(trpc.rateLimit.set.mutationOptions());

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (save.isPending) return;
    const rate = parseNumber(perSecond);
    const size = parseNumber(burst);
    const fields: Record<string, string> = {};
    if (rate === undefined) fields.perSecond = "Enter a number.";
    if (size === undefined) fields.burst = "Enter a number.";
    const reasonProblem = reasonError(reason);
    if (reasonProblem) fields.reason = reasonProblem;
    if (rate === undefined || size === undefined || reasonProblem) {
      setErrors({ fields, form: null });
      focusFirstError(IDS, fields);
      return;
    }
    setErrors(NO_ERRORS);
    // Ranges are the server's to check: its answer lands next to the field.
    save.mutate(
      { perSecond: rate, burst: size, reason: reason.trim() },
      {
        onSuccess: (limits) => {
          queryClient.setQueryData(trpc.rateLimit.get.queryKey(), limits);
          setReason("");
          onSaved(limits);
        },
        onError: (error) => {
          const next = formErrors(error, ["perSecond", "burst", "reason"], {
            forbidden: "changing the rate limit needs the admin role.",
          });
          setErrors(next);
          focusFirstError(IDS, next.fields);
        },
      },
    );
  }

  return (
    <form onSubmit={onSubmit} noValidate aria-labelledby="rate-form-title" className="flex flex-col gap-4 border-t border-border pt-4">
      <h3 id="rate-form-title" className="text-sm font-semibold">
        Change the limit
      </h3>
      {errors.form ? (
        <Alert variant="destructive">
          <AlertCircle aria-hidden="true" />
          <AlertDescription>{errors.form}</AlertDescription>
        </Alert>
      ) : null}
      <div className="grid gap-4 sm:max-w-md sm:grid-cols-2">
        <FormField id={IDS.perSecond} label="Tokens per second" hint="Refill rate; decimals allowed." error={errors.fields.perSecond}>
          {(control) => (
            <Input
              {...control}
              name="perSecond"
              type="number"
              inputMode="decimal"
              step="any"
              required
              value={perSecond}
              readOnly={save.isPending}
              onChange={(e) => {
                setPerSecond(e.target.value);
                setErrors((v) => withoutField(v, "perSecond"));
              }}
            />
          )}
        </FormField>
        <FormField id={IDS.burst} label="Burst" hint="Bucket size: calls allowed at once." error={errors.fields.burst}>
          {(control) => (
            <Input
              {...control}
              name="burst"
              type="number"
              inputMode="numeric"
              step="1"
              required
              value={burst}
              readOnly={save.isPending}
              onChange={(e) => {
                setBurst(e.target.value);
                setErrors((v) => withoutField(v, "burst"));
              }}
            />
          )}
        </FormField>
      </div>
      <div className="sm:max-w-xl">
        <ReasonField
          id={IDS.reason}
          value={reason}
          onChange={(v) => {
            setReason(v);
            setErrors((e) => withoutField(e, "reason"));
          }}
          error={errors.fields.reason}
          readOnly={save.isPending}
        />
      </div>
      <div>
        <Button type="submit" disabled={save.isPending}>
          <Save aria-hidden="true" />
          {save.isPending ? "Saving…" : "Save limit"}
        </Button>
      </div>
    </form>
  );
}

export function RateLimitCard({ role, initial, at }: { role: string; initial: RateLimits | undefined; at: number }) {
  const trpc = useTRPC();
  const [notice, setNotice] = useState<string | null>(null);
  const limits = useQuery(
    trpc.rateLimit.get.queryOptions(undefined, { refetchInterval: 10_000, initialData: initial, initialDataUpdatedAt: at }),
  );
  const canEdit = hasRole(role, "admin");
  return (
    <Card aria-labelledby="rate-title">
      <CardHeader>
        <CardTitle id="rate-title">Per-user rate limit</CardTitle>
        <CardDescription>
          A token bucket per user and credit type, shared by <code className="font-mono">credit.deduct</code> and{" "}
          <code className="font-mono">flashSale.purchase</code> on every instance. Calls beyond it get 429 RATE_LIMITED.
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-4">
        {limits.data ? (
          <CurrentLimits limits={limits.data} />
        ) : limits.isError ? (
          <Alert variant="destructive">
            <AlertCircle aria-hidden="true" />
            <AlertDescription>
              <p>The rate limit could not be loaded: {describeError(limits.error)}</p>
              <Button variant="outline" size="sm" className="mt-2" onClick={() => void limits.refetch()}>
                Try again
              </Button>
            </AlertDescription>
          </Alert>
        ) : (
          <p role="status" className="text-sm text-muted-foreground">
            Loading…
          </p>
        )}
        <ActionNotice message={notice} testId="rate-notice" />
        {canEdit && limits.data ? (
          <RateLimitForm
            current={limits.data}
            onSaved={(saved) =>
              setNotice(
                `Saved: ${formatRate(saved.perSecond)} tokens per second, burst ${saved.burst}. Every instance applies it within a second.`,
              )
            }
          />
        ) : null}
      </CardContent>
      {canEdit ? null : (
        <CardFooter>
          <p className="text-sm text-muted-foreground">Changing the limit needs the admin role; you are signed in as {role}.</p>
        </CardFooter>
      )}
    </Card>
  );
}
