import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { procedures, renderApiDoc } from "./reference";

describe("docs/api.md", () => {
  const doc = readFileSync("docs/api.md", "utf8");

  it("documents every procedure of the router, and none it lacks", () => {
    expect(procedures().size).toBeGreaterThan(10);
    expect(renderApiDoc(doc).problems).toEqual([]);
  });

  it("is up to date with the schemas, error codes and configuration (npm run docs:api rewrites it)", () => {
    expect(renderApiDoc(doc).text === doc, "docs/api.md is stale: run `npm run docs:api`").toBe(true);
  });

  it("notices a procedure without a section", () => {
    const without = doc.replace(/<!-- generated:procedure system\.ping -->[\s\S]*?<!-- \/generated -->/, "");
    expect(renderApiDoc(without).problems).toEqual([expect.stringContaining("no section for system.ping")]);
  });
});
