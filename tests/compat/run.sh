#!/usr/bin/env bash
# Compatibility suite: dbdeploy against the real migration tools.
#
#   tests/compat/run.sh [--verbose] [FORMAT...]     # sqlx dbmate drizzle prisma flyway golang-migrate
#
# For each format and engine: (a) dbdeploy deploys a fixture, then the tool's status says
# everything is applied and its own migrate is a no-op; (b) the tool applies the first half,
# then dbdeploy deploys the rest without re-applying anything; (c) the tracking rows (and the
# tracking table's definition) are identical to what the tool writes itself. Flyway and
# golang-migrate cannot be installed from crates.io/npm, so they are checked against their
# documented format (see compat.py). A summary table is printed; the exit code is 1 if any
# check failed.
#
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth), MariaDB at 127.0.0.1:3306
# (root, no password), psql, mariadb and sqlite3 clients, python3, node >= 18 with npm, cargo.
# The tools are installed once into $DBDEPLOY_COMPAT_TOOLS (default ~/.cache/dbdeploy-compat);
# sqlx-cli compiles from source the first time (several minutes).
#
# Environment:
#   DBDEPLOY_COMPAT_TOOLS     where the tools are installed (reused when the versions match)
#   DBDEPLOY_COMPAT_POSTGRES  server URL without a database (default postgres://postgres@127.0.0.1:5432)
#   DBDEPLOY_COMPAT_MARIADB   server URL without a database (default mysql://root@127.0.0.1:3306)
#   DBDEPLOY_COMPAT_ENGINES   comma-separated subset of postgres,mariadb,sqlite
#   DBDEPLOY_COMPAT_KEEP=1    keep the databases for inspection
set -euo pipefail

# ------------------------------------------------------------------ pinned tool versions
SQLX_CLI_VERSION=0.9.0
DBMATE_VERSION=2.36.0
DRIZZLE_KIT_VERSION=0.31.11
DRIZZLE_ORM_VERSION=0.45.4
NODE_PG_VERSION=8.23.1
MYSQL2_VERSION=3.24.4
LIBSQL_CLIENT_VERSION=0.18.0        # drizzle's SQLite driver
PRISMA_VERSION=6.19.3               # 7.10 downloads its native schema engine for migrate
PRISMA_LIBSQL_CLIENT_VERSION=0.8.1  # what @prisma/adapter-libsql 6.19 accepts

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
TOOLS=${DBDEPLOY_COMPAT_TOOLS:-${HOME:-/root}/.cache/dbdeploy-compat}
PG=${DBDEPLOY_COMPAT_POSTGRES:-postgres://postgres@127.0.0.1:5432}
MARIADB=${DBDEPLOY_COMPAT_MARIADB:-mysql://root@127.0.0.1:3306}
ENGINES=${DBDEPLOY_COMPAT_ENGINES:-postgres,mariadb,sqlite}

log() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

if ! command -v cargo >/dev/null 2>&1 && [ -f "${HOME:-/root}/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "${HOME:-/root}/.cargo/env"
fi
for tool in python3 node npm cargo sqlite3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
case ",$ENGINES," in *,postgres,*)
    command -v psql >/dev/null 2>&1 || die "psql is required for PostgreSQL (or leave postgres out of DBDEPLOY_COMPAT_ENGINES)"
    psql -X -q -d "$PG/postgres" -c 'SELECT 1' >/dev/null 2>&1 \
        || die "PostgreSQL does not answer at ${PG%%@*}@… (set DBDEPLOY_COMPAT_POSTGRES)"
esac
case ",$ENGINES," in *,mariadb,*)
    command -v mariadb >/dev/null 2>&1 || die "the mariadb client is required for MariaDB"
    python3 - "$MARIADB" <<'EOF' || die "MariaDB does not answer (set DBDEPLOY_COMPAT_MARIADB)"
import subprocess, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
args = ["mariadb", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306), "-u", u.username or "root"]
if u.password:
    args.append("-p" + u.password)
sys.exit(subprocess.run(args + ["-e", "SELECT 1"], capture_output=True).returncode)
EOF
esac

# ------------------------------------------------------------------ install the tools
mkdir -p "$TOOLS"

# npm_project DIR PACKAGE@VERSION...: one npm project per tool, reinstalled when the pins change.
# Install scripts are skipped: the only ones that matter here would download Prisma's native
# engines, which the suite does not use.
npm_project() {
    local dir=$TOOLS/npm/$1 spec
    shift
    spec=$(printf '%s\n' "$@")
    if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$spec" ]; then
        return
    fi
    log "installing $* into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    echo '{"private": true}' >"$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --save-exact "$@" >&2)
    printf '%s' "$spec" >"$dir/.installed"
}
npm_project dbmate "dbmate@$DBMATE_VERSION"
npm_project drizzle "drizzle-kit@$DRIZZLE_KIT_VERSION" "drizzle-orm@$DRIZZLE_ORM_VERSION" \
    "pg@$NODE_PG_VERSION" "mysql2@$MYSQL2_VERSION" "@libsql/client@$LIBSQL_CLIENT_VERSION"
npm_project prisma "prisma@$PRISMA_VERSION" "@prisma/adapter-pg@$PRISMA_VERSION" \
    "@prisma/adapter-libsql@$PRISMA_VERSION" "@libsql/client@$PRISMA_LIBSQL_CLIENT_VERSION"
# With a driver adapter the Prisma CLI never loads the query engine, but it downloads one at
# start-up unless PRISMA_QUERY_ENGINE_LIBRARY names a file.
touch "$TOOLS/npm/prisma/no-query-engine.so.node"

if [ "$("$TOOLS/cargo/bin/sqlx" --version 2>/dev/null)" != "sqlx-cli $SQLX_CLI_VERSION" ]; then
    log "installing sqlx-cli $SQLX_CLI_VERSION into $TOOLS/cargo (compiles for several minutes)"
    nice cargo install sqlx-cli --version "=$SQLX_CLI_VERSION" --locked --force \
        --no-default-features --features postgres,mysql,sqlite,rustls --root "$TOOLS/cargo"
fi

# ------------------------------------------------------------------ build dbdeploy and run
log "building dbdeploy"
cargo build --quiet --bin dbdeploy
DBDEPLOY=${CARGO_TARGET_DIR:-$ROOT/target}/debug/dbdeploy

exec python3 "$ROOT/tests/compat/compat.py" \
    --tools-dir "$TOOLS" --dbdeploy "$DBDEPLOY" \
    --postgres "$PG" --mariadb "$MARIADB" --engines "$ENGINES" \
    --version "sqlx-cli=$SQLX_CLI_VERSION" --version "dbmate=$DBMATE_VERSION" \
    --version "drizzle-kit=$DRIZZLE_KIT_VERSION" --version "drizzle-orm=$DRIZZLE_ORM_VERSION" \
    --version "prisma=$PRISMA_VERSION" \
    "$@"
