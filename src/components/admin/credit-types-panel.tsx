"use client";

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Plus } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Input } from "~/components/ui/input";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { ActionNotice, useActionNotice } from "./action-notice";
import { FormField } from "./form-field";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";

const ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The kinds of points; admins add new ones (never renamed or deleted). */
export function CreditTypesPanel({ canCreate }: { canCreate: boolean }) {
  const trpc = useTRPC();
  const types = useQuery(trpc.creditType.list.queryOptions());
  const [notice, setNotice] = useActionNotice();
  return (
    <div className="flex flex-col gap-4">
      <ActionNotice message={notice} testId="credit-types-notice" />
      {canCreate ? <CreateCreditTypeDialog onDone={setNotice} /> : null}
      {!types.data ? (
        <QueryFallback what="The credit types" query={types} />
      ) : types.data.length === 0 ? (
        <p className="rounded-lg border border-dashed border-border px-6 py-10 text-center text-sm text-muted-foreground">
          No credit types yet: every account holds one, so create one before granting points.
        </p>
      ) : (
        <div className="rounded-lg border border-border">
          <Table regionLabel="Credit types">
            <TableHeader>
              <TableRow className="hover:bg-transparent">
                <TableHead>Id</TableHead>
                <TableHead>Name</TableHead>
                <TableHead>Created (UTC)</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {types.data.map((t) => (
                <TableRow key={t.id} data-testid="credit-type-row">
                  <TableCell className="font-mono text-xs">{t.id}</TableCell>
                  <TableCell>{t.name}</TableCell>
                  <TableCell className="font-mono text-xs">{formatUtc(t.createdAt)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}
    </div>
  );
}

function CreateCreditTypeDialog({ onDone }: { onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const ids = { id: "credit-type-id", name: "credit-type-name", reason: "credit-type-reason" };
  const dialog = useReasonDialog(trpc.creditType.create.mutationOptions(), { ids, forbidden: "creating a credit type needs the admin role." }, () => {
    setId("");
    setName("");
  });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: Plus, label: "New credit type…", variant: "default", className: "self-start" }}
      title="New credit type"
      description="A kind of points accounts can hold. Its id is permanent; creating it again with the same name changes nothing."
      descriptionId="credit-type-description"
      alertId="credit-type-error"
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => {
            const fields: Record<string, string> = {};
            if (!ID.test(id.trim())) fields.id = "1–64 of letters, digits and _.:-";
            if (!name.trim()) fields.name = "Give it a name.";
            return Object.keys(fields).length ? { fields } : { send: { id: id.trim(), name: name.trim(), reason } };
          },
          (t) => {
            void qc.invalidateQueries({ queryKey: trpc.creditType.list.queryKey() });
            onDone(`Credit type ${t.id} (${t.name}) is ready.`);
          },
        )
      }
      submitLabel="Create"
      pendingLabel="Creating…"
    >
      <FormField id={ids.id} label="Id" hint="e.g. points, miles" error={dialog.errors.fields.id}>
        {(c) => <Input {...c} value={id} onChange={(e) => setId(e.target.value)} maxLength={64} />}
      </FormField>
      <FormField id={ids.name} label="Name" error={dialog.errors.fields.name}>
        {(c) => <Input {...c} value={name} onChange={(e) => setName(e.target.value)} maxLength={200} />}
      </FormField>
    </ReasonDialog>
  );
}
