"use client";

import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Ban, Copy, KeyRound, Plus, UserCog, UserX } from "lucide-react";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";
import { useTRPC } from "~/trpc/client";
import { Badge } from "~/components/ui/badge";
import { Button } from "~/components/ui/button";
import { Input } from "~/components/ui/input";
import { Select, SelectContent, SelectItem, SelectTrigger, SelectValue } from "~/components/ui/select";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "~/components/ui/table";
import { ActionNotice, useActionNotice } from "./action-notice";
import { FormField } from "./form-field";
import { formatUtc } from "./format";
import { QueryFallback } from "./query-fallback";
import { ReasonDialog, useReasonDialog } from "./reason-dialog";
import { RoleBadge } from "./role-badge";

type Outputs = inferRouterOutputs<AppRouter>;
type KeyView = Outputs["apiKey"]["list"][number];
type UserView = Outputs["adminUser"]["list"][number];
type Role = UserView["role"];
const ROLES: readonly Role[] = ["viewer", "operator", "admin"];
const ADMIN_NEEDED = "managing keys and users needs the admin role.";

// ── API keys ─────────────────────────────────────────────────────────────────

export function KeysPanel() {
  const trpc = useTRPC();
  const keys = useQuery(trpc.apiKey.list.queryOptions());
  const [notice, setNotice] = useActionNotice();
  const [secret, setSecret] = useState<{ name: string; key: string } | null>(null);
  return (
    <div className="flex flex-col gap-4">
      <ActionNotice message={notice} testId="keys-notice" />
      {secret ? <SecretOnce name={secret.name} secret={secret.key} onDismiss={() => setSecret(null)} /> : null}
      <CreateKeyDialog
        onCreated={(name, key) => {
          setNotice(null);
          setSecret({ name, key });
        }}
      />
      {!keys.data ? (
        <QueryFallback what="The API keys" query={keys} />
      ) : keys.data.length === 0 ? (
        <p className="rounded-lg border border-dashed border-border px-6 py-10 text-center text-sm text-muted-foreground">
          No API keys yet: a service needs one to call the API.
        </p>
      ) : (
        <div className="rounded-lg border border-border">
          <Table regionLabel="API keys">
            <TableHeader>
              <TableRow className="hover:bg-transparent">
                <TableHead>Name</TableHead>
                <TableHead>Key starts</TableHead>
                <TableHead>Scopes</TableHead>
                <TableHead>Created (UTC)</TableHead>
                <TableHead>State</TableHead>
                <TableHead>Actions</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {keys.data.map((k) => (
                <TableRow key={k.id} data-testid="key-row" data-key-name={k.name}>
                  <TableCell className="min-w-36 break-all">{k.name}</TableCell>
                  <TableCell className="font-mono text-xs">fpk_{k.prefix}_…</TableCell>
                  <TableCell>{k.scopes.length ? k.scopes.map((s) => <Badge key={s} variant="outline">{s}</Badge>) : "—"}</TableCell>
                  <TableCell className="font-mono text-xs">{formatUtc(k.createdAt)}</TableCell>
                  <TableCell>
                    {k.revokedAt ? <Badge variant="destructive">revoked</Badge> : <Badge variant="success">active</Badge>}
                  </TableCell>
                  <TableCell>{k.revokedAt ? null : <RevokeKeyDialog apiKey={k} onDone={setNotice} />}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}
    </div>
  );
}

function SecretOnce({ name, secret, onDismiss }: { name: string; secret: string; onDismiss: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <section aria-label="The new key" className="flex flex-col gap-2 rounded-lg border border-warning-line bg-warning-soft p-4 text-sm text-warning-text" data-testid="new-key">
      <p className="font-semibold">The key of {name} — shown this once. Copy it now; it cannot be shown again.</p>
      <div className="flex flex-wrap items-center gap-2">
        <code className="break-all rounded bg-background px-2 py-1 font-mono text-xs" data-testid="new-key-secret">
          {secret}
        </code>
        <Button
          size="sm"
          variant="outline"
          onClick={() =>
            void navigator.clipboard
              ?.writeText(secret)
              .then(() => setCopied(true))
              .catch(() => setCopied(false))
          }
        >
          <Copy aria-hidden="true" />
          {copied ? "Copied" : "Copy"}
        </Button>
        <Button size="sm" variant="ghost" onClick={onDismiss}>
          Done
        </Button>
      </div>
    </section>
  );
}

function useKeysChanged() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  return () => void qc.invalidateQueries({ queryKey: trpc.apiKey.list.queryKey() });
}

function CreateKeyDialog({ onCreated }: { onCreated: (name: string, key: string) => void }) {
  const trpc = useTRPC();
  const changed = useKeysChanged();
  const [name, setName] = useState("");
  const [catalog, setCatalog] = useState(false);
  const ids = { name: "key-name", scopes: "key-scopes", reason: "key-reason" };
  const dialog = useReasonDialog(trpc.apiKey.create.mutationOptions(), { ids, forbidden: ADMIN_NEEDED }, () => {
    setName("");
    setCatalog(false);
  });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: KeyRound, label: "New key…", variant: "default", className: "self-start" }}
      title="New API key"
      description="For one service. The key is shown once when it is made; only its hash is kept."
      descriptionId="key-create-description"
      alertId="key-create-error"
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => (name.trim() ? { send: { name: name.trim(), scopes: catalog ? ["catalog" as const] : [], reason } } : { fields: { name: "Name the service the key is for." } }),
          (created) => {
            changed();
            onCreated(created.name, created.key);
          },
        )
      }
      submitLabel="Create key"
      pendingLabel="Creating…"
    >
      <FormField id={ids.name} label="Service name" error={dialog.errors.fields.name}>
        {(c) => <Input {...c} value={name} onChange={(e) => setName(e.target.value)} maxLength={100} />}
      </FormField>
      <label className="flex items-center gap-2 text-sm" htmlFor={ids.scopes}>
        <input id={ids.scopes} type="checkbox" checked={catalog} onChange={(e) => setCatalog(e.target.checked)} className="size-4 accent-primary" />
        Scope <span className="font-mono">catalog</span>: may create credit types and flash sales
      </label>
    </ReasonDialog>
  );
}

function RevokeKeyDialog({ apiKey, onDone }: { apiKey: KeyView; onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useKeysChanged();
  const base = `revoke-${apiKey.id}`;
  const dialog = useReasonDialog(trpc.apiKey.revoke.mutationOptions(), { ids: { reason: `${base}-reason` }, forbidden: ADMIN_NEEDED });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: Ban, label: "Revoke…" }}
      title={`Revoke the key of ${apiKey.name}`}
      description="Every instance refuses it within 5 seconds (401). This cannot be undone: the service needs a new key."
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { id: apiKey.id, reason } }),
          () => {
            changed();
            onDone(`The key of ${apiKey.name} is revoked.`);
          },
        )
      }
      submitLabel="Revoke key"
      pendingLabel="Revoking…"
      destructive
    />
  );
}

// ── Users ────────────────────────────────────────────────────────────────────

export function UsersPanel({ selfEmail }: { selfEmail: string }) {
  const trpc = useTRPC();
  const users = useQuery(trpc.adminUser.list.queryOptions());
  const [notice, setNotice] = useActionNotice();
  return (
    <div className="flex flex-col gap-4">
      <ActionNotice message={notice} testId="users-notice" />
      <CreateUserDialog onDone={setNotice} />
      {!users.data ? (
        <QueryFallback what="The users" query={users} />
      ) : (
        <div className="rounded-lg border border-border">
          <Table regionLabel="Dashboard users">
            <TableHeader>
              <TableRow className="hover:bg-transparent">
                <TableHead>Email</TableHead>
                <TableHead>Role</TableHead>
                <TableHead>Created (UTC)</TableHead>
                <TableHead>State</TableHead>
                <TableHead>Actions</TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {users.data.map((u) => (
                <TableRow key={u.id} data-testid="user-row" data-email={u.email}>
                  <TableCell className="min-w-44 break-all">
                    {u.email}
                    {u.email === selfEmail ? <span className="ml-1 text-xs text-muted-foreground">(you)</span> : null}
                  </TableCell>
                  <TableCell>
                    <RoleBadge role={u.role} />
                  </TableCell>
                  <TableCell className="font-mono text-xs">{formatUtc(u.createdAt)}</TableCell>
                  <TableCell>{u.disabledAt ? <Badge variant="destructive">disabled</Badge> : <Badge variant="success">active</Badge>}</TableCell>
                  <TableCell>
                    {u.disabledAt ? null : (
                      <div className="flex flex-wrap gap-1">
                        <RoleDialog user={u} onDone={setNotice} />
                        <DisableUserDialog user={u} onDone={setNotice} />
                      </div>
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </div>
      )}
    </div>
  );
}

function useUsersChanged() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  return () => void qc.invalidateQueries({ queryKey: trpc.adminUser.list.queryKey() });
}

function RoleSelect({ id, value, onChange, control }: { id: string; value: Role; onChange: (r: Role) => void; control: object }) {
  return (
    <Select value={value} onValueChange={(v) => onChange(v as Role)} name={id}>
      <SelectTrigger {...control}>
        <SelectValue />
      </SelectTrigger>
      <SelectContent>
        {ROLES.map((r) => (
          <SelectItem key={r} value={r}>
            {r}
          </SelectItem>
        ))}
      </SelectContent>
    </Select>
  );
}

function CreateUserDialog({ onDone }: { onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useUsersChanged();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const ids = { email: "user-email", password: "user-password", role: "user-role", reason: "user-reason" };
  const dialog = useReasonDialog(trpc.adminUser.create.mutationOptions(), { ids, forbidden: ADMIN_NEEDED }, () => {
    setEmail("");
    setPassword("");
    setRole("viewer");
  });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: Plus, label: "New user…", variant: "default", className: "self-start" }}
      title="New dashboard user"
      description="Viewers read; operators also retry and resolve refunds, force circuits and pause sales; admins also manage limits, keys and users."
      descriptionId="user-create-description"
      alertId="user-create-error"
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => {
            const fields: Record<string, string> = {};
            if (!/^\S+@\S+\.\S+$/.test(email.trim())) fields.email = "An email address.";
            if (password.length < 12) fields.password = "At least 12 characters.";
            return Object.keys(fields).length ? { fields } : { send: { email: email.trim(), password, role, reason } };
          },
          (u) => {
            changed();
            onDone(`${u.email} can sign in as ${u.role}.`);
          },
        )
      }
      submitLabel="Create user"
      pendingLabel="Creating…"
    >
      <FormField id={ids.email} label="Email" error={dialog.errors.fields.email}>
        {(c) => <Input {...c} type="email" autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} />}
      </FormField>
      <FormField id={ids.password} label="Password" hint="At least 12 characters; tell it to them another way." error={dialog.errors.fields.password}>
        {(c) => <Input {...c} type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} maxLength={200} />}
      </FormField>
      <FormField id={ids.role} label="Role" error={dialog.errors.fields.role}>
        {(c) => <RoleSelect id={ids.role} value={role} onChange={setRole} control={c} />}
      </FormField>
    </ReasonDialog>
  );
}

function RoleDialog({ user, onDone }: { user: UserView; onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useUsersChanged();
  const [role, setRole] = useState<Role>(user.role);
  const base = `role-${user.id}`;
  const ids = { role: `${base}-role`, reason: `${base}-reason` };
  const dialog = useReasonDialog(trpc.adminUser.setRole.mutationOptions(), { ids, forbidden: ADMIN_NEEDED }, () => setRole(user.role));
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: UserCog, label: "Role…" }}
      title={`Change the role of ${user.email}`}
      description="Applies to their next request. The last admin cannot be demoted."
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { id: user.id, role, reason } }),
          (u) => {
            changed();
            onDone(`${u.email} is now ${u.role}.`);
          },
        )
      }
      submitLabel="Change role"
      pendingLabel="Changing…"
    >
      <FormField id={ids.role} label="Role" error={dialog.errors.fields.role}>
        {(c) => <RoleSelect id={ids.role} value={role} onChange={setRole} control={c} />}
      </FormField>
    </ReasonDialog>
  );
}

function DisableUserDialog({ user, onDone }: { user: UserView; onDone: (m: string) => void }) {
  const trpc = useTRPC();
  const changed = useUsersChanged();
  const base = `disable-${user.id}`;
  const dialog = useReasonDialog(trpc.adminUser.disable.mutationOptions(), { ids: { reason: `${base}-reason` }, forbidden: ADMIN_NEEDED });
  return (
    <ReasonDialog
      dialog={dialog}
      trigger={{ icon: UserX, label: "Disable…" }}
      title={`Disable ${user.email}`}
      description="They are signed out everywhere at once and cannot sign in again. The last admin cannot be disabled."
      descriptionId={`${base}-description`}
      alertId={`${base}-error`}
      onSubmit={(event) =>
        dialog.submit(
          event,
          (reason) => ({ send: { id: user.id, reason } }),
          (u) => {
            changed();
            onDone(`${u.email} is disabled and signed out.`);
          },
        )
      }
      submitLabel="Disable user"
      pendingLabel="Disabling…"
      destructive
    />
  );
}
