"use client";

import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { CheckCheck, RotateCw } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC, useTRPCClient } from "~/trpc/client";
import { describeError } from "./describe-error";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";

export type RefundView = inferRouterOutputs<AppRouter>["refund"]["list"]["items"][number];

const OPERATOR_NEEDED = "retrying or resolving a refund needs the operator role.";

/** After a change, every refund list (each tab) is read again. */
function useRefundsChanged() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  return () => void queryClient.invalidateQueries({ queryKey: trpc.refund.list.pathKey() });
}

function outcomeOf(r: RefundView): string {
  if (r.status === "SUCCEEDED") return `Refund of ${r.amount} ${r.creditTypeId} to ${r.userId} succeeded: the points are back.`;
  return `The attempt failed (${r.lastError ?? "no error recorded"}); the refund is ${r.status} after ${r.attempts} attempts.`;
}

export function RetryRefundDialog({ refund, onDone }: { refund: RefundView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const changed = useRefundsChanged();
  const base = `retry-${refund.id}`;
  const dialog = useReasonDialog(trpc.refund.retry.mutationOptions(), { ids: { reason: `${base}-reason` }, forbidden: OPERATOR_NEEDED });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: RotateCw, label: "Retry…" }}
      title="Retry this refund now"
      description={`One attempt at once to give ${refund.amount} ${refund.creditTypeId} back to ${refund.userId}. It never credits twice, even if someone else retries it at the same time.`}
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { refundId: refund.id, reason } }),
          (view) => {
            changed();
            onDone(outcomeOf(view));
          },
        )
      }
      submitLabel="Retry now"
      pendingLabel="Retrying…"
    />
  );
}

export function ResolveRefundDialog({ refund, onDone }: { refund: RefundView; onDone: (message: string) => void }) {
  const trpc = useTRPC();
  const changed = useRefundsChanged();
  const base = `resolve-${refund.id}`;
  const dialog = useReasonDialog(trpc.refund.resolve.mutationOptions(), { ids: { reason: `${base}-reason` }, forbidden: OPERATOR_NEEDED });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: CheckCheck, label: "Resolve…" }}
      title="Resolve without crediting"
      description={`Marks the refund RESOLVED: the ${refund.amount} ${refund.creditTypeId} went back to ${refund.userId} some other way. Nothing is credited.`}
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { refundId: refund.id, reason } }),
          () => {
            changed();
            onDone(`Refund of ${refund.amount} ${refund.creditTypeId} to ${refund.userId} is RESOLVED; nothing was credited.`);
          },
        )
      }
      submitLabel="Resolve"
      pendingLabel="Resolving…"
      destructive
    />
  );
}

export type BulkResult = { id: string; userId: string; ok: boolean; text: string };

/** Retries every selected refund (one attempt each, in turn), with one reason; each row gets its own result. */
export function BulkRetryDialog({
  refunds,
  onDone,
}: {
  refunds: RefundView[];
  onDone: (results: BulkResult[]) => void;
}) {
  const client = useTRPCClient();
  const changed = useRefundsChanged();
  const [running, setRunning] = useState(false);
  const dialog = useReasonDialog(
    {
      mutationFn: async ({ reason }: { reason: string }) => {
        setRunning(true);
        const results: BulkResult[] = [];
        try {
          for (const r of refunds) {
            try {
              const view = await client.refund.retry.mutate({ refundId: r.id, reason });
              results.push({ id: r.id, userId: r.userId, ok: view.status === "SUCCEEDED", text: outcomeOf(view) });
            } catch (e) {
              results.push({ id: r.id, userId: r.userId, ok: false, text: describeError(e) });
            }
          }
        } finally {
          setRunning(false);
        }
        return results;
      },
    },
    { ids: { reason: "bulk-retry-reason" }, forbidden: OPERATOR_NEEDED },
  );
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: RotateCw, label: `Retry selected (${refunds.length})…`, disabled: refunds.length === 0 || running }}
      title={`Retry ${refunds.length} ${refunds.length === 1 ? "refund" : "refunds"} now`}
      description="One attempt each, one after the other, with this reason on every audit entry. None is ever credited twice."
      descriptionId="bulk-retry-description"
      alertId="bulk-retry-error"
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { reason } }),
          (results) => {
            changed();
            onDone(results);
          },
        )
      }
      submitLabel="Retry all"
      pendingLabel="Retrying…"
    />
  );
}
