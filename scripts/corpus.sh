#!/usr/bin/env bash
# Deploys a real project's migration history to a fresh database twice with dbdeploy and
# reports what happened: how many migrations were found, how many each run applied (the
# second must apply 0), how long each took, and the error of a run that failed.
#
#   scripts/corpus.sh [--tool prisma|drizzle|flyway|sql] [--keep] PATH [ENGINE_URL]
#
# PATH is the migrations folder as the project ships it (a `prisma/migrations` folder, a
# drizzle folder with `meta/_journal.json`, ...). ENGINE_URL is where the fresh database goes:
# a server URL without a database (`postgres://postgres@127.0.0.1:5432`, `mysql://root@...`;
# a database `corpus_<pid>` is created and dropped) or `sqlite` (a file in a temporary
# folder). Default: from Prisma's migration_lock.toml provider, else PostgreSQL on
# 127.0.0.1. Nothing is fetched: bring the folder yourself. --keep leaves the database.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOL=prisma
KEEP=0
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --tool)
        TOOL=${2:?--tool needs a value}
        shift 2
        ;;
    --tool=*)
        TOOL=${1#--tool=}
        shift
        ;;
    --keep)
        KEEP=1
        shift
        ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        ARGS+=("$1")
        shift
        ;;
    esac
done
[ ${#ARGS[@]} -ge 1 ] && [ ${#ARGS[@]} -le 2 ] || {
    echo "usage: scripts/corpus.sh [--tool prisma|drizzle|flyway|sql] [--keep] PATH [ENGINE_URL]" >&2
    exit 2
}
SRC=$(cd "${ARGS[0]}" 2>/dev/null && pwd) || {
    echo "corpus.sh: ${ARGS[0]} is not a folder" >&2
    exit 2
}
case "$TOOL" in prisma | drizzle | flyway | sql) ;; *)
    echo "corpus.sh: unknown --tool $TOOL (prisma, drizzle, flyway or sql)" >&2
    exit 2
    ;;
esac

ENGINE_URL=${ARGS[1]:-}
if [ -z "$ENGINE_URL" ]; then
    provider=$(sed -n 's/^provider *= *"\(.*\)"/\1/p' "$SRC/migration_lock.toml" 2>/dev/null || true)
    case "$provider" in
    sqlite) ENGINE_URL=sqlite ;;
    mysql) ENGINE_URL=mysql://root@127.0.0.1:3306 ;;
    *) ENGINE_URL=postgres://postgres@127.0.0.1:5432 ;;
    esac
fi

command -v python3 >/dev/null || {
    echo "corpus.sh: python3 is required" >&2
    exit 2
}
# DBDEPLOY_BIN: a dbdeploy binary to use instead of building this checkout's release build.
if [ -n "${DBDEPLOY_BIN:-}" ]; then
    BIN=$DBDEPLOY_BIN
else
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/dbdeploy
fi

WORK=$(mktemp -d)
DB=corpus_$$
drop_db() { :; }
case "$ENGINE_URL" in
sqlite*)
    URL="sqlite://$WORK/corpus.db"
    ENGINE=sqlite
    ;;
postgres://* | postgresql://*)
    ENGINE=postgresql
    base=${ENGINE_URL%/}
    psql -X -q -d "$base/postgres" -c "CREATE DATABASE $DB" >/dev/null
    URL="$base/$DB"
    drop_db() { psql -X -q -d "$base/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
    ;;
mysql://* | mariadb://*)
    ENGINE=mysql
    base=${ENGINE_URL%/}
    hostpart=${base#*://}
    user=${hostpart%%@*}
    hostport=${hostpart#*@}
    mariadb -h "${hostport%%:*}" -P "${hostport##*:}" -u "$user" -e "CREATE DATABASE $DB"
    URL="$base/$DB"
    drop_db() { mariadb -h "${hostport%%:*}" -P "${hostport##*:}" -u "$user" -e "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
    ;;
*)
    echo "corpus.sh: ENGINE_URL must be postgres://..., mysql://... or sqlite" >&2
    exit 2
    ;;
esac
cleanup() {
    [ "$KEEP" = 1 ] || drop_db
    rm -rf "$WORK"
}
trap cleanup EXIT

ln -s "$SRC" "$WORK/migrations"
cat >"$WORK/dbdeploy.toml" <<EOF
[project]
migration_tool = "$TOOL"
migrations_dir = "migrations"

[environments.corpus]
url_env = "CORPUS_DATABASE_URL"
mode = "deploy"
EOF
export CORPUS_DATABASE_URL=$URL

found=$(case "$TOOL" in
    prisma) find -L "$SRC" -mindepth 2 -maxdepth 2 -name migration.sql | wc -l ;;
    drizzle) python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["entries"]))' "$SRC/meta/_journal.json" 2>/dev/null || echo "?" ;;
    *) find -L "$SRC" -maxdepth 1 -name '*.sql' | wc -l ;;
    esac)

echo "corpus: $SRC"
echo "tool: $TOOL; engine: $ENGINE; migrations found on disk: $found"
status=0
for run in 1 2; do
    start=$(date +%s.%N)
    set +e
    "$BIN" -C "$WORK" migrate corpus --yes --json >"$WORK/run$run.json" 2>"$WORK/run$run.err"
    code=$?
    set -e
    end=$(date +%s.%N)
    python3 - "$WORK/run$run.json" "$run" "$code" "$start" "$end" <<'EOF'
import json, sys
path, run, code, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
try:
    doc = json.load(open(path))
except Exception as e:  # a crash would leave no document: say so
    print(f"run {run}: exit {code}, no JSON document ({e})")
    sys.exit(0)
r = doc.get("result", {})
line = f"run {run}: exit {code}, {doc.get('status')}, applied {r.get('migrations_applied')}, wall {end - start:.2f} s (dbdeploy's own total {r.get('total_duration_seconds')} s)"
print(line)
if doc.get("status") != "success":
    err = doc.get("error") or {}
    print(f"  error [{err.get('code')}]: {err.get('message')}")
    if r.get("failed_migration"):
        print(f"  failed migration: {r.get('failed_migration')}; applied before it: {r.get('migrations_applied_before_failure')}")
    for hint in (doc.get("recovery") or {}).get("suggestions", [])[:3]:
        print(f"  hint: {hint}")
EOF
    if [ "$code" != 0 ]; then
        status=1
        break
    fi
    if [ "$run" = 2 ]; then
        again=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"].get("migrations_applied"))' "$WORK/run2.json")
        if [ "$again" != 0 ]; then
            echo "second run applied $again migrations, expected 0"
            status=1
        fi
    fi
done
"$BIN" -C "$WORK" status corpus --json >"$WORK/status.json" 2>/dev/null || true
python3 - "$WORK/status.json" <<'EOF'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["result"]
except Exception:
    sys.exit(0)
count = lambda v: len(v) if isinstance(v, list) else v
print("status: " + ", ".join(f"{k} {count(r.get(k))}" for k in ("applied", "pending", "failed", "modified", "missing")))
EOF
[ "$KEEP" = 1 ] && echo "kept: $URL"
exit $status
