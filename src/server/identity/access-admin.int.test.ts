import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDeps, closeDeps } from "~/test/deps";
import { adminCaller } from "~/test/api";
import { createOwnDatabase } from "~/test/own-database";
import { createCaller } from "~/server/api/root";
import { createContextInner } from "~/server/api/context";
import type { Deps } from "~/server/infra/deps";

/**
 * API keys and dashboard users, managed by admins through the API (in a
 * database of the file's own: "the last admin" means the last one there).
 */
describe("apiKey.* and adminUser.*", () => {
  let own: Awaited<ReturnType<typeof createOwnDatabase>>;
  let deps: Deps;

  beforeAll(async () => {
    own = await createOwnDatabase();
    deps = await createTestDeps({ DATABASE_URL: own.databaseUrl, REDIS_KEY_PREFIX: own.redisPrefix });
  }, 60_000);

  afterAll(async () => {
    if (deps) await closeDeps(deps);
    await own?.dispose();
  });

  const withKey = (key: string) => createCaller(createContextInner({ deps, authorization: `Bearer ${key}` }));

  it("an admin creates a key (the secret once), lists keys without secrets, revokes one: it is refused at once; all audited; others may not", async () => {
    const { caller: admin, email } = await adminCaller(deps, "admin");
    const created = await admin.apiKey.create({ name: "checkout service", scopes: ["catalog"], reason: "new checkout service" });
    expect(created.key).toMatch(/^fpk_/);
    await expect(withKey(created.key).system.ping()).resolves.toBeDefined();

    const listed = await admin.apiKey.list();
    const mine = listed.find((k) => k.id === created.id);
    expect(mine).toMatchObject({ name: "checkout service", scopes: ["catalog"], revokedAt: null, prefix: created.prefix });
    expect(JSON.stringify(listed)).not.toContain(created.key);

    expect(await admin.apiKey.revoke({ id: created.id, reason: "service retired" })).toMatchObject({ revokedAt: expect.any(String) });
    await expect(withKey(created.key).system.ping()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const audit = await deps.db.auditLog.findMany({ where: { target: `apiKey:${created.id}` }, orderBy: { id: "asc" } });
    expect(audit.map((a) => [a.action, a.actor, a.reason])).toEqual([
      ["apiKey.create", email, "new checkout service"],
      ["apiKey.revoke", email, "service retired"],
    ]);

    for (const role of ["viewer", "operator"] as const) {
      const { caller } = await adminCaller(deps, role);
      await expect(caller.apiKey.list()).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(caller.apiKey.create({ name: "x", reason: "try it" })).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(caller.adminUser.create({ email: `x-${role}@test.local`, password: "long enough password", role: "admin", reason: "try it" })).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
    }
    await expect(admin.apiKey.create({ name: "", reason: "why" } as never)).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("users: an admin creates one (audited; a second with the email is a conflict), changes a role, disables one (their session ends at once)", async () => {
    const { caller: admin } = await adminCaller(deps, "admin");
    const viewer = await admin.adminUser.create({ email: "Night.Shift@Test.Local", password: "a long password 123", role: "viewer", reason: "night shift" });
    expect(viewer).toMatchObject({ email: "night.shift@test.local", role: "viewer", disabledAt: null });
    expect(JSON.stringify(await admin.adminUser.list())).not.toMatch(/passwordHash|\$argon|\$scrypt/);
    await expect(admin.adminUser.create({ email: "night.shift@test.local", password: "another long one 1", role: "admin", reason: "again" })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    expect(await admin.adminUser.setRole({ id: viewer.id, role: "operator", reason: "on call this week" })).toMatchObject({ role: "operator" });

    const { caller: someone, token } = await adminCaller(deps, "operator");
    const me = await someone.auth.me();
    expect(me).not.toBeNull();
    const target = (await admin.adminUser.list()).find((u) => u.email === me!.email)!;
    expect(await admin.adminUser.disable({ id: target.id, reason: "left the team" })).toMatchObject({ disabledAt: expect.any(String) });
    const again = createCaller(createContextInner({ deps, sessionToken: token }));
    await expect(again.refund.list({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const audit = await deps.db.auditLog.findMany({ where: { target: { in: [`adminUser:night.shift@test.local`, `adminUser:${me!.email}`] } }, orderBy: { id: "asc" } });
    expect(audit.map((a) => a.action)).toEqual(["adminUser.create", "adminUser.setRole", "adminUser.disable"]);
  });

  it("the last active admin can be neither demoted nor disabled, even by two admins demoting each other at once", async () => {
    // Make every admin of the database but two non-admins, so the two below are the only ones.
    await deps.db.adminUser.updateMany({ where: { role: "admin" }, data: { role: "viewer" } });
    const a = await adminCaller(deps, "admin");
    const b = await adminCaller(deps, "admin");
    const users = await a.caller.adminUser.list();
    const idOf = (email: string) => users.find((u) => u.email === email)!.id;
    const results = await Promise.allSettled([
      a.caller.adminUser.setRole({ id: idOf(b.email), role: "viewer", reason: "a demotes b" }),
      b.caller.adminUser.setRole({ id: idOf(a.email), role: "viewer", reason: "b demotes a" }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    expect(ok).toHaveLength(1);
    const left = (await deps.db.adminUser.findMany({ where: { role: "admin", disabledAt: null } })).map((u) => u.email);
    expect(left).toHaveLength(1);
    const last = left[0] === a.email ? a : b;
    for (const change of [
      () => last.caller.adminUser.setRole({ id: idOf(last.email), role: "operator", reason: "step down" }),
      () => last.caller.adminUser.disable({ id: idOf(last.email), reason: "leaving" }),
    ]) {
      await expect(change()).rejects.toMatchObject({ code: "CONFLICT", cause: { code: "INVALID_STATE" } });
    }
    expect(await deps.db.adminUser.count({ where: { role: "admin", disabledAt: null } })).toBe(1);
  });
});
