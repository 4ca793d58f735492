"use client";

import { useState, type FormEvent } from "react";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { SearchX } from "lucide-react";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "~/components/ui/card";
import { Input } from "~/components/ui/input";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "~/components/ui/select";
import { describeError } from "./describe-error";
import { FormField } from "./form-field";
import { formatSnapshot, formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";

export type OperationQuery = { operationId: string } | { requestId: string } | { businessCode: string; businessId: string };
type Kind = "operationId" | "requestId" | "businessKey";

const STATUS_VARIANT = { completed: "success", skipped: "secondary", failed: "destructive", in_progress: "warning" } as const;

function toSearch(q: OperationQuery): string {
  return new URLSearchParams(q as Record<string, string>).toString();
}

/** Finds one operation by its id, a request id (yours) or a business key; shows its status, timing, input and result or error. */
export function OperationLookup({ initial }: { initial: OperationQuery | null }) {
  const router = useRouter();
  const [kind, setKind] = useState<Kind>(initial && "businessCode" in initial ? "businessKey" : initial && "requestId" in initial ? "requestId" : "operationId");
  const [value, setValue] = useState(initial && "operationId" in initial ? initial.operationId : initial && "requestId" in initial ? initial.requestId : "");
  const [code, setCode] = useState(initial && "businessCode" in initial ? initial.businessCode : "");
  const [bid, setBid] = useState(initial && "businessId" in initial ? initial.businessId : "");
  const [shown, setShown] = useState<OperationQuery | null>(initial);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const q: OperationQuery | null =
      kind === "businessKey"
        ? code.trim() && bid.trim()
          ? { businessCode: code.trim(), businessId: bid.trim() }
          : null
        : value.trim()
          ? kind === "operationId"
            ? { operationId: value.trim() }
            : { requestId: value.trim() }
          : null;
    if (!q) return;
    setShown(q);
    router.replace(`/admin/operations?${toSearch(q)}`);
  }

  return (
    <div className="flex flex-col gap-4">
      <form onSubmit={submit} className="flex flex-wrap items-end gap-3" aria-label="Find an operation">
        <FormField id="operation-kind" label="Find by" className="w-48">
          {(control) => (
            <Select value={kind} onValueChange={(v) => setKind(v as Kind)}>
              <SelectTrigger {...control}>
                <SelectValue />
              </SelectTrigger>
              <SelectContent>
                <SelectItem value="operationId">Operation id</SelectItem>
                <SelectItem value="requestId">Request id (yours)</SelectItem>
                <SelectItem value="businessKey">Business key</SelectItem>
              </SelectContent>
            </Select>
          )}
        </FormField>
        {kind === "businessKey" ? (
          <>
            <FormField id="operation-code" label="Business code" className="w-44">
              {(control) => <Input {...control} value={code} onChange={(e) => setCode(e.target.value)} maxLength={64} />}
            </FormField>
            <FormField id="operation-bid" label="Business id" className="w-72">
              {(control) => <Input {...control} value={bid} onChange={(e) => setBid(e.target.value)} maxLength={128} />}
            </FormField>
          </>
        ) : (
          <FormField id="operation-value" label={kind === "operationId" ? "Operation id" : "Request id"} className="w-80">
            {(control) => <Input {...control} value={value} onChange={(e) => setValue(e.target.value)} maxLength={128} />}
          </FormField>
        )}
        <Button type="submit">Look up</Button>
      </form>
      {shown ? <OperationDetails key={toSearch(shown)} query={shown} /> : null}
    </div>
  );
}

function OperationDetails({ query }: { query: OperationQuery }) {
  const trpc = useTRPC();
  const op = useQuery(trpc.operation.status.queryOptions(query));
  if (op.isError && !op.data) {
    return (
      <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed border-border px-6 py-12 text-center" data-testid="operation-missing">
        <SearchX aria-hidden="true" className="size-8 text-muted-foreground" />
        <h2 className="text-sm font-semibold">No operation found</h2>
        <p className="max-w-md text-sm text-muted-foreground">{describeError(op.error)}</p>
      </div>
    );
  }
  if (!op.data) return <QueryFallback what="The operation" query={op} />;
  const o = op.data;
  const body = o.error ?? o.result;
  return (
    <Card data-testid="operation-card">
      <CardHeader className="flex-row flex-wrap items-center gap-2">
        <CardTitle className="font-mono text-base">{o.type}</CardTitle>
        <Badge variant={STATUS_VARIANT[o.status]} data-testid="operation-status">
          {o.status}
        </Badge>
      </CardHeader>
      <CardContent className="flex flex-col gap-3 text-sm">
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
          <dt className="text-muted-foreground">Operation id</dt>
          <dd className="break-all font-mono text-xs">{o.operationId}</dd>
          <dt className="text-muted-foreground">Started</dt>
          <dd className="font-mono text-xs">{formatUtc(o.startedAt)}</dd>
          <dt className="text-muted-foreground">Elapsed</dt>
          <dd className="font-mono text-xs">{o.elapsedMs} ms</dd>
        </dl>
        {body !== undefined ? (
          <div>
            <div className="text-xs font-medium text-muted-foreground">{o.error ? "Error" : "Result"}</div>
            <pre tabIndex={0} className="max-h-64 overflow-auto whitespace-pre-wrap rounded bg-muted p-2 font-mono text-xs [overflow-wrap:anywhere]">
              {formatSnapshot(body)}
            </pre>
          </div>
        ) : null}
      </CardContent>
    </Card>
  );
}
