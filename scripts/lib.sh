# shellcheck shell=bash
# Shared by scripts/setup.sh and scripts/test.sh (sourced, not run).
# Plain bash 3.2 (macOS) compatible.

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\n\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# .env is read with Node's own parser (util.parseEnv), so the scripts see exactly
# what process.loadEnvFile (prisma.config.ts) sees: quotes, inline comments...

# KEY's value in .env, if any ("" otherwise).
dotenv_get() {
  [ -f .env ] || return 0
  node -e 'const v = require("node:util").parseEnv(require("node:fs").readFileSync(".env", "utf8"))[process.argv[1]]; if (v !== undefined) console.log(v)' "$1"
}

# Exports every variable of .env that the environment does not already set (the
# precedence of process.loadEnvFile). The server, worker and seed read only the
# environment; the Prisma CLI reads .env itself.
load_dotenv() {
  [ -f .env ] || return 0
  local pair
  # shellcheck disable=SC2016 # a JavaScript template literal
  while IFS= read -r -d '' pair; do export "${pair?}"; done < <(node -e '
    const vars = require("node:util").parseEnv(require("node:fs").readFileSync(".env", "utf8"));
    for (const [k, v] of Object.entries(vars)) if (!(k in process.env)) process.stdout.write(`${k}=${v}\0`);')
}

require_node() {
  # 20.12: process.loadEnvFile and util.parseEnv
  command -v node >/dev/null 2>&1 || die "Node.js >= 20.12 is required (https://nodejs.org); it is not on PATH."
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=12)?0:1)' \
    || die "Node.js >= 20.12 is required; this is $(node -v)."
}

# True when node_modules matches package-lock.json (every non-optional package
# installed at its locked version, per npm's own node_modules/.package-lock.json).
node_modules_fresh() {
  [ -f node_modules/.package-lock.json ] || return 1
  node -e '
    const lock = require("./package-lock.json").packages;
    const installed = require("./node_modules/.package-lock.json").packages;
    for (const [path, pkg] of Object.entries(lock)) {
      if (path === "" || pkg.optional || pkg.devOptional) continue;
      if (installed[path]?.version !== pkg.version) process.exit(1);
    }' 2>/dev/null
}

# The `postgres` database as a role that may create databases and roles:
# DATABASE_ADMIN_URL's, else DATABASE_URL's server and user. For CREATE DATABASE,
# roles, and commands that need a server but no particular database (migrate
# diff's shadow DB).
admin_database_url() {
  node -e 'const u = new URL(process.argv[1]); u.pathname = "/postgres"; console.log(u.toString())' "${DATABASE_ADMIN_URL:-$DATABASE_URL}"
}

# Checks that PostgreSQL (DATABASE_URL's server) and Redis (REDIS_URL) answer,
# using the project's own drivers (no psql/redis-cli needed); prints how to start
# whichever does not and returns 1. Needs node_modules.
check_services() {
  local failed=0
  if ! node -e '
    const pg = require("pg");
    const c = new pg.Client({ connectionString: process.argv[1], connectionTimeoutMillis: 3000 });
    c.connect().then(() => c.end()).catch((e) => { console.error(String(e.message || e)); process.exit(1); });
  ' "$(admin_database_url)"; then
    failed=1
    cat >&2 <<EOF

PostgreSQL does not answer at $(admin_database_url | sed 's|//[^@]*@|//|') (DATABASE_ADMIN_URL, else DATABASE_URL).
Start it; on a Debian/Ubuntu machine with the distribution's PostgreSQL:
  sudo pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start
or point DATABASE_URL (in .env or the environment) at a PostgreSQL >= 15 whose
user may create databases.
EOF
  fi
  if ! node -e '
    const { Redis } = require("ioredis");
    const r = new Redis(process.argv[1], { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    let first; r.on("error", (e) => { first ??= e; });
    r.connect().then(() => r.ping()).then(() => { r.disconnect(); }, (e) => { console.error(String((first || e).message)); process.exit(1); });
  ' "$REDIS_URL"; then
    failed=1
    cat >&2 <<EOF

Redis does not answer at $REDIS_URL (REDIS_URL).
Start it, e.g.:
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
(or any Redis >= 7: sudo systemctl start redis-server), or point REDIS_URL at one.
EOF
  fi
  return "$failed"
}
