"use client";

import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { AlertCircle, Hand, RotateCcw } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Button } from "~/components/ui/button";
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
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "~/components/ui/select";
import { STATE_HELP, type CircuitStateName } from "./circuit-state-badge";
import { FormField, focusFirstError } from "./form-field";
import { formErrors, NO_ERRORS, reasonError, withoutField, type FormErrors } from "./form-errors";
import { ReasonField } from "./reason-field";

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

function FormAlert({ id, message }: { id: string; message: string | null }) {
  if (!message) return null;
  return (
    <Alert variant="destructive" id={id}>
      <AlertCircle aria-hidden="true" />
      <AlertDescription>{message}</AlertDescription>
    </Alert>
  );
}

export function ForceCircuitDialog({ circuit, onDone }: { circuit: CircuitView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const update = useCircuitUpdate();
  const [open, setOpen] = useState(false);
  const [state, setState] = useState<CircuitStateName>("OPEN");
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const force = useMutation(trpc.circuit.force.mutationOptions());
  const base = `force-${circuit.name.replace(/\W/g, "-")}`;
  const ids = { state: `${base}-state`, reason: `${base}-reason` };

  function onOpenChange(next: boolean) {
    if (force.isPending) return;
    setOpen(next);
    if (next) {
      // A new dialog starts clean, proposing the state furthest from the current one.
      setState(circuit.state === "OPEN" ? "CLOSED" : "OPEN");
      setReason("");
      setErrors(NO_ERRORS);
      force.reset();
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (force.isPending) return;
    const reasonProblem = reasonError(reason);
    if (reasonProblem) {
      setErrors({ fields: { reason: reasonProblem }, form: null });
      focusFirstError(ids, { reason: reasonProblem });
      return;
    }
    setErrors(NO_ERRORS);
    force.mutate(
      { name: circuit.name, state, reason: reason.trim() },
      {
        onSuccess: (view) => {
          update(view);
          setOpen(false);
          onDone(`${view.name} is forced ${view.state}. It holds on every instance until someone resets it.`);
        },
        onError: (error) => {
          const next = formErrors(error, ["state", "reason"], { forbidden: OPERATOR_NEEDED });
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
          <Hand aria-hidden="true" />
          Force…
        </Button>
      </DialogTrigger>
      <DialogContent aria-describedby={`${base}-description`}>
        <DialogHeader>
          <DialogTitle>
            Force <span className="font-mono">{circuit.name}</span>
          </DialogTitle>
          <DialogDescription id={`${base}-description`}>
            The breaker stays in the state you choose on every instance, whatever the error count, until someone resets
            it.
          </DialogDescription>
        </DialogHeader>
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <FormAlert id={`${base}-error`} message={errors.form} />
          <FormField id={ids.state} label="State" hint={STATE_HELP[state]} error={errors.fields.state}>
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
          <ReasonField
            id={ids.reason}
            value={reason}
            onChange={(v) => {
              setReason(v);
              setErrors((e) => withoutField(e, "reason"));
            }}
            error={errors.fields.reason}
            readOnly={force.isPending}
          />
          <DialogFooter>
            <DialogClose asChild>
              <Button variant="outline" disabled={force.isPending}>
                Cancel
              </Button>
            </DialogClose>
            <Button type="submit" variant={state === "OPEN" ? "destructive" : "default"} disabled={force.isPending}>
              {force.isPending ? "Forcing…" : `Force ${state}`}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

export function ResetCircuitDialog({ circuit, onDone }: { circuit: CircuitView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const update = useCircuitUpdate();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const reset = useMutation(trpc.circuit.reset.mutationOptions());
  const base = `reset-${circuit.name.replace(/\W/g, "-")}`;
  const ids = { reason: `${base}-reason` };

  function onOpenChange(next: boolean) {
    if (reset.isPending) return;
    setOpen(next);
    if (next) {
      setReason("");
      setErrors(NO_ERRORS);
      reset.reset();
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (reset.isPending) return;
    const reasonProblem = reasonError(reason);
    if (reasonProblem) {
      setErrors({ fields: { reason: reasonProblem }, form: null });
      focusFirstError(ids, { reason: reasonProblem });
      return;
    }
    setErrors(NO_ERRORS);
    reset.mutate(
      { name: circuit.name, reason: reason.trim() },
      {
        onSuccess: (view) => {
          update(view);
          setOpen(false);
          onDone(`${view.name} is reset: ${view.state}, automatic again, error count cleared.`);
        },
        onError: (error) => {
          const next = formErrors(error, ["reason"], { forbidden: OPERATOR_NEEDED });
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
          <RotateCcw aria-hidden="true" />
          Reset…
        </Button>
      </DialogTrigger>
      <DialogContent aria-describedby={`${base}-description`}>
        <DialogHeader>
          <DialogTitle>
            Reset <span className="font-mono">{circuit.name}</span>
          </DialogTitle>
          <DialogDescription id={`${base}-description`}>
            Ends any forced state and clears the error count: the breaker is CLOSED and automatic again.
          </DialogDescription>
        </DialogHeader>
        <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
          <FormAlert id={`${base}-error`} message={errors.form} />
          <ReasonField
            id={ids.reason}
            value={reason}
            onChange={(v) => {
              setReason(v);
              setErrors((e) => withoutField(e, "reason"));
            }}
            error={errors.fields.reason}
            readOnly={reset.isPending}
          />
          <DialogFooter>
            <DialogClose asChild>
              <Button variant="outline" disabled={reset.isPending}>
                Cancel
              </Button>
            </DialogClose>
            <Button type="submit" disabled={reset.isPending}>
              {reset.isPending ? "Resetting…" : "Reset breaker"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
