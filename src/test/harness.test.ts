import { describe, expect, it } from "vitest";
import { AdminRole, LedgerType } from "~/generated/prisma/enums";

// Proves the unit project's wiring: the `~/` alias, the generated Prisma client
// (postinstall) and NODE_ENV=test, which turns failpoints on.
describe("unit test harness", () => {
  it("resolves ~/ to src/ and sees the generated Prisma enums", () => {
    expect(Object.values(LedgerType).sort()).toEqual(["CREDIT", "DEBIT"]);
    expect(Object.keys(AdminRole)).toEqual(["viewer", "operator", "admin"]);
  });

  it("runs with NODE_ENV=test", () => {
    expect(process.env.NODE_ENV).toBe("test");
  });
});
