import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { testOwnerDatabaseUrl } from "~/test/env";
import { adminCaller, ensureCreditType, makeApiKey, postJson, serviceCaller, startApi } from "~/test/api";
import { createAdminUser } from "./admin-users";
import { writeAudit } from "~/server/audit/audit-log";
import { createCaller } from "~/server/api/root";
import { createContextInner } from "~/server/api/context";

let deps: Deps;
let api: RunningServer;

beforeAll(async () => {
  deps = await createTestDeps();
  api = await startApi(deps);
});

afterAll(async () => {
  await api.close();
  await closeDeps(deps);
});

type ErrorBody = { error: { data: { appCode: string; retryAfterMs?: number } } };

async function login(email: string, password: string, ip?: string) {
  return postJson(api.url, "auth.login", { email, password }, ip ? { "x-test-ip": ip } : {});
}

describe("admin sign-in", () => {
  it("signs in with an HttpOnly SameSite session cookie, which identifies the admin until sign-out", async () => {
    const email = `${uid("op")}@example.com`;
    await createAdminUser(deps.db, { email, password: "a long enough password", role: "operator" });
    const res = await login(email.toUpperCase(), "a long enough password");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ result: { data: { user: { email, role: "operator" } } } });
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^fp_session=[A-Za-z0-9_-]{40,};/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    const session = cookie.split(";")[0]!;

    const me = await fetch(`${api.url}/api/trpc/auth.me`, { headers: { cookie: session } });
    expect(await me.json()).toEqual({ result: { data: { email, role: "operator" } } });

    const out = await postJson(api.url, "auth.logout", {}, { cookie: session });
    expect(out.status).toBe(200);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    const after = await fetch(`${api.url}/api/trpc/auth.me`, { headers: { cookie: session } });
    expect(await after.json()).toEqual({ result: { data: null } });
    // The session row is revoked server-side, not just forgotten by the browser.
    const audit = await fetch(`${api.url}/api/trpc/audit.list`, { headers: { cookie: session } });
    expect(audit.status).toBe(401);
  });

  it("answers a wrong password and an unknown email the same way", async () => {
    const email = `${uid("op")}@example.com`;
    await createAdminUser(deps.db, { email, password: "a long enough password", role: "viewer" });
    const wrong = await login(email, "not the password");
    const unknown = await login(`${uid("nobody")}@example.com`, "not the password");
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect((res.json as ErrorBody).error.data.appCode).toBe("UNAUTHENTICATED");
      expect(res.headers.get("set-cookie")).toBeNull();
    }
  });

  it("limits failed sign-ins per account, even with the right password afterwards", async () => {
    const email = `${uid("op")}@example.com`;
    await createAdminUser(deps.db, { email, password: "a long enough password", role: "viewer" });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await login(email, "wrong password!")).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    const right = await login(email, "a long enough password");
    expect(right.status).toBe(429);
    const body = right.json as ErrorBody;
    expect(body.error.data.appCode).toBe("RATE_LIMITED");
    expect(body.error.data.retryAfterMs).toBeGreaterThan(0);
    expect(Number(right.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("validates login input", async () => {
    const res = await postJson(api.url, "auth.login", { email: "not-an-email", password: "x" });
    expect(res.status).toBe(400);
    expect((res.json as ErrorBody).error.data.appCode).toBe("VALIDATION");
  });
});

describe("roles and principals", () => {
  it("admin procedures need a session; an API key is not one", async () => {
    const key = await makeApiKey(deps);
    const res = await fetch(`${api.url}/api/trpc/audit.list`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(401);
    const service = await serviceCaller(deps);
    await expect(service.audit.list({ limit: 5 })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("service procedures need an API key; a session is not one", async () => {
    const { caller } = await adminCaller(deps, "admin");
    await expect(
      caller.credit.grant({ userId: "x", creditTypeId: "points", amount: 1, businessCode: "t", businessId: uid("b") }),
    ).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(caller.system.ping({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("read procedures take an API key or a viewer's session", async () => {
    await ensureCreditType(deps);
    const { caller } = await adminCaller(deps, "viewer");
    await expect(caller.credit.account({ userId: uid("nobody"), creditTypeId: "points" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await caller.creditType.list({})).toEqual(expect.arrayContaining([expect.objectContaining({ id: "points" })]));
    const anonymous = createCaller(createContextInner({ deps }));
    await expect(anonymous.credit.account({ userId: "x", creditTypeId: "points" })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("a viewer reads the audit log, newest first, with keyset pages", async () => {
    const { caller, email } = await adminCaller(deps, "viewer");
    const marker = uid("target");
    for (let i = 0; i < 3; i++) {
      await deps.db.$transaction((tx) =>
        writeAudit(tx, { actor: { email, role: "viewer" }, action: "test.mark", target: `${marker}:${i}`, reason: "test" }),
      );
    }
    const page1 = await caller.audit.list({ limit: 2 });
    expect(page1.items.map((i) => i.target)).toEqual([`${marker}:2`, `${marker}:1`]);
    expect(page1.nextCursor).not.toBeNull();
    const page2 = await caller.audit.list({ limit: 2, cursor: page1.nextCursor! });
    expect(page2.items[0]?.target).toBe(`${marker}:0`);
    expect(page2.items[0]).toMatchObject({ actor: email, role: "viewer", action: "test.mark", reason: "test" });
  });

  it("an expired session is no session", async () => {
    const { token } = await adminCaller(deps, "admin");
    await deps.db.adminSession.updateMany({ where: {}, data: {} });
    await deps.db.$executeRaw`UPDATE admin_sessions SET expires_at = now() - interval '1 second'`;
    const caller = createCaller(createContextInner({ deps, sessionToken: token }));
    expect(await caller.auth.me()).toBeNull();
  });
});

describe("the audit log", () => {
  it("is append-only: UPDATE, DELETE and TRUNCATE are refused by the database", async () => {
    await deps.db.$transaction((tx) =>
      writeAudit(tx, { actor: { email: "a@b.c", role: "admin" }, action: "x", target: "y", reason: "append only" }),
    );
    // Even the tables' owner (migrations) meets the trigger.
    const owner = new pg.Client({ connectionString: testOwnerDatabaseUrl() });
    await owner.connect();
    try {
      await expect(owner.query("UPDATE audit_log SET reason = 'changed'")).rejects.toThrow(/append-only/);
      await expect(owner.query("DELETE FROM audit_log")).rejects.toThrow(/append-only/);
      await expect(owner.query("TRUNCATE audit_log")).rejects.toThrow(/append-only/);
    } finally {
      await owner.end();
    }
    expect(await deps.db.auditLog.count({ where: { reason: "append only" } })).toBe(1);
  });

  it("the service's own role may only add to it and read it, and cannot switch its trigger off", async () => {
    const [who] = await deps.db.$queryRaw<{ user: string }[]>`SELECT current_user::text AS "user"`;
    expect(who?.user).toMatch(/_app$/);
    for (const statement of [
      "UPDATE audit_log SET reason = 'changed'",
      "DELETE FROM audit_log",
      "TRUNCATE audit_log",
      "ALTER TABLE audit_log DISABLE TRIGGER ALL",
      "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
      "ALTER TABLE accounts DROP CONSTRAINT accounts_balance_non_negative",
      "DELETE FROM _prisma_migrations",
    ]) {
      await expect(deps.db.$executeRawUnsafe(statement), statement).rejects.toThrow(/permission denied|must be owner/);
    }
    await deps.db.$transaction((tx) =>
      writeAudit(tx, { actor: { email: "a@b.c", role: "admin" }, action: "x", target: "y", reason: "still appends" }),
    );
    expect(await deps.db.auditLog.count({ where: { reason: "still appends" } })).toBe(1);
  });

  it("rolls back with the intervention it records", async () => {
    const reason = uid("rollback");
    await expect(
      deps.db.$transaction(async (tx) => {
        await writeAudit(tx, { actor: { email: "a@b.c", role: "admin" }, action: "x", target: "y", reason });
        throw new Error("the intervention failed");
      }),
    ).rejects.toThrow("the intervention failed");
    expect(await deps.db.auditLog.count({ where: { reason } })).toBe(0);
  });
});
