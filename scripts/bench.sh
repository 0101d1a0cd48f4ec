#!/usr/bin/env bash
# Benchmarks dbdeploy against the floor (psql -1 / sqlite3) and its peers, and writes the
# report as Markdown on stdout, or to BENCHMARKS.md with --write.
#
#   scripts/bench.sh --write            # the whole report (about 30-60 minutes on 2 cores)
#   scripts/bench.sh --quick            # small sizes and 2 runs, to check the script itself
#   scripts/bench.sh --only noop,curve,commands --write
#                                       # only those parts (deploy, noop, curve, commands,
#                                       # backup); the report says which parts ran, and the command
#
# Needs: cargo, python3, psql, sqlite3, hyperfine, GNU time (/usr/bin/time) and a PostgreSQL
# server reachable as BENCH_PG_URL (a role that may CREATE DATABASE; default
# postgres://postgres@127.0.0.1:5432). Peers are optional and looked up under BENCH_TOOLS
# (default /work/tools; `scripts/bench-tools.sh` installs them there): sqlx-cli, dbmate, and the Prisma CLI with the
# driver-adapter (WebAssembly) schema engine. A peer that is not installed is reported as such.
#
# Every PostgreSQL client connects with the default URL (no sslmode: TLS wherever the server
# offers it, as users connect); the no-op and `status` runs are repeated with sslmode=require.
#
# Environment knobs: BENCH_N (300), BENCH_N_LARGE (10000), BENCH_CURVE ("20000 50000": more
# points of the no-op/status curve), BENCH_BIN (a dbdeploy binary to measure instead of building
# one), BENCH_RUNS (7), BENCH_PEER_RUNS (3),
# BENCH_MAX_LOAD (1.0: wait until the 1-minute load average is below it), BENCH_WAIT (600 s
# at most), BENCH_CORPUS (a prisma/migrations folder to run scripts/corpus.sh on; its
# report is included).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WRITE=0
QUICK=0
ONLY=deploy,noop,curve,commands,backup
COMMAND_LINE="scripts/bench.sh $*"
while [ $# -gt 0 ]; do
    arg=$1
    shift
    case "$arg" in
    --write) WRITE=1 ;;
    --quick) QUICK=1 ;;
    --only)
        ONLY=${1:?--only needs a list: deploy,noop,curve,commands,backup}
        shift
        ;;
    -h | --help)
        sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench.sh: unknown argument $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

for part in ${ONLY//,/ }; do
    case "$part" in
    deploy | noop | curve | commands | backup) ;;
    *)
        echo "bench.sh: unknown part $part in --only (deploy, noop, curve, commands, backup)" >&2
        exit 2
        ;;
    esac
done
runs_part() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac }

N=${BENCH_N:-300}
N_LARGE=${BENCH_N_LARGE:-10000}
CURVE=${BENCH_CURVE:-20000 50000}
RUNS=${BENCH_RUNS:-7}
PEER_RUNS=${BENCH_PEER_RUNS:-3}
if [ "$QUICK" = 1 ]; then
    N=${BENCH_N:-30}
    N_LARGE=${BENCH_N_LARGE:-200}
    CURVE=${BENCH_CURVE:-400}
    RUNS=2
    PEER_RUNS=1
fi
PG=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
# The default URL, as users write it: TLS wherever the server offers it (libpq's and dbdeploy's
# default sslmode=prefer). No client gets sslmode=disable; TLS_OPTS is the second variant.
PG_OPTS=${BENCH_PG_OPTS:-}
TLS_OPTS=${BENCH_TLS_OPTS:-?sslmode=require}
unset PGSSLMODE
TOOLS=${BENCH_TOOLS:-/work/tools}
MAX_LOAD=${BENCH_MAX_LOAD:-1.0}
MAX_WAIT=${BENCH_WAIT:-600}

SQLX=${BENCH_SQLX:-$TOOLS/cargo/bin/sqlx}
DBMATE=${BENCH_DBMATE:-$TOOLS/node/node_modules/.bin/dbmate}
PRISMA_HOME=${BENCH_PRISMA_HOME:-$TOOLS/prisma6}
PRISMA=$PRISMA_HOME/node_modules/.bin/prisma

for tool in cargo python3 psql sqlite3 hyperfine /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        echo "bench.sh: $tool is required (apt-get install -y hyperfine time sqlite3 postgresql-client)" >&2
        exit 2
    }
done

WORK=$(mktemp -d)
DBS=()
cleanup() {
    for db in "${DBS[@]}"; do
        psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

# A fresh PostgreSQL database; dropped at exit.
pg_fresh() {
    psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1
}
pg_track() { DBS+=("$1"); }

load1() { cut -d' ' -f1 /proc/loadavg; }
wait_for_low_load() {
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
        if [ "$waited" -ge "$MAX_WAIT" ]; then
            log "load is still $(load1) after ${MAX_WAIT}s; measuring anyway"
            return
        fi
        log "load $(load1) >= $MAX_LOAD, waiting ($waited s so far)"
        sleep 20
        waited=$((waited + 20))
    done
}

# measure KEY RUNS WARMUP PREPARE COMMAND: median seconds into $WORK/results/KEY.
mkdir -p "$WORK/results"
measure() {
    local key=$1 runs=$2 warmup=$3 prepare=$4 cmd=$5
    local args=(--runs "$runs" --warmup "$warmup" --export-json "$WORK/results/$key.json" --style none)
    [ -n "$prepare" ] && args+=(--prepare "$prepare")
    if ! hyperfine "${args[@]}" "$cmd" >"$WORK/results/$key.log" 2>&1; then
        log "$key failed: $(tail -3 "$WORK/results/$key.log" | tr '\n' ' ')"
        echo "failed" >"$WORK/results/$key.failed"
        return 0
    fi
    log "$key: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ms median" % (r["median"]*1000))' "$WORK/results/$key.json")"
}
# spec FILE KEY PREPARE COMMAND [KEY PREPARE COMMAND ...]: a bench-rounds.py spec.
spec() {
    local file=$1
    shift
    python3 -c 'import json, sys
a = sys.argv[2:]
json.dump([{"key": a[i], "prepare": a[i + 1], "command": a[i + 2]} for i in range(0, len(a), 3)], open(sys.argv[1], "w"))' "$file" "$@"
}
# peak RSS in KB of one run of COMMAND (after PREPARE), into $WORK/results/KEY.rss
rss() {
    local key=$1 prepare=$2 cmd=$3
    [ -n "$prepare" ] && sh -c "$prepare" >/dev/null 2>&1
    if /usr/bin/time -f '%M' -o "$WORK/results/$key.rss" sh -c "exec $cmd" >/dev/null 2>&1; then
        :
    else
        echo "failed" >"$WORK/results/$key.rss"
    fi
}

if [ -n "${BENCH_BIN:-}" ]; then
    # A given binary (e.g. a build of another commit, to compare): not rebuilt here.
    BIN=$BENCH_BIN
else
    log "building the release binary"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/dbdeploy
fi
GEN="python3 $ROOT/scripts/gen-migrations.py"

# ---------------------------------------------------------------- workloads
for engine in postgresql sqlite; do
    $GEN --engine "$engine" -n "$N" "$WORK/$engine"
    if runs_part noop || runs_part commands; then
        $GEN --engine "$engine" -n "$N_LARGE" "$WORK/$engine-large"
    fi
    if runs_part curve; then
        for m in $CURVE; do $GEN --engine "$engine" -n "$m" --state "$WORK/$engine-c$m"; done
    fi
done

# The Prisma CLI project around a generated folder: driver adapters and the WebAssembly schema
# engine, as the native engine cannot be downloaded here (see BENCHMARKS.md).
prisma_project() { # DIR ENGINE MIGRATIONS
    mkdir -p "$1/prisma"
    ln -sfn "$PRISMA_HOME/node_modules" "$1/node_modules"
    ln -sfn "$3" "$1/prisma/migrations"
    local adapter
    if [ "$2" = postgresql ]; then
        adapter='import { PrismaPg as Adapter } from "@prisma/adapter-pg";
// A pool keeps idle connections for 10 s by default, which keeps a command-line process alive.
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
# Prisma checks the native query engine before running anything; an empty stand-in is enough
# for `migrate deploy`, which uses the WebAssembly schema engine through the adapter.
: >"$WORK/no-query-engine.so.node"
export CHECKPOINT_DISABLE=1 PRISMA_HIDE_UPDATE_MESSAGE=1 PRISMA_QUERY_ENGINE_LIBRARY="$WORK/no-query-engine.so.node"
# The WebAssembly schema engine leaves a 10 s timer running after its work is done, which keeps
# Node.js alive; unreferencing timers of 10 s or more lets the process exit when the work ends.
cat >"$WORK/unref-timers.js" <<'EOF'
const original = global.setTimeout;
global.setTimeout = function (fn, ms, ...args) {
  const timer = original(fn, ms, ...args);
  if (ms >= 10000 && timer && timer.unref) timer.unref();
  return timer;
};
EOF

have_sqlx=0 have_dbmate=0 have_prisma=0
[ -x "$SQLX" ] && have_sqlx=1
[ -x "$DBMATE" ] && have_dbmate=1
[ -x "$PRISMA" ] && have_prisma=1

wait_for_low_load
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load at start: $LOAD_START"

# ---------------------------------------------------------------- (c) start-up
measure version 30 5 "" "$BIN --version"
rss version "" "$BIN --version"

# commands KEY_PREFIX DIR: start-up and peak RSS of the read-only commands on a database that
# is up to date with DIR (diff: no drift; exit codes 0).
COMMANDS=(status "migrate --dry-run" health diff)
commands() {
    local pre=$1 dir=$2 c key
    for c in "${COMMANDS[@]}"; do
        key=${pre}_cmd_$(echo "$c" | tr -c 'a-z\n' '_')
        measure "$key" "$RUNS" 2 "" "$BIN -C $dir ${c% *} bench${c#"${c% *}"}"
        rss "$key" "" "$BIN -C $dir ${c% *} bench${c#"${c% *}"}"
    done
}

# ---------------------------------------------------------------- PostgreSQL
W=$WORK/postgresql
for t in dbdeploy floor floor1 sqlx dbmate prisma large curve; do pg_track "bench_$t"; done
url() { echo "$PG/bench_$1$PG_OPTS"; }
tls_url() { echo "$PG/bench_$1$TLS_OPTS"; }

export BENCH_DATABASE_URL
BENCH_DATABASE_URL=$(url dbdeploy)
fresh_pg() { echo "psql -X -q -d $PG/postgres -c 'DROP DATABASE IF EXISTS bench_$1' -c 'CREATE DATABASE bench_$1'"; }
DBM_PG="$DBMATE -u $(url dbmate) -d $W/dbmate -s $WORK/dbmate-pg-schema.sql up"
SQLX_PG="$SQLX migrate run --no-dotenv --source $W/sqlx -D $(url sqlx)"
[ "$have_prisma" = 1 ] && prisma_project "$WORK/prisma-pg" postgresql "$W/prisma/migrations"
PR_PG="sh -c 'cd $WORK/prisma-pg && NODE_OPTIONS=\"--require $WORK/unref-timers.js\" DATABASE_URL=$(url prisma) $PRISMA migrate deploy'"
if runs_part deploy; then
    log "PostgreSQL, $N migrations"
    # (a): every tool once per round, from a fresh database each time. Two floors: psql -1 -f
    # (one statement per round trip, one transaction) and the whole script as one query (one
    # round trip, one implicit transaction).
    A=(pg_apply "$(fresh_pg dbdeploy)" "$BIN -C $W migrate bench --yes"
        pg_floor "$(fresh_pg floor)" "psql -X -q -1 -v ON_ERROR_STOP=1 -d $(url floor) -f $W/all.sql"
        pg_floor1 "$(fresh_pg floor1)" "sh -c 'psql -X -q -v ON_ERROR_STOP=1 -d $(url floor1) -c \"\$(cat $W/all.sql)\"'")
    [ "$have_sqlx" = 1 ] && A+=(pg_sqlx "$(fresh_pg sqlx)" "$SQLX_PG")
    [ "$have_dbmate" = 1 ] && A+=(pg_dbmate "$(fresh_pg dbmate)" "$DBM_PG")
    [ "$have_prisma" = 1 ] && A+=(pg_prisma "$(fresh_pg prisma)" "$PR_PG")
    spec "$WORK/pg-apply.json" "${A[@]}"
    python3 "$ROOT/scripts/bench-rounds.py" "$RUNS" "$WORK/results" "$WORK/pg-apply.json"
    rss pg_apply "$(fresh_pg dbdeploy)" "$BIN -C $W migrate bench --yes"
    [ "$have_sqlx" = 1 ] && rss pg_sqlx "$(fresh_pg sqlx)" "$SQLX_PG"
    [ "$have_dbmate" = 1 ] && rss pg_dbmate "$(fresh_pg dbmate)" "$DBM_PG"
    [ "$have_prisma" = 1 ] && rss pg_prisma "$(fresh_pg prisma)" "$PR_PG"
    # The peers' no-ops run on their own databases, now fully applied.
    [ "$have_sqlx" = 1 ] && measure pg_sqlx_noop "$RUNS" 1 "" "$SQLX_PG"
    [ "$have_dbmate" = 1 ] && measure pg_dbmate_noop "$RUNS" 1 "" "$DBM_PG"
    [ "$have_prisma" = 1 ] && measure pg_prisma_noop "$PEER_RUNS" 0 "" "$PR_PG"
fi
if runs_part noop; then
    log "PostgreSQL, $N migrations applied: no-op and status"
    pg_fresh bench_dbdeploy
    "$BIN" -C "$W" migrate bench --yes >/dev/null 2>&1
    measure pg_noop "$RUNS" 2 "" "$BIN -C $W migrate bench --yes"
    measure pg_status "$RUNS" 2 "" "$BIN -C $W status bench"
    measure pg_noop_req "$RUNS" 2 "" "env BENCH_DATABASE_URL=$(tls_url dbdeploy) $BIN -C $W migrate bench --yes"
    measure pg_status_req "$RUNS" 2 "" "env BENCH_DATABASE_URL=$(tls_url dbdeploy) $BIN -C $W status bench"
    rss pg_noop "" "$BIN -C $W migrate bench --yes"
    rss pg_status "" "$BIN -C $W status bench"
fi
if runs_part noop || runs_part commands; then
    log "PostgreSQL, $N_LARGE migrations (setting up)"
    pg_fresh bench_large
    BENCH_DATABASE_URL=$(url large) "$BIN" -C "$W-large" migrate bench --yes >/dev/null 2>&1
    BENCH_DATABASE_URL=$(url large)
    if runs_part noop; then
        measure pg_large_noop "$RUNS" 2 "" "$BIN -C $W-large migrate bench --yes"
        measure pg_large_status "$RUNS" 2 "" "$BIN -C $W-large status bench"
        measure pg_large_noop_req "$RUNS" 2 "" "env BENCH_DATABASE_URL=$(tls_url large) $BIN -C $W-large migrate bench --yes"
        measure pg_large_status_req "$RUNS" 2 "" "env BENCH_DATABASE_URL=$(tls_url large) $BIN -C $W-large status bench"
        measure pg_large_client "$RUNS" 2 "" "psql -X -At -d $(url large) -c 'SELECT count(*) FROM _prisma_migrations'"
        rss pg_large_noop "" "$BIN -C $W-large migrate bench --yes"
        rss pg_large_status "" "$BIN -C $W-large status bench"
    fi
    runs_part commands && commands pg "$W-large"
    psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS bench_large" >/dev/null 2>&1
fi
if runs_part curve; then
    for m in $CURVE; do
        log "PostgreSQL, $m migrations (setting up from state.sql)"
        pg_fresh bench_curve
        psql -X -q -v ON_ERROR_STOP=1 -d "$(url curve)" -f "$W-c$m/state.sql" >/dev/null 2>&1
        BENCH_DATABASE_URL=$(url curve)
        # The first run records the schema baseline (a full read), as a deploy would have.
        "$BIN" -C "$W-c$m" migrate bench --yes >/dev/null 2>&1
        measure "pg_c${m}_noop" "$RUNS" 2 "" "$BIN -C $W-c$m migrate bench --yes"
        measure "pg_c${m}_status" "$RUNS" 2 "" "$BIN -C $W-c$m status bench"
        rss "pg_c${m}_noop" "" "$BIN -C $W-c$m migrate bench --yes"
        rss "pg_c${m}_status" "" "$BIN -C $W-c$m status bench"
        psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS bench_curve" >/dev/null 2>&1
    done
fi

# ---------------------------------------------------------------- SQLite
W=$WORK/sqlite
BENCH_DATABASE_URL="sqlite://$WORK/dbdeploy.db"
SX_SL="$SQLX migrate run --no-dotenv --source $W/sqlx -D sqlite://$WORK/sqlx.db?mode=rwc"
DBM_SL="$DBMATE -u sqlite:$WORK/dbmate.db -d $W/dbmate -s $WORK/dbmate-sl-schema.sql up"
[ "$have_prisma" = 1 ] && prisma_project "$WORK/prisma-sl" sqlite "$W/prisma/migrations"
PR_SL="sh -c 'cd $WORK/prisma-sl && NODE_OPTIONS=\"--require $WORK/unref-timers.js\" DATABASE_URL=file:$WORK/prisma.db $PRISMA migrate deploy'"
if runs_part deploy; then
    log "SQLite, $N migrations"
    A=(sl_apply "rm -f $WORK/dbdeploy.db" "$BIN -C $W migrate bench --yes"
        sl_floor "rm -f $WORK/floor.db" "sqlite3 $WORK/floor.db < $W/all.sql")
    [ "$have_sqlx" = 1 ] && A+=(sl_sqlx "rm -f $WORK/sqlx.db" "$SX_SL")
    [ "$have_dbmate" = 1 ] && A+=(sl_dbmate "rm -f $WORK/dbmate.db" "$DBM_SL")
    [ "$have_prisma" = 1 ] && A+=(sl_prisma "rm -f $WORK/prisma.db" "$PR_SL")
    spec "$WORK/sl-apply.json" "${A[@]}"
    python3 "$ROOT/scripts/bench-rounds.py" "$RUNS" "$WORK/results" "$WORK/sl-apply.json"
    [ "$have_sqlx" = 1 ] && measure sl_sqlx_noop "$RUNS" 1 "" "$SX_SL"
    [ "$have_dbmate" = 1 ] && measure sl_dbmate_noop "$RUNS" 1 "" "$DBM_SL"
    [ "$have_prisma" = 1 ] && measure sl_prisma_noop "$PEER_RUNS" 0 "" "$PR_SL"
    rss sl_apply "rm -f $WORK/dbdeploy.db" "$BIN -C $W migrate bench --yes"
    [ "$have_sqlx" = 1 ] && rss sl_sqlx "rm -f $WORK/sqlx.db" "$SX_SL"
    [ "$have_dbmate" = 1 ] && rss sl_dbmate "rm -f $WORK/dbmate.db" "$DBM_SL"
    [ "$have_prisma" = 1 ] && rss sl_prisma "rm -f $WORK/prisma.db" "$PR_SL"
fi
if runs_part noop; then
    log "SQLite, $N migrations applied: no-op and status"
    rm -f "$WORK/dbdeploy.db"
    "$BIN" -C "$W" migrate bench --yes >/dev/null 2>&1
    measure sl_noop "$RUNS" 2 "" "$BIN -C $W migrate bench --yes"
    measure sl_status "$RUNS" 2 "" "$BIN -C $W status bench"
    rss sl_noop "" "$BIN -C $W migrate bench --yes"
    rss sl_status "" "$BIN -C $W status bench"
fi
if runs_part noop || runs_part commands; then
    log "SQLite, $N_LARGE migrations (setting up)"
    BENCH_DATABASE_URL="sqlite://$WORK/large.db"
    "$BIN" -C "$W-large" migrate bench --yes >/dev/null 2>&1
    if runs_part noop; then
        measure sl_large_noop "$RUNS" 2 "" "$BIN -C $W-large migrate bench --yes"
        measure sl_large_status "$RUNS" 2 "" "$BIN -C $W-large status bench"
        measure sl_large_client "$RUNS" 2 "" "sqlite3 $WORK/large.db 'SELECT count(*) FROM _prisma_migrations'"
        rss sl_large_noop "" "$BIN -C $W-large migrate bench --yes"
        rss sl_large_status "" "$BIN -C $W-large status bench"
    fi
    runs_part commands && commands sl "$W-large"
fi
if runs_part curve; then
    # The system shell needs O(n^2) to create n tables (scripts/sqlite-load.c says why): the
    # states are loaded with dbdeploy's own SQLite.
    AMALGAMATION=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libsqlite3-sys-*/sqlite3 2>/dev/null | tail -1)
    LOAD_SQLITE=(sqlite3)
    if [ -n "$AMALGAMATION" ] && gcc -O1 -DSQLITE_MALLOC_SOFT_LIMIT=0 -DSQLITE_THREADSAFE=0 \
        -I"$AMALGAMATION" "$ROOT/scripts/sqlite-load.c" "$AMALGAMATION/sqlite3.c" \
        -o "$WORK/sqlite-load" -lm 2>"$WORK/sqlite-load.log"; then
        LOAD_SQLITE=("$WORK/sqlite-load")
    else
        log "could not build scripts/sqlite-load.c ($WORK/sqlite-load.log); loading with the sqlite3 shell (slow)"
    fi
    for m in $CURVE; do
        log "SQLite, $m migrations (setting up from state.sql)"
        rm -f "$WORK/curve.db"
        "${LOAD_SQLITE[@]}" "$WORK/curve.db" <"$W-c$m/state.sql"
        BENCH_DATABASE_URL="sqlite://$WORK/curve.db"
        "$BIN" -C "$W-c$m" migrate bench --yes >/dev/null 2>&1
        measure "sl_c${m}_noop" "$RUNS" 2 "" "$BIN -C $W-c$m migrate bench --yes"
        measure "sl_c${m}_status" "$RUNS" 2 "" "$BIN -C $W-c$m status bench"
        rss "sl_c${m}_noop" "" "$BIN -C $W-c$m migrate bench --yes"
        rss "sl_c${m}_status" "" "$BIN -C $W-c$m status bench"
        rm -f "$WORK/curve.db"
    done
fi

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "load at end: $LOAD_END"

# ---------------------------------------------------------------- backups (scripts/bench-backup.sh)
# Its section goes to scripts/bench-notes.md, which the report includes. The part `backup` (or
# BENCH_BACKUP=0, as before) decides whether it runs; it measures the same binary.
if runs_part backup && [ "${BENCH_BACKUP:-1}" = 1 ]; then
    log "backup and restore (scripts/bench-backup.sh)"
    BACKUP_ARGS=()
    [ "$QUICK" = 1 ] && BACKUP_ARGS+=(--quick)
    [ "$WRITE" = 1 ] && BACKUP_ARGS+=(--notes)
    BENCH_BIN=$BIN "$ROOT/scripts/bench-backup.sh" "${BACKUP_ARGS[@]}" >/dev/null || log "bench-backup.sh failed"
fi

# ---------------------------------------------------------------- corpus (optional)
CORPUS_REPORT=""
if [ -n "${BENCH_CORPUS:-}" ]; then
    log "corpus: $BENCH_CORPUS"
    CORPUS_REPORT=$("$ROOT/scripts/corpus.sh" "$BENCH_CORPUS" 2>&1 || true)
fi

# ---------------------------------------------------------------- report
versions() {
    echo "- dbdeploy: $("$BIN" --version) (release build, commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo "- PostgreSQL server: $(psql -X -At -d "$PG/postgres" -c 'SHOW server_version' 2>/dev/null); psql: $(psql --version | awk '{print $3}')"
    echo "- sqlite3 CLI: $(sqlite3 --version | awk '{print $1}')"
    if [ "$have_sqlx" = 1 ]; then echo "- sqlx-cli: $("$SQLX" --version | awk '{print $2}')"; else echo "- sqlx-cli: not installed"; fi
    if [ "$have_dbmate" = 1 ]; then echo "- dbmate: $("$DBMATE" --version | awk '{print $3}')"; else echo "- dbmate: not installed"; fi
    if [ "$have_prisma" = 1 ]; then
        echo "- Prisma CLI: $(node -p "require('$PRISMA_HOME/node_modules/prisma/package.json').version") with @prisma/adapter-pg and @prisma/adapter-better-sqlite3 $(node -p "require('$PRISMA_HOME/node_modules/@prisma/adapter-pg/package.json').version") (WebAssembly schema engine), Node.js $(node --version)"
    else
        echo "- Prisma CLI: not installed"
    fi
    echo "- hyperfine $(hyperfine --version | awk '{print $2}')"
}

export WORK N N_LARGE CURVE RUNS PEER_RUNS LOAD_START LOAD_END CORPUS_REPORT ONLY COMMAND_LINE PG_OPTS TLS_OPTS
VERSIONS=$(versions)
export VERSIONS
MACHINE="- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores
- memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r)
- load average (1, 5, 15 min) at start: $LOAD_START; at end: $LOAD_END (the machine is shared with other builds)
- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
export MACHINE

OUT=/dev/stdout
[ "$WRITE" = 1 ] && OUT=$ROOT/BENCHMARKS.md
python3 "$ROOT/scripts/bench-report.py" >"$OUT"
[ "$WRITE" = 1 ] && log "wrote $OUT"
exit 0
