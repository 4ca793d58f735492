"use client";

import { useRef } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "~/components/ui/card";
import { Switch } from "~/components/ui/switch";
import { ActionNotice, useActionNotice } from "./action-notice";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";
import { QueryFallback } from "./query-fallback";
import { hasRole } from "./roles";

export type SwitchView = inferRouterOutputs<AppRouter>["switch"]["list"][number];

function onOff(on: boolean): string {
  return on ? "on" : "off";
}

function SwitchRow({ item, canEdit, onDone }: { item: SwitchView; canEdit: boolean; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const switchRef = useRef<HTMLButtonElement>(null);
  const base = `switch-${item.name}`;
  const dialog = useReasonDialog(trpc.switch.set.mutationOptions(), {
    ids: { reason: `${base}-reason` },
    forbidden: "degradation switches need the admin role.",
  });
  const target = !item.on;
  // Moving away from the default is the unusual step: say so on the button.
  const awayFromDefault = target !== item.default;

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
            <span className="text-xs text-warning-text">default: {onOff(item.default)}</span>
          ) : null}
        </div>
        {canEdit ? (
          <Switch
            ref={switchRef}
            id={`${base}-toggle`}
            checked={item.on}
            // The change waits for a reason in the dialog; the switch moves once it is saved.
            onCheckedChange={() => dialog.onOpenChange(true)}
            aria-labelledby={`${base}-name`}
            aria-describedby={`${base}-description`}
          />
        ) : null}
      </div>
      {canEdit ? (
        <ReasonDialog
          dialog={dialog}
          // Opened by the switch rather than a Dialog.Trigger: give focus back to it.
          returnFocus={switchRef}
          title={
            <>
              Turn <span className="font-mono">{item.name}</span> {onOff(target)}?
            </>
          }
          description={item.description}
          descriptionId={`${base}-dialog-description`}
          onSubmit={(event) =>
            dialog.submit(
              event,
              (reason) => ({ send: { name: item.name, on: target, reason } }),
              (view) => {
                const key = trpc.switch.list.queryKey();
                queryClient.setQueryData(key, (old) => old?.map((s) => (s.name === view.name ? view : s)));
                void queryClient.invalidateQueries({ queryKey: key });
                onDone(`${view.name} is ${onOff(view.on)}. Every instance applies it within a second.`);
              },
            )
          }
          submitLabel={`Turn ${onOff(target)}`}
          pendingLabel="Saving…"
          destructive={awayFromDefault}
        />
      ) : null}
    </li>
  );
}

export function SwitchesCard({ role }: { role: string }) {
  const trpc = useTRPC();
  const [notice, setNotice] = useActionNotice();
  const switches = useQuery(
    trpc.switch.list.queryOptions(undefined, { refetchInterval: 10_000 }),
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
        ) : (
          <QueryFallback what="The switches" query={switches} />
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
