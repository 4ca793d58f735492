#!/usr/bin/env bash
# THE run command (`npm run setup`): from a fresh clone to a running service.
# Installs what is missing, writes .env, creates and migrates the database,
# seeds demo data, builds, then runs the web server and the worker in the
# foreground until Ctrl-C. Safe to run again.
#
#   --no-start   do everything but start the processes
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

start=1
for arg in "$@"; do
  case "$arg" in
    --no-start) start=0 ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $arg (try --help)" ;;
  esac
done

export NEXT_TELEMETRY_DISABLED=1
require_node

if [ ! -f .env ]; then
  # The two database roles get passwords of their own, made here once.
  node -e '
    const fs = require("node:fs");
    const pw = () => require("node:crypto").randomBytes(18).toString("base64url");
    fs.writeFileSync(".env", fs.readFileSync(".env.example", "utf8")
      .replace("CHANGE_ME_APP", pw()).replace("CHANGE_ME_OWNER", pw()), { mode: 0o600 });'
  say "wrote .env from .env.example, with new database passwords (edit it to change the database, Redis or port)"
fi
load_dotenv
[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set (in .env or the environment)."
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

# After .env: npm ci's postinstall (`prisma generate`) tries to download an engine
# when DATABASE_URL is unset.
if ! node_modules_fresh; then
  say "installing dependencies (npm ci)"
  npm ci
fi

say "checking PostgreSQL and Redis"
check_services || die "start the services above, then run \`npm run setup\` again."

say "database: roles, schema, rights"
npm run -s db:setup

say "seeding demo data"
if [ -f prisma/seed.ts ]; then
  npm run -s db:seed
else
  warn "prisma/seed.ts does not exist yet: skipping the seed"
fi

say "building (next build + node entry points)"
npm run -s build

port="${PORT:-3000}"
if [ "$start" -eq 0 ]; then
  say "ready: \`npm start\` (web + API on port $port) and \`npm run worker\` (background jobs)"
  exit 0
fi

say "starting the web server and the worker (Ctrl-C stops both)"
pids=()
# npm does not pass SIGTERM on to its script: signal the whole tree, leaves first.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null || true
}
stop_all() {
  trap - INT TERM EXIT
  local pid
  for pid in "${pids[@]}"; do kill_tree "$pid"; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

npm start &
pids+=($!)
npm run -s worker &
pids+=($!)

printf '\n  FlashPoints: http://localhost:%s  (dashboard: /admin, API: /api/trpc, health: /api/health)\n\n' "$port"

# Either process ending ends the session (bash 3.2 has no `wait -n`).
while :; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      code=0
      wait "$pid" || code=$?
      warn "a process (pid $pid) exited with status $code; stopping the other"
      exit "$((code == 0 ? 1 : code))"
    fi
  done
  sleep 1 &
  wait $! || true # a signal interrupts `wait` at once, so the traps run promptly
done
