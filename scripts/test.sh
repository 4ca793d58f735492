#!/usr/bin/env bash
# THE test command (`npm test`, and CI through .ci/run): schema drift, types,
# lint, unit, integration (own throw-away database + Redis prefix; then the
# Redis-heavy files again on a Redis Cluster of its own), production build,
# fault drills and the several-instance topology against that build, then
# Playwright against it (own database + prefix too).
# Fails fast at the first red step. Needs PostgreSQL and Redis running.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

export NEXT_TELEMETRY_DISABLED=1
started=$SECONDS
passed=()
current=""

on_exit() {
  local code=$?
  if [ "$code" -ne 0 ] && [ -n "$current" ]; then
    printf '\n\033[31mFAILED\033[0m at %s after %ss (passed: %s)\n' \
      "$current" "$((SECONDS - started))" "${passed[*]:-none}" >&2
  fi
}
trap on_exit EXIT

step() {
  local name=$1 t0=$SECONDS
  shift
  current=$name
  say "$name"
  "$@"
  passed+=("$name")
  current=""
  printf '    %s: %ss\n' "$name" "$((SECONDS - t0))"
}

require_node
# Which servers to use: the environment, else .env, else this machine's. The test
# steps never use DATABASE_URL's database itself, only its server. Set before
# `npm ci`: its postinstall (`prisma generate`) tries to download an engine when
# DATABASE_URL is unset.
# The tests make databases and roles of their own: they need a role that may
# (DATABASE_ADMIN_URL, as `npm run setup` writes it in .env; else this machine's).
DATABASE_ADMIN_URL="${DATABASE_ADMIN_URL:-$(dotenv_get DATABASE_ADMIN_URL)}"
DATABASE_URL="${DATABASE_URL:-$(dotenv_get DATABASE_URL)}"
export DATABASE_ADMIN_URL="${DATABASE_ADMIN_URL:-${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}}"
export DATABASE_URL="${DATABASE_URL:-$DATABASE_ADMIN_URL}"
REDIS_URL="${REDIS_URL:-$(dotenv_get REDIS_URL)}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

if [ ! -d node_modules ]; then
  step "npm ci" npm ci
fi

say "services"
check_services || die "PostgreSQL and Redis must be running for the tests (see above)."
[ -x /usr/bin/chromium ] || die "the e2e tests need Debian's Chromium at /usr/bin/chromium: sudo apt-get install -y chromium (never \`npx playwright install\`)."
for bin in pgbouncer haproxy; do
  command -v "$bin" >/dev/null 2>&1 || die "the cluster test needs $bin: sudo apt-get install -y pgbouncer haproxy"
done

# migrate diff replays the migrations into a shadow database it creates from
# DATABASE_URL's connection: the server's `postgres` database always exists.
step "db:check" env DATABASE_URL="$(admin_database_url)" MIGRATE_DATABASE_URL="$(admin_database_url)" npm run -s db:check
step "typecheck" npm run -s typecheck
step "lint" npm run -s lint
step "unit" npm run -s test:unit
step "integration" npm run -s test:int
# The Redis-heavy integration files again, against a Redis Cluster of three
# masters the run starts itself (spare ports, removed afterwards).
step "integration (Redis Cluster)" npm run -s test:int:cluster
# The seeded simulation: two instances, faults, invariants after every step
# (prints SEED=<n>; replay a failure with SEED=<n> npm run test:sim).
step "simulation" npm run -s test:sim
step "build" npm run -s build
# Fault drills against that build: its servers and worker as processes (own
# databases, redis-servers and a PostgreSQL cluster of their own).
step "faults" npm run -s test:faults
# The several-instance topology from that build (`npm run cluster:up`): HAProxy,
# two API instances, the dashboard, two workers, PgBouncer, a streaming
# replica, Redis Cluster.
step "cluster" npm run -s test:cluster
step "e2e" npm run -s test:e2e

printf '\n\033[32mOK\033[0m all %s steps passed in %ss: %s\n' "${#passed[@]}" "$((SECONDS - started))" "${passed[*]}"
