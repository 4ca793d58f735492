"use client";

import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Save } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "~/components/ui/card";
import { ActionNotice, useActionNotice } from "./action-notice";
import { formatRate } from "./admission-format";
import { FormAlert } from "./form-alert";
import { parseNumber } from "./form-errors";
import { formatUtc } from "./format";
import { NumberField } from "./number-field";
import { ReasonField } from "./reason-field";
import { useReasonForm } from "./reason-form";
import { QueryFallback } from "./query-fallback";
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
  const form = useReasonForm(trpc.rateLimit.set.mutationOptions(), {
    ids: IDS,
    forbidden: "changing the rate limit needs the admin role.",
  });

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    form.submit(
      event,
      (reason) => {
        const rate = parseNumber(perSecond);
        const size = parseNumber(burst);
        const fields: Record<string, string> = {};
        if (rate === undefined) fields.perSecond = "Enter a number.";
        if (size === undefined) fields.burst = "Enter a number.";
        // Ranges are the server's to check: its answer lands next to the field.
        return rate === undefined || size === undefined ? { fields } : { send: { perSecond: rate, burst: size, reason } };
      },
      (limits) => {
        queryClient.setQueryData(trpc.rateLimit.get.queryKey(), limits);
        form.setReason("");
        onSaved(limits);
      },
    );
  }

  return (
    <form onSubmit={onSubmit} noValidate aria-labelledby="rate-form-title" className="flex flex-col gap-4 border-t border-border pt-4">
      <h3 id="rate-form-title" className="text-sm font-semibold">
        Change the limit
      </h3>
      <FormAlert message={form.errors.form} />
      <div className="grid gap-4 sm:max-w-md sm:grid-cols-2">
        <NumberField
          id={IDS.perSecond}
          name="perSecond"
          label="Tokens per second"
          hint="Refill rate; decimals allowed."
          error={form.errors.fields.perSecond}
          value={perSecond}
          onChange={(value) => {
            setPerSecond(value);
            form.edited("perSecond");
          }}
          readOnly={form.pending}
          step="any"
          inputMode="decimal"
        />
        <NumberField
          id={IDS.burst}
          name="burst"
          label="Burst"
          hint="Bucket size: calls allowed at once."
          error={form.errors.fields.burst}
          value={burst}
          onChange={(value) => {
            setBurst(value);
            form.edited("burst");
          }}
          readOnly={form.pending}
          step="1"
          inputMode="numeric"
        />
      </div>
      <div className="sm:max-w-xl">
        <ReasonField {...form.reasonField} />
      </div>
      <div>
        <Button type="submit" disabled={form.pending}>
          <Save aria-hidden="true" />
          {form.pending ? "Saving…" : "Save limit"}
        </Button>
      </div>
    </form>
  );
}

export function RateLimitCard({ role }: { role: string }) {
  const trpc = useTRPC();
  const [notice, setNotice] = useActionNotice();
  const limits = useQuery(
    trpc.rateLimit.get.queryOptions(undefined, { refetchInterval: 10_000 }),
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
        ) : (
          <QueryFallback what="The rate limit" query={limits} />
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
