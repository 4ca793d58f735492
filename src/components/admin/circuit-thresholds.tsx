"use client";

import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { SlidersHorizontal } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "~/components/ui/card";
import { formatDuration, formatPercent } from "./admission-format";
import { parseNumber } from "./form-errors";
import { NumberField } from "./number-field";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";
import type { Checked } from "./reason-form";

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
  const [values, setValues] = useState<Record<Key, string>>(() => initialValues(config));
  const ids = { ...Object.fromEntries(FIELDS.map((f) => [f.key, `thresholds-${f.key}`])), reason: "thresholds-reason" } as Record<
    Key | "reason",
    string
  >;
  const dialog = useReasonDialog(
    trpc.circuit.configure.mutationOptions(),
    { ids, forbidden: "changing thresholds needs the admin role.", units: UNITS },
    () => setValues(initialValues(config)),
  );

  function check(reason: string): Checked<Partial<CircuitConfig> & { reason: string }> {
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
    if (Object.keys(fields).length > 0) return { fields };
    if (Object.keys(patch).length === 0) return { fields, form: "Change at least one threshold." };
    return { send: { ...patch, reason } };
  }

  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: SlidersHorizontal, label: "Edit thresholds…" }}
      title="Edit breaker thresholds"
      description="These apply to every breaker. Only the values you change are sent."
      descriptionId="thresholds-description"
      onSubmit={(event) =>
        dialog.submit(event, check, (next) => {
          queryClient.setQueryData(trpc.circuit.config.queryKey(), next);
          void queryClient.invalidateQueries({ queryKey: trpc.circuit.list.queryKey() });
          onDone("Thresholds saved. Every breaker on every instance uses them within a second.");
        })
      }
      submitLabel="Save thresholds"
      pendingLabel="Saving…"
    >
      <div className="grid gap-4 sm:grid-cols-2">
        {FIELDS.map((f) => (
          <NumberField
            key={f.key}
            id={ids[f.key]}
            name={f.key}
            label={`${f.label} (${f.suffix})`}
            hint={f.hint}
            error={dialog.errors.fields[f.key]}
            value={values[f.key]}
            onChange={(value) => {
              setValues((v) => ({ ...v, [f.key]: value }));
              dialog.edited(f.key);
            }}
            readOnly={dialog.pending}
            step={f.step}
            inputMode="decimal"
          />
        ))}
      </div>
    </ReasonDialog>
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
