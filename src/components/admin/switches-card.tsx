"use client";

import { useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { AlertCircle } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Alert, AlertDescription } from "~/components/ui/alert";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "~/components/ui/card";
import {
  Dialog,
  DialogClose,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "~/components/ui/dialog";
import { Switch } from "~/components/ui/switch";
import { ActionNotice } from "./action-notice";
import { describeError } from "./describe-error";
import { focusFirstError } from "./form-field";
import { formErrors, NO_ERRORS, reasonError, withoutField, type FormErrors } from "./form-errors";
import { ReasonField } from "./reason-field";
import { hasRole } from "./roles";

export type SwitchView = inferRouterOutputs<AppRouter>["switch"]["list"][number];

function onOff(on: boolean): string {
  return on ? "on" : "off";
}

function SwitchRow({ item, canEdit, onDone }: { item: SwitchView; canEdit: boolean; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const switchRef = useRef<HTMLButtonElement>(null);
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const set = useMutation(trpc.switch.set.mutationOptions());
  const base = `switch-${item.name}`;
  const ids = { reason: `${base}-reason` };
  const target = !item.on;
  // Moving away from the default is the unusual step: say so on the button.
  const awayFromDefault = target !== item.default;

  function onOpenChange(next: boolean) {
    if (set.isPending) return;
    setOpen(next);
    if (next) {
      setReason("");
      setErrors(NO_ERRORS);
      set.reset();
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (set.isPending) return;
    const reasonProblem = reasonError(reason);
    if (reasonProblem) {
      setErrors({ fields: { reason: reasonProblem }, form: null });
      focusFirstError(ids, { reason: reasonProblem });
      return;
    }
    setErrors(NO_ERRORS);
    set.mutate(
      { name: item.name, on: target, reason: reason.trim() },
      {
        onSuccess: (view) => {
          const key = trpc.switch.list.queryKey();
          queryClient.setQueryData(key, (old) => old?.map((s) => (s.name === view.name ? view : s)));
          void queryClient.invalidateQueries({ queryKey: key });
          setOpen(false);
          onDone(`${view.name} is ${onOff(view.on)}. Every instance applies it within a second.`);
        },
        onError: (error) => {
          const next = formErrors(error, ["reason"], { forbidden: "degradation switches need the admin role." });
          setErrors(next);
          focusFirstError(ids, next.fields);
        },
      },
    );
  }

  return (
    <li className="flex flex-col gap-2 py-3 first:pt-0 last:pb-0 sm:flex-row sm:items-start sm:gap-6" data-testid="switch-row">
      <div className="min-w-0 flex-1">
        <h3 id={`${base}-name`} className="font-mono text-sm font-semibold">
          {item.name}
        </h3>
        <p id={`${base}-description`} className="mt-0.5 text-sm text-muted-foreground">
          {item.description}
        </p>
      </div>
      <div className="flex shrink-0 items-center gap-3">
        <div className="flex flex-col items-end gap-0.5">
          <Badge variant={item.on ? "success" : "secondary"} data-testid="switch-state" className="min-w-10 justify-center">
            {item.on ? "On" : "Off"}
          </Badge>
          {item.on !== item.default ? (
            <span className="text-xs text-amber-800">default: {onOff(item.default)}</span>
          ) : null}
        </div>
        {canEdit ? (
          <Switch
            ref={switchRef}
            id={`${base}-toggle`}
            checked={item.on}
            // The change waits for a reason in the dialog; the switch moves once it is saved.
            onCheckedChange={() => onOpenChange(true)}
            aria-labelledby={`${base}-name`}
            aria-describedby={`${base}-description`}
          />
        ) : null}
      </div>
      {canEdit ? (
        <Dialog open={open} onOpenChange={onOpenChange}>
          <DialogContent
            aria-describedby={`${base}-dialog-description`}
            // Opened by the switch rather than a Dialog.Trigger: give focus back to it.
            onCloseAutoFocus={(event) => {
              event.preventDefault();
              switchRef.current?.focus();
            }}
          >
            <DialogHeader>
              <DialogTitle>
                Turn <span className="font-mono">{item.name}</span> {onOff(target)}?
              </DialogTitle>
              <DialogDescription id={`${base}-dialog-description`}>{item.description}</DialogDescription>
            </DialogHeader>
            <form onSubmit={onSubmit} noValidate className="flex flex-col gap-4">
              {errors.form ? (
                <Alert variant="destructive">
                  <AlertCircle aria-hidden="true" />
                  <AlertDescription>{errors.form}</AlertDescription>
                </Alert>
              ) : null}
              <ReasonField
                id={ids.reason}
                value={reason}
                onChange={(v) => {
                  setReason(v);
                  setErrors((e) => withoutField(e, "reason"));
                }}
                error={errors.fields.reason}
                readOnly={set.isPending}
              />
              <DialogFooter>
                <DialogClose asChild>
                  <Button variant="outline" disabled={set.isPending}>
                    Cancel
                  </Button>
                </DialogClose>
                <Button type="submit" variant={awayFromDefault ? "destructive" : "default"} disabled={set.isPending}>
                  {set.isPending ? "Saving…" : `Turn ${onOff(target)}`}
                </Button>
              </DialogFooter>
            </form>
          </DialogContent>
        </Dialog>
      ) : null}
    </li>
  );
}

export function SwitchesCard({ role, initial, at }: { role: string; initial: SwitchView[] | undefined; at: number }) {
  const trpc = useTRPC();
  const [notice, setNotice] = useState<string | null>(null);
  const switches = useQuery(
    trpc.switch.list.queryOptions(undefined, { refetchInterval: 10_000, initialData: initial, initialDataUpdatedAt: at }),
  );
  const canEdit = hasRole(role, "admin");
  return (
    <Card aria-labelledby="switches-title">
      <CardHeader>
        <CardTitle id="switches-title">Degradation switches</CardTitle>
        <CardDescription>
          Features to shed under pressure. A switched-off feature answers 503 DEGRADED; each change applies on every
          instance within a second.
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-4">
        <ActionNotice message={notice} testId="switches-notice" />
        {switches.data ? (
          <ul className="divide-y divide-border">
            {switches.data.map((item) => (
              <SwitchRow key={item.name} item={item} canEdit={canEdit} onDone={setNotice} />
            ))}
          </ul>
        ) : switches.isError ? (
          <Alert variant="destructive">
            <AlertCircle aria-hidden="true" />
            <AlertDescription>
              <p>The switches could not be loaded: {describeError(switches.error)}</p>
              <Button variant="outline" size="sm" className="mt-2" onClick={() => void switches.refetch()}>
                Try again
              </Button>
            </AlertDescription>
          </Alert>
        ) : (
          <p role="status" className="text-sm text-muted-foreground">
            Loading…
          </p>
        )}
      </CardContent>
      {canEdit ? null : (
        <CardFooter>
          <p className="text-sm text-muted-foreground">Turning switches on or off needs the admin role; you are signed in as {role}.</p>
        </CardFooter>
      )}
    </Card>
  );
}
