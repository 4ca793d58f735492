// Bundles the Node entry points (HTTP server, worker, CLI) that Next does not
// compile. Dependencies stay external and load from node_modules.
import { build } from "esbuild";

await build({
  entryPoints: {
    server: "src/server/http/server.ts",
    worker: "src/server/worker.ts",
    cli: "src/server/cli.ts",
  },
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  packages: "external",
  sourcemap: true,
  tsconfig: "tsconfig.json",
  logLevel: "warning",
  banner: {
    js: "import { createRequire as __fpCreateRequire } from 'node:module'; const require = __fpCreateRequire(import.meta.url);",
  },
});
console.log("built dist/server.js, dist/worker.js, dist/cli.js");
