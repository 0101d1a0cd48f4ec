#!/usr/bin/env bash
# Fleet benchmark (issue 15): one `dbdeploy migrate FLEET` over many databases against a shell
# loop of `dbdeploy migrate` per target (and of `prisma migrate deploy` per target when the
# Prisma CLI of scripts/bench-tools.sh is there), from empty databases and as a no-op.
#
#   scripts/bench-fleet.sh [BIN]        BIN: default target/release/dbdeploy
#
# Environment: FLEET_SQLITE (500 SQLite tenants), FLEET_PG (100 PostgreSQL databases),
# FLEET_N (20 migrations each, Prisma format, scripts/gen-migrations.py), FLEET_PARALLEL
# (max_parallel, 8), FLEET_PEER_SAMPLE (Prisma runs on this many targets and the loop time is
# scaled to the fleet, 25; the CLI takes about a second per run), BENCH_POSTGRES_URL (an admin
# URL, default postgres://postgres@127.0.0.1:5432/postgres), BENCH_TOOLS (/work/tools).
#
# Wall time is measured around each whole command (or loop); peak RSS is /usr/bin/time -v's
# "Maximum resident set size" of the fleet process, and of the largest single run of a loop;
# peak connections are sampled from pg_stat_activity every 20 ms while the command runs
# (the sampler's own session is on another database and not counted).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/target/release/dbdeploy}")
SL=${FLEET_SQLITE:-500}
PG=${FLEET_PG:-100}
N=${FLEET_N:-20}
PAR=${FLEET_PARALLEL:-8}
SAMPLE=${FLEET_PEER_SAMPLE:-25}
ADMIN=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
TOOLS=${BENCH_TOOLS:-/work/tools}
PRISMA_HOME=$TOOLS/prisma6
PRISMA=$PRISMA_HOME/node_modules/.bin/prisma
PREFIX=bench_fleet_$$
WORK=$(mktemp -d)
SAMPLER=
log() { echo "bench-fleet: $*" >&2; }
cleanup() {
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
    for i in $(seq 0 $((PG - 1))); do
        psql -X -q "$ADMIN" -c "DROP DATABASE IF EXISTS ${PREFIX}_$i WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
[ -x "$BIN" ] || { log "no binary at $BIN (cargo build --release)"; exit 1; }
pg_url() { local u=${ADMIN%/*}; echo "$u/${PREFIX}_$1"; }

# ---------------------------------------------------------------- measuring
now() { date +%s.%N; }
# RESULT NAME WALL RSS_KB CONNS
declare -a ROWS=()
row() { ROWS+=("$1|$2|$3|$4|$5"); }
# Runs "$@" under /usr/bin/time -v; writes "wall rss_kb" to $WORK/res, the exit code to $RC.
timed() {
    local t0 t1 out
    out=$WORK/time.txt
    t0=$(now)
    set +e
    /usr/bin/time -v -o "$out" "$@" >"$WORK/last.out" 2>"$WORK/last.err"
    RC=$?
    set -e
    t1=$(now)
    echo "$(echo "$t1 - $t0" | bc) $(awk -F': ' '/Maximum resident/ {print $2}' "$out")" >"$WORK/res"
}
# Samples the peak number of sessions on the fleet's databases until stopped.
start_sampler() {
    : >"$WORK/peak"
    (
        peak=0
        while :; do
            n=$(psql -X -At "$ADMIN" -c "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE '${PREFIX}\_%'" 2>/dev/null || echo 0)
            [ "$n" -gt "$peak" ] && peak=$n && echo "$peak" >"$WORK/peak"
            sleep 0.02
        done
    ) &
    SAMPLER=$!
}
stop_sampler() {
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=
    cat "$WORK/peak" 2>/dev/null | tail -1 | grep . || echo 0
}
check() { # what
    if [ "$RC" -ne 0 ]; then
        log "$1 failed (exit $RC):"
        tail -20 "$WORK/last.err" >&2
        tail -5 "$WORK/last.out" >&2
        exit 1
    fi
}
# A loop of one command per target: "$1" is a function TARGET_INDEX; wall time of the whole
# loop and the largest RSS of one run.
loop() { # COUNT FUNCTION
    local t0 t1 max=0 i r
    t0=$(now)
    for i in $(seq 0 $(($1 - 1))); do
        set +e
        /usr/bin/time -f %M -o "$WORK/rss" bash -c "$2 $i" >"$WORK/last.out" 2>"$WORK/last.err"
        RC=$?
        set -e
        check "$2 $i"
        r=$(tail -1 "$WORK/rss")
        [ "$r" -gt "$max" ] && max=$r
    done
    t1=$(now)
    echo "$(echo "$t1 - $t0" | bc) $max" >"$WORK/res"
}

# ---------------------------------------------------------------- projects
project() { # DIR ENGINE
    python3 "$ROOT/scripts/gen-migrations.py" --engine "$2" -n "$N" "$1" >/dev/null
    cat >"$1/dbdeploy.toml" <<EOF
[project]
migration_tool = "prisma"
migrations_dir = "prisma/migrations"

[environments.one]
url_env = "TARGET_URL"

[environments.fleet.fleet]
targets_command = "cat targets.jsonl"
max_parallel = $PAR
EOF
}
have_prisma=0
[ -x "$PRISMA" ] && have_prisma=1
prisma_project() { # DIR ENGINE MIGRATIONS (as scripts/bench.sh writes it)
    mkdir -p "$1/prisma"
    ln -sfn "$PRISMA_HOME/node_modules" "$1/node_modules"
    ln -sfn "$3" "$1/prisma/migrations"
    local adapter
    if [ "$2" = postgresql ]; then
        adapter='import { PrismaPg as Adapter } from "@prisma/adapter-pg";
const make = () => new Adapter({ connectionString: process.env.DATABASE_URL!, idleTimeoutMillis: 1 });'
    else
        adapter='import { PrismaBetterSQLite3 as Adapter } from "@prisma/adapter-better-sqlite3";
const make = () => new Adapter({ url: process.env.DATABASE_URL! });'
    fi
    cat >"$1/prisma.config.ts" <<EOF
import { defineConfig } from "prisma/config";
$adapter
export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  async adapter() { return make(); },
});
EOF
    printf 'datasource db {\n  provider = "%s"\n  url      = env("DATABASE_URL")\n}\n' "$2" >"$1/prisma/schema.prisma"
}
: >"$WORK/no-query-engine.so.node"
export CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1 PRISMA_QUERY_ENGINE_LIBRARY="$WORK/no-query-engine.so.node"
cat >"$WORK/unref-timers.js" <<'EOF'
const original = global.setTimeout;
global.setTimeout = function (fn, ms, ...args) {
  const timer = original(fn, ms, ...args);
  if (ms >= 10000 && timer && timer.unref) timer.unref();
  return timer;
};
EOF

# ---------------------------------------------------------------- SQLite
S=$WORK/sqlite
project "$S" sqlite
mkdir -p "$S/tenants"
for i in $(seq 0 $((SL - 1))); do
    echo "{\"id\": \"t$i\", \"url\": \"sqlite://tenants/t$i.db\"}"
done >"$S/targets.jsonl"
sl_one() { TARGET_URL="sqlite://$S/tenants/t$1.db" exec "$BIN" -C "$S" migrate one --yes; }
sl_prisma() { cd "$S/prisma-cli" && NODE_OPTIONS="--require $WORK/unref-timers.js" DATABASE_URL="file:$S/prisma/p$1.db" exec "$PRISMA" migrate deploy; }
# The loops run each target in a fresh `bash -c` under /usr/bin/time.
export -f sl_one sl_prisma
export S BIN WORK PRISMA
log "SQLite: $SL tenants, $N migrations each"
rm -f "$S"/tenants/*.db
timed "$BIN" -C "$S" migrate fleet --yes --json; read -r w m <"$WORK/res"; check "fleet (SQLite)"
python3 -c "import json,sys; d=json.load(open('$WORK/last.out')); c=d['result']['counts']; assert c['success']==$SL, c; assert sum(t['migrations_applied'] for t in d['result']['targets'])==$SL*$N" 
row "SQLite, $SL tenants" "dbdeploy fleet (max_parallel $PAR), from empty" "$w" "$m" "-"
timed "$BIN" -C "$S" migrate fleet --yes --json; read -r w m <"$WORK/res"; check "fleet no-op (SQLite)"
row "SQLite, $SL tenants" "dbdeploy fleet, no-op" "$w" "$m" "-"
rm -f "$S"/tenants/*.db
loop "$SL" sl_one; read -r w m <"$WORK/res"
row "SQLite, $SL tenants" "shell loop of dbdeploy migrate, from empty" "$w" "$m" "-"
loop "$SL" sl_one; read -r w m <"$WORK/res"
row "SQLite, $SL tenants" "shell loop of dbdeploy migrate, no-op" "$w" "$m" "-"
if [ "$have_prisma" = 1 ]; then
    prisma_project "$S/prisma-cli" sqlite "$S/prisma/migrations"
    loop "$SAMPLE" sl_prisma; read -r w m <"$WORK/res"
    row "SQLite, $SL tenants" "shell loop of prisma migrate deploy, from empty ($SAMPLE runs, scaled x$(echo "scale=1; $SL / $SAMPLE" | bc))" "$(echo "scale=2; $w * $SL / $SAMPLE" | bc)" "$m" "-"
    loop "$SAMPLE" sl_prisma; read -r w m <"$WORK/res"
    row "SQLite, $SL tenants" "shell loop of prisma migrate deploy, no-op ($SAMPLE runs, scaled)" "$(echo "scale=2; $w * $SL / $SAMPLE" | bc)" "$m" "-"
fi

# ---------------------------------------------------------------- PostgreSQL
P=$WORK/postgresql
project "$P" postgresql
log "PostgreSQL: creating $PG databases"
for i in $(seq 0 $((PG - 1))); do
    psql -X -q -v ON_ERROR_STOP=1 "$ADMIN" -c "CREATE DATABASE ${PREFIX}_$i" >/dev/null
    echo "{\"id\": \"d$i\", \"url\": \"$(pg_url "$i")\"}"
done >"$P/targets.jsonl"
reset_pg() {
    for i in $(seq 0 $((PG - 1))); do
        psql -X -q "$(pg_url "$i")" -c "DROP SCHEMA public CASCADE; CREATE SCHEMA public" >/dev/null 2>&1
    done
}
pg_one() { TARGET_URL="$(pg_url "$1")" exec "$BIN" -C "$P" migrate one --yes; }
pg_prisma() { cd "$P/prisma-cli" && NODE_OPTIONS="--require $WORK/unref-timers.js" DATABASE_URL="$(pg_url "$1")" exec "$PRISMA" migrate deploy; }
export -f pg_one pg_prisma pg_url
export P ADMIN PREFIX
log "PostgreSQL: $PG databases, $N migrations each"
start_sampler
timed "$BIN" -C "$P" migrate fleet --yes --json; read -r w m <"$WORK/res"; check "fleet (PostgreSQL)"
c=$(stop_sampler)
python3 -c "import json,sys; d=json.load(open('$WORK/last.out')); c=d['result']['counts']; assert c['success']==$PG, c"
row "PostgreSQL, $PG databases" "dbdeploy fleet (max_parallel $PAR), from empty" "$w" "$m" "$c"
start_sampler
timed "$BIN" -C "$P" migrate fleet --yes --json; read -r w m <"$WORK/res"; check "fleet no-op (PostgreSQL)"
c=$(stop_sampler)
row "PostgreSQL, $PG databases" "dbdeploy fleet, no-op" "$w" "$m" "$c"
reset_pg
start_sampler
loop "$PG" pg_one; read -r w m <"$WORK/res"
c=$(stop_sampler)
row "PostgreSQL, $PG databases" "shell loop of dbdeploy migrate, from empty" "$w" "$m" "$c"
start_sampler
loop "$PG" pg_one; read -r w m <"$WORK/res"
c=$(stop_sampler)
row "PostgreSQL, $PG databases" "shell loop of dbdeploy migrate, no-op" "$w" "$m" "$c"
if [ "$have_prisma" = 1 ]; then
    prisma_project "$P/prisma-cli" postgresql "$P/prisma/migrations"
    reset_pg
    start_sampler
    loop "$SAMPLE" pg_prisma; read -r w m <"$WORK/res"
    c=$(stop_sampler)
    row "PostgreSQL, $PG databases" "shell loop of prisma migrate deploy, from empty ($SAMPLE runs, scaled x$(echo "scale=1; $PG / $SAMPLE" | bc))" "$(echo "scale=2; $w * $PG / $SAMPLE" | bc)" "$m" "$c"
    start_sampler
    loop "$SAMPLE" pg_prisma; read -r w m <"$WORK/res"
    c=$(stop_sampler)
    row "PostgreSQL, $PG databases" "shell loop of prisma migrate deploy, no-op ($SAMPLE runs, scaled)" "$(echo "scale=2; $w * $PG / $SAMPLE" | bc)" "$m" "$c"
fi

# ---------------------------------------------------------------- report
echo "| fleet | command | wall (s) | peak RSS (MiB) | peak PostgreSQL sessions |"
echo "|---|---|---:|---:|---:|"
for r in "${ROWS[@]}"; do
    IFS='|' read -r fleet what wall rss conns <<<"$r"
    printf '| %s | %s | %.2f | %.1f | %s |\n' "$fleet" "$what" "$wall" "$(echo "scale=1; $rss / 1024" | bc)" "$conns"
done
echo
echo "dbdeploy $("$BIN" --version | awk '{print $2}') ($BIN), $N migrations per target, $(nproc) cores, PostgreSQL $(psql -X -At "$ADMIN" -c 'SHOW server_version'), SQLite $(sqlite3 --version | awk '{print $1}')"
[ "$have_prisma" = 1 ] && echo "Prisma CLI $(node -p "require('$PRISMA_HOME/node_modules/prisma/package.json').version") with driver adapters (WebAssembly schema engine), Node.js $(node --version)"
exit 0
