/**
 * Rewrites the generated blocks of docs/api.md from the code (procedures,
 * error codes, configuration). `npm run docs:api`; the unit tests fail while
 * the file is out of date.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { renderApiDoc } from "../src/server/api/reference";

const file = "docs/api.md";
const { text, problems } = renderApiDoc(readFileSync(file, "utf8"));
writeFileSync(file, text);
for (const p of problems) console.error(`- ${p}`);
console.log(problems.length ? `${file} written, with ${problems.length} problem(s) above` : `${file} is up to date`);
process.exitCode = problems.length ? 1 : 0;
