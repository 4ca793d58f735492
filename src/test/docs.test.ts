import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

// The repository documents itself: every document it cites is in it, and the
// tests docs/architecture.md names as proof still exist.

const read = (file: string) => readFileSync(file, "utf8");

describe("the documentation", () => {
  it("names only tests that exist, in the files it says", () => {
    const doc = read("docs/architecture.md");
    const refs = [...doc.matchAll(/`([\w./-]+\.test\.ts)` › "([^"]+)"/g)];
    expect(refs.length).toBeGreaterThan(10);
    const missing = refs
      .map(([, file, name]) => [file!, name!.replace(/\s+/g, " ")] as const)
      .filter(([file, name]) => !existsSync(file) || !read(file).includes(JSON.stringify(name).slice(1, -1)))
      .map(([file, name]) => `${file} › ${name}`);
    expect(missing).toEqual([]);
  });

  it("links only to documents the repository has", () => {
    const broken: string[] = [];
    for (const file of ["README.md", ...["architecture", "api", "operations", "benchmarks"].map((d) => `docs/${d}.md`)]) {
      if (!existsSync(file)) continue;
      for (const [, target] of read(file).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        if (!existsSync(path.join(path.dirname(file), target!))) broken.push(`${file} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("never points at documents outside the repository", () => {
    const tracked = execFileSync("git", ["ls-files"], { encoding: "utf8" }).split("\n").filter(Boolean);
    const offenders = tracked.filter((f) => {
      if (f.startsWith(".ci/") || f === "src/test/docs.test.ts" || !/\.(md|ts|tsx|mjs|js|sh|json)$/.test(f)) return false;
      const text = read(f);
      return /\.\.\/shared|(^|[^A-Za-z/._-])(API|DESIGN)\.md/.test(text);
    });
    expect(offenders).toEqual([]);
  });
});
