"use client";

import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { Hand, RotateCcw } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "~/components/ui/select";
import { STATE_HELP, type CircuitStateName } from "./circuit-state-badge";
import { FormField } from "./form-field";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";

export type CircuitView = inferRouterOutputs<AppRouter>["circuit"]["list"][number];

const STATES: readonly CircuitStateName[] = ["OPEN", "HALF_OPEN", "CLOSED"];
const OPERATOR_NEEDED = "forcing or resetting a breaker needs the operator role.";

/** Puts the breaker a mutation returned into the cached list, then asks for a fresh one. */
function useCircuitUpdate() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return (view: CircuitView) => {
    const key = trpc.circuit.list.queryKey();
    queryClient.setQueryData(key, (old) => old?.map((c) => (c.name === view.name ? view : c)));
    void queryClient.invalidateQueries({ queryKey: key });
  };
}

export function ForceCircuitDialog({ circuit, onDone }: { circuit: CircuitView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const update = useCircuitUpdate();
  const [state, setState] = useState<CircuitStateName>("OPEN");
  const base = `force-${circuit.name.replace(/\W/g, "-")}`;
  const ids = { state: `${base}-state`, reason: `${base}-reason` };
  const dialog = useReasonDialog(trpc.circuit.force.mutationOptions(), { ids, forbidden: OPERATOR_NEEDED }, () =>
    // A new dialog starts clean, proposing the state furthest from the current one.
    setState(circuit.state === "OPEN" ? "CLOSED" : "OPEN"),
  );

  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: Hand, label: "Force…" }}
      title={
        <>
          Force <span className="font-mono">{circuit.name}</span>
        </>
      }
      description="The breaker stays in the state you choose on every instance, whatever the error count, until someone resets it."
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { name: circuit.name, state, reason } }),
          (view) => {
            update(view);
            onDone(`${view.name} is forced ${view.state}. It holds on every instance until someone resets it.`);
          },
        )
      }
      submitLabel={`Force ${state}`}
      pendingLabel="Forcing…"
      destructive={state === "OPEN"}
    >
      <FormField id={ids.state} label="State" hint={STATE_HELP[state]} error={dialog.errors.fields.state}>
        {(control) => (
          <Select value={state} onValueChange={(v) => setState(v as CircuitStateName)} name="state">
            <SelectTrigger {...control}>
              <SelectValue />
            </SelectTrigger>
            <SelectContent>
              {STATES.map((s) => (
                <SelectItem key={s} value={s} className="font-mono">
                  {s}
                </SelectItem>
              ))}
            </SelectContent>
          </Select>
        )}
      </FormField>
    </ReasonDialog>
  );
}

export function ResetCircuitDialog({ circuit, onDone }: { circuit: CircuitView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const update = useCircuitUpdate();
  const base = `reset-${circuit.name.replace(/\W/g, "-")}`;
  const dialog = useReasonDialog(trpc.circuit.reset.mutationOptions(), {
    ids: { reason: `${base}-reason` },
    forbidden: OPERATOR_NEEDED,
  });

  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: RotateCcw, label: "Reset…" }}
      title={
        <>
          Reset <span className="font-mono">{circuit.name}</span>
        </>
      }
      description="Ends any forced state and clears the error count: the breaker is CLOSED and automatic again."
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { name: circuit.name, reason } }),
          (view) => {
            update(view);
            onDone(`${view.name} is reset: ${view.state}, automatic again, error count cleared.`);
          },
        )
      }
      submitLabel="Reset breaker"
      pendingLabel="Resetting…"
    />
  );
}
