"use client";

import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { AlertCircle, SlidersHorizontal } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";
import {
  Dialog,
  DialogClose,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
  DialogTrigger,
} from "~/components/ui/dialog";
import { Input } from "~/components/ui/input";
import { formatDuration, formatPercent } from "./admission-format";
import { FormField, focusFirstError } from "./form-field";
import { formErrors, NO_ERRORS, parseNumber, reasonError, withoutField, type FormErrors } from "./form-errors";
import { ReasonField } from "./reason-field";

export type CircuitConfig = inferRouterOutputs<AppRouter>["circuit"]["config"];
type Key = keyof CircuitConfig;

/** How each threshold is shown and typed: durations in seconds, the probe share in percent. */
const FIELDS: readonly { key: Key; label: string; suffix: string; unit: number; hint: string; step: string }[] = [
  { key: "errorThreshold", label: "Error threshold", suffix: "failures", unit: 1, step: "1", hint: "Infrastructure failures within the window that open a closed breaker." },
  { key: "windowMs", label: "Error window", suffix: "s", unit: 1000, step: "1", hint: "How far back failures count." },
  { key: "openMs", label: "Open for", suffix: "s", unit: 1000, step: "1", hint: "How long OPEN refuses every call before HALF_OPEN." },
  { key: "halfOpenMs", label: "Half-open for", suffix: "s", unit: 1000, step: "1", hint: "How long HALF_OPEN waits for a failed probe before closing." },
  { key: "probeRatio", label: "Probe share", suffix: "%", unit: 0.01, step: "any", hint: "Share of HALF_OPEN calls let through as probes." },
];
const UNITS = Object.fromEntries(FIELDS.map((f) => [f.key, f.unit])) as Record<Key, number>;

function shown(config: CircuitConfig, key: Key): string {
  const v = config[key];
  if (key === "errorThreshold") return `${v} failures`;
  if (key === "probeRatio") return formatPercent(v);
  return formatDuration(v);
}

function toField(config: CircuitConfig, key: Key): string {
  return String(Number((config[key] / UNITS[key]).toPrecision(12)));
}

function ThresholdsDialog({ config, onDone }: { config: CircuitConfig; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [values, setValues] = useState<Record<Key, string>>(() => initialValues(config));
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const configure = useMutation(trpc.circuit.configure.mutationOptions());
  const ids = { ...Object.fromEntries(FIELDS.map((f) => [f.key, `thresholds-${f.key}`])), reason: "thresholds-reason" } as Record<
    Key | "reason",
    string
  >;

  function onOpenChange(next: boolean) {
    if (configure.isPending) return;
    setOpen(next);
    if (next) {
      setValues(initialValues(config));
      setReason("");
      setErrors(NO_ERRORS);
      configure.reset();
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (configure.isPending) return;
    const fields: Record<string, string> = {};
    const patch: Partial<CircuitConfig> = {};
    for (const f of FIELDS) {
      const n = parseNumber(values[f.key]);
      if (n === undefined) {
        fields[f.key] = "Enter a number.";
        continue;
      }
      // Only what changed: a concurrent change to another threshold survives.
      const value = Number((n * f.unit).toPrecision(12));
      if (value !== config[f.key]) patch[f.key] = value;
    }
    const reasonProblem = reasonError(reason);
    if (reasonProblem) fields.reason = reasonProblem;
    const nothing = Object.keys(fields).length === 0 && Object.keys(patch).length === 0;
    if (Object.keys(fields).length > 0 || nothing) {
      setErrors({ fields, form: nothing ? "Change at least one threshold." : null });
      focusFirstError(ids, fields);
      return;
    }
    setErrors(NO_ERRORS);
    configure.mutate(
      { ...patch, reason: reason.trim() },
      {
        onSuccess: (next) => {
          queryClient.setQueryData(trpc.circuit.config.queryKey(), next);
          void queryClient.invalidateQueries({ queryKey: trpc.circuit.list.queryKey() });
          setOpen(false);
          onDone("Thresholds saved. Every breaker on every instance uses them within a second.");
        },
        onError: (error) => {
          const next = formErrors(error, [...FIELDS.map((f) => f.key), "reason"], {
            forbidden: "changing thresholds needs the admin role.",
            units: UNITS,
          });
          setErrors(next);
          focusFirstError(ids, next.fields);
        },
      },
    );
  }

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogTrigger asChild>
        <Button variant="outline" size="sm">
          <SlidersHorizontal aria-hidden="true" />
          Edit thresholds…
        </Button>
      </DialogTrigger>
      <DialogContent aria-describedby="thresholds-description">
        <DialogHeader>
          <DialogTitle>Edit breaker thresholds</DialogTitle>
          <DialogDescription id="thresholds-description">
            These apply to every breaker. Only the values you change are sent.
          </DialogDescription>
        </DialogHeader>
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          {errors.form ? (
            <Alert variant="destructive">
              <AlertCircle aria-hidden="true" />
              <AlertDescription>{errors.form}</AlertDescription>
            </Alert>
          ) : null}
          <div className="grid gap-4 sm:grid-cols-2">
            {FIELDS.map((f) => (
              <FormField key={f.key} id={ids[f.key]} label={`${f.label} (${f.suffix})`} hint={f.hint} error={errors.fields[f.key]}>
                {(control) => (
                  <Input
                    {...control}
                    name={f.key}
                    type="number"
                    inputMode="decimal"
                    step={f.step}
                    required
                    value={values[f.key]}
                    readOnly={configure.isPending}
                    onChange={(e) => {
                      setValues((v) => ({ ...v, [f.key]: e.target.value }));
                      setErrors((v) => withoutField(v, f.key));
                    }}
                  />
                )}
              </FormField>
            ))}
          </div>
          <ReasonField
            id={ids.reason}
            value={reason}
            onChange={(v) => {
              setReason(v);
              setErrors((e) => withoutField(e, "reason"));
            }}
            error={errors.fields.reason}
            readOnly={configure.isPending}
          />
          <DialogFooter>
            <DialogClose asChild>
              <Button variant="outline" disabled={configure.isPending}>
                Cancel
              </Button>
            </DialogClose>
            <Button type="submit" disabled={configure.isPending}>
              {configure.isPending ? "Saving…" : "Save thresholds"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

function initialValues(config: CircuitConfig): Record<Key, string> {
  return Object.fromEntries(FIELDS.map((f) => [f.key, toField(config, f.key)])) as Record<Key, string>;
}

export function CircuitThresholdsCard({
  config,
  error,
  canEdit,
  onDone,
}: {
  config: CircuitConfig | undefined;
  error: string | null;
  canEdit: boolean;
  onDone: (message: string) => void;
}) {
  return (
    <Card aria-labelledby="thresholds-title">
      <CardHeader className="flex-row flex-wrap items-start justify-between gap-3">
        <div className="flex flex-col gap-1">
          <CardTitle id="thresholds-title">Thresholds</CardTitle>
          <CardDescription>
            Shared by every breaker.{" "}
            {canEdit ? "Changes are audited." : "Only an admin can change them."}
          </CardDescription>
        </div>
        {canEdit && config ? <ThresholdsDialog config={config} onDone={onDone} /> : null}
      </CardHeader>
      <CardContent>
        {config ? (
          <dl className="grid grid-cols-[auto_1fr] gap-x-6 gap-y-2 text-sm" data-testid="circuit-thresholds">
            {FIELDS.map((f) => (
              <div key={f.key} className="contents">
                <dt className="text-muted-foreground">{f.label}</dt>
                <dd className="tabular-nums">{shown(config, f.key)}</dd>
              </div>
            ))}
          </dl>
        ) : error ? (
          <p role="alert" className="text-sm text-destructive">
            The thresholds could not be loaded: {error}
          </p>
        ) : (
          <p role="status" className="text-sm text-muted-foreground">
            Loading…
          </p>
        )}
      </CardContent>
    </Card>
  );
}
