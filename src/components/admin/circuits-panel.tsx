"use client";

import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { AlertCircle, Info, ShieldAlert } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription, AlertTitle } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardFooter, CardHeader, CardTitle } from "~/components/ui/card";
import { ActionNotice, useActionNotice } from "./action-notice";
import { formatUtcTime } from "./admission-format";
import { CircuitStateBadge } from "./circuit-state-badge";
import { ForceCircuitDialog, ResetCircuitDialog, type CircuitView } from "./circuit-dialogs";
import { CircuitThresholdsCard, type CircuitConfig } from "./circuit-thresholds";
import { describeError, errorInfo } from "./describe-error";
import { formatUtc } from "./format";
import { hasRole } from "./roles";

/** Breakers move within seconds; the list is re-read this often. */
export const CIRCUIT_REFRESH_MS = 3_000;

function slug(name: string): string {
  return name.replace(/\W/g, "-");
}

function Time({ iso }: { iso: string | null }) {
  if (!iso) return <span className="text-muted-foreground">—</span>;
  return (
    <time dateTime={iso} className="font-mono text-xs">
      {formatUtc(iso)}
    </time>
  );
}

function CircuitCard({
  circuit,
  config,
  canOperate,
  onDone,
}: {
  circuit: CircuitView;
  config: CircuitConfig | undefined;
  canOperate: boolean;
  onDone: (message: string) => void;
}) {
  const titleId = `circuit-${slug(circuit.name)}-title`;
  // An automatic OPEN breaker turns HALF_OPEN by itself once openMs has passed.
  const halfOpenDue =
    circuit.state === "OPEN" && !circuit.forced && circuit.openedAt && config
      ? new Date(new Date(circuit.openedAt).getTime() + config.openMs).toISOString()
      : null;
  return (
    <Card aria-labelledby={titleId} data-testid="circuit-card">
      <CardHeader className="flex-row flex-wrap items-center justify-between gap-2">
        <CardTitle id={titleId} className="font-mono">
          {circuit.name}
        </CardTitle>
        <CircuitStateBadge state={circuit.state} />
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <dl className="grid grid-cols-[auto_1fr] items-baseline gap-x-6 gap-y-2 text-sm">
          <dt className="text-muted-foreground">Errors in window</dt>
          <dd className="tabular-nums" data-testid="circuit-errors">
            {circuit.errorCount}
            {config ? (
              <span className="text-muted-foreground">
                {" "}
                of {config.errorThreshold} to open
              </span>
            ) : null}
          </dd>
          <dt className="text-muted-foreground">Opened at</dt>
          <dd>
            <Time iso={circuit.openedAt} />
          </dd>
          <dt className="text-muted-foreground">Half-open since</dt>
          <dd>
            <Time iso={circuit.halfOpenAt} />
          </dd>
          {halfOpenDue ? (
            <>
              <dt className="text-muted-foreground">Half-open due</dt>
              <dd>
                <Time iso={halfOpenDue} />
              </dd>
            </>
          ) : null}
          <dt className="text-muted-foreground">Mode</dt>
          <dd data-testid="circuit-mode">{circuit.forced ? "Forced" : "Automatic"}</dd>
        </dl>
        {circuit.forced ? (
          <Alert variant="warning" role="none" data-testid="circuit-forced">
            <ShieldAlert aria-hidden="true" />
            <AlertTitle>
              Forced {circuit.state} by {circuit.forcedBy ?? "an operator"}
            </AlertTitle>
            <AlertDescription>
              <p>It holds on every instance until someone resets it.</p>
              {circuit.forcedReason ? <p className="mt-1 break-words">Reason: {circuit.forcedReason}</p> : null}
            </AlertDescription>
          </Alert>
        ) : null}
      </CardContent>
      {canOperate ? (
        <CardFooter className="mt-auto flex-wrap">
          <ForceCircuitDialog circuit={circuit} onDone={onDone} />
          <ResetCircuitDialog circuit={circuit} onDone={onDone} />
        </CardFooter>
      ) : null}
    </Card>
  );
}

/** The page prefetches both reads into the query cache on the server; from then on the browser re-reads them. */
export function CircuitsPanel({ role }: { role: string }) {
  const trpc = useTRPC();
  const [notice, setNotice] = useActionNotice();
  const list = useQuery(
    trpc.circuit.list.queryOptions(undefined, {
      refetchInterval: CIRCUIT_REFRESH_MS,
      staleTime: CIRCUIT_REFRESH_MS,
    }),
  );
  const config = useQuery(
    trpc.circuit.config.queryOptions(undefined, {
      refetchInterval: 30_000,
    }),
  );
  const canOperate = hasRole(role, "operator");
  const canConfigure = hasRole(role, "admin");

  let body;
  if (list.data) {
    body = (
      <div className="grid gap-4 lg:grid-cols-2">
        {list.data.map((circuit) => (
          <CircuitCard key={circuit.name} circuit={circuit} config={config.data} canOperate={canOperate} onDone={setNotice} />
        ))}
      </div>
    );
  } else if (list.isError) {
    const signedOut = errorInfo(list.error).appCode === "UNAUTHENTICATED";
    body = (
      <Alert variant="destructive">
        <AlertCircle aria-hidden="true" />
        <AlertTitle>The breakers could not be loaded</AlertTitle>
        <AlertDescription>
          <p>{describeError(list.error)}</p>
          {signedOut ? (
            <Link href="/admin/login" className="font-medium underline underline-offset-2">
              Sign in
            </Link>
          ) : (
            <Button variant="outline" size="sm" className="mt-2" onClick={() => void list.refetch()}>
              Try again
            </Button>
          )}
        </AlertDescription>
      </Alert>
    );
  } else {
    body = (
      <p role="status" className="py-8 text-center text-sm text-muted-foreground">
        Loading the breakers…
      </p>
    );
  }

  return (
    <div className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center gap-x-4 gap-y-1 text-xs text-muted-foreground" data-testid="circuits-refresh">
        {list.data ? (
          <span>
            Updated {formatUtcTime(list.dataUpdatedAt)} · refreshes every {CIRCUIT_REFRESH_MS / 1000} s
          </span>
        ) : null}
        {list.data && list.isRefetchError ? (
          <span role="alert" className="text-destructive">
            The last refresh failed ({describeError(list.error)}); showing the state as of then.
          </span>
        ) : null}
      </div>
      {canOperate ? null : (
        <Alert role="note">
          <Info aria-hidden="true" />
          <AlertDescription>
            You can watch the breakers. Forcing or resetting one needs the operator role; you are signed in as {role}.
          </AlertDescription>
        </Alert>
      )}
      <ActionNotice message={notice} testId="circuits-notice" />
      {body}
      <div className="max-w-xl">
        <CircuitThresholdsCard
          config={config.data}
          error={config.isError ? describeError(config.error) : null}
          canEdit={canConfigure}
          onDone={setNotice}
        />
      </div>
    </div>
  );
}
