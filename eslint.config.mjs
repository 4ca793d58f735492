import nextVitals from "eslint-config-next/core-web-vitals";
import nextTypescript from "eslint-config-next/typescript";

// Imports point down only: http → api → domains → infra. A domain never
// imports the API layer, the HTTP server, the worker or the CLI; infra imports
// no domain. Tests may cross layers (they drive the API), so they are exempt.
const DOMAINS = ["credit", "operations", "outbox", "resilience", "identity", "audit", "flash-sale", "refund"];
// `worker` is both src/server/worker/ and src/server/worker.ts; `cli` is src/server/cli.ts.
const UPPER_LAYERS = ["api", "http", "worker", "cli"];

/** no-restricted-imports for files that must not reach `layers`, by alias or by relative path. */
function forbid(layers, why) {
  const names = layers.join("|");
  return [
    "error",
    {
      patterns: [
        {
          regex: `^(~/server/|(\\.\\./)+)(${names})(/|$)`,
          message: why,
        },
      ],
    },
  ];
}

const eslintConfig = [
  ...nextVitals,
  ...nextTypescript,
  {
    files: DOMAINS.map((d) => `src/server/${d}/**/*.ts`),
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": forbid(
        UPPER_LAYERS,
        "Layers point down (http → api → domains → infra): a domain must not import the API layer, the HTTP server, the worker or the CLI. Pass what it needs as a parameter instead.",
      ),
    },
  },
  {
    files: ["src/server/infra/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": forbid(
        [...UPPER_LAYERS, ...DOMAINS],
        "infra is the bottom layer: it must not import a domain, the API layer, the HTTP server, the worker or the CLI.",
      ),
    },
  },
  {
    files: ["src/server/api/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": forbid(
        ["http", "worker", "cli"],
        "The API layer must not import the HTTP server, the worker or the CLI.",
      ),
    },
  },
  {
    // No import cycles between server modules (e.g. credit ↔ operations).
    files: ["src/server/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: { "import/no-cycle": ["error", { ignoreExternal: true }] },
  },
  {
    ignores: [
      "src/generated/**",
      ".next/**",
      "dist/**",
      "node_modules/**",
      "playwright-report/**",
      "test-results/**",
      "coverage/**",
      "next-env.d.ts",
    ],
  },
];

export default eslintConfig;
