import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Deps } from "~/server/infra/deps";
import type { RunningServer } from "~/server/http/server";
import { closeDeps, createTestDeps, uid } from "~/test/deps";
import { adminCaller, makeApiKey, postJson, startApi } from "~/test/api";
import { createCaller } from "~/server/api/root";
import { createContextInner } from "~/server/api/context";

type Body = { result?: { data: unknown }; error?: { data: { appCode: string; httpStatus: number } } };

let deps: Deps;
let api: RunningServer;

beforeAll(async () => {
  deps = await createTestDeps();
  api = await startApi(deps);
});

afterAll(async () => {
  await api?.close();
  await closeDeps(deps);
});

const post = async (procedure: string, body: unknown, key: string) => {
  const res = await postJson(api.url, procedure, body, { authorization: `Bearer ${key}` });
  return { status: res.status, body: res.json as Body };
};

describe("credit types", () => {
  it("a catalog key creates one (audited); the same again answers the same; another name is 409 CONFLICT", async () => {
    const key = await makeApiKey(deps, ["catalog"]);
    const id = uid("coupons");
    const created = await post("creditType.create", { id, name: "Coupon credit" }, key);
    expect(created.status).toBe(200);
    expect(created.body.result?.data).toEqual({ id, name: "Coupon credit", createdAt: expect.any(String) });

    const again = await post("creditType.create", { id, name: "Coupon credit" }, key);
    expect(again.body.result?.data).toEqual(created.body.result?.data);

    const other = await post("creditType.create", { id, name: "Something else" }, key);
    expect(other.status).toBe(409);
    expect(other.body.error?.data.appCode).toBe("CONFLICT");

    const audit = await deps.db.auditLog.findMany({ where: { target: `creditType:${id}` } });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "creditType.create", role: "service", after: { id, name: "Coupon credit" } });
    expect(audit[0]!.actor).toMatch(/^api-key:/);
    expect((await deps.db.creditType.findUniqueOrThrow({ where: { id } })).name).toBe("Coupon credit");
  });

  it("an admin creates one with a reason; concurrent creates of one id make one row and one audit entry", async () => {
    const admin = await adminCaller(deps, "admin");
    const id = uid("miles");
    // Ten requests of the same operator, each with its own X-Request-Id.
    const callers = Array.from({ length: 10 }, (_, i) =>
      createCaller(createContextInner({ deps, sessionToken: admin.token, requestId: `ct-req-${i}` })),
    );
    const results = await Promise.all(callers.map((c) => c.creditType.create({ id, name: "Air miles", reason: "new partner" })));
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    const audit = await deps.db.auditLog.findMany({ where: { target: `creditType:${id}` } });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: admin.email, role: "admin", reason: "new partner", requestId: expect.stringMatching(/^ct-req-\d$/) });
    expect((await admin.caller.creditType.list({})).map((t) => t.id)).toContain(id);
  });

  it("a plain key, a viewer and an operator may list but not create (403); bad input is 400; nothing is written", async () => {
    const id = uid("nope");
    const plain = await makeApiKey(deps);
    const refused = await post("creditType.create", { id, name: "Nope" }, plain);
    expect(refused.status).toBe(403);
    expect(refused.body.error?.data.appCode).toBe("FORBIDDEN");
    const list = await fetch(`${api.url}/api/trpc/creditType.list`, { headers: { authorization: `Bearer ${plain}` } });
    expect(list.status).toBe(200);

    for (const role of ["viewer", "operator"] as const) {
      const { caller } = await adminCaller(deps, role);
      await expect(caller.creditType.create({ id, name: "Nope" })).rejects.toMatchObject({ code: "FORBIDDEN" });
      expect(Array.isArray(await caller.creditType.list({}))).toBe(true);
    }

    const catalog = await makeApiKey(deps, ["catalog"]);
    for (const bad of [
      { id: "has space", name: "x" },
      { id: "", name: "x" },
      { id: "x".repeat(65), name: "x" },
      { id, name: "" },
      { id, name: "n".repeat(201) },
      { id, name: "x", extra: 1 },
    ]) {
      const res = await post("creditType.create", bad, catalog);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error?.data.appCode).toBe("VALIDATION");
    }
    expect(await deps.db.creditType.count({ where: { id } })).toBe(0);
    expect(await deps.db.auditLog.count({ where: { target: `creditType:${id}` } })).toBe(0);
  });

  it("the CLI creates one, audited; a grant into it then works", async () => {
    const id = uid("stars");
    const run = promisify(execFile);
    const cli = (args: string[]) =>
      run(path.resolve("node_modules/.bin/tsx"), ["src/server/cli.ts", ...args], {
        env: { ...process.env, DATABASE_URL: deps.env.DATABASE_URL, LOG_LEVEL: "silent" },
      });
    const { stdout } = await cli(["credit-type:create", "--id", id, "--name", "Gold stars"]);
    expect(stdout).toContain(`credit type ${id} (Gold stars) is ready`);
    await expect(cli(["credit-type:create", "--id", id, "--name", "Silver stars"])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("exists with another name"),
    });
    const audit = await deps.db.auditLog.findFirstOrThrow({ where: { target: `creditType:${id}` } });
    expect(audit).toMatchObject({ action: "creditType.create", role: "cli" });

    const key = await makeApiKey(deps);
    const grant = await post(
      "credit.grant",
      { userId: uid("u"), creditTypeId: id, amount: 25, businessCode: "welcome", businessId: uid("w") },
      key,
    );
    expect(grant.status).toBe(200);
    expect(grant.body.result?.data).toMatchObject({ balanceAfter: 25, idempotent: false });
  });
});
