#!/usr/bin/env bash
# Backup and restore benchmark (issue 12): dbdeploy's PostgreSQL backup and restore against the
# plain tools, side by side, on the default URL (no sslmode: TLS where the server offers it).
#
#   scripts/bench-backup.sh             # print the report section (markdown) to stdout
#   scripts/bench-backup.sh --write     # ... and put it in BENCHMARKS.md and scripts/bench-notes.md
#   scripts/bench-backup.sh --notes     # ... and put it in scripts/bench-notes.md only (bench.sh --write)
#   scripts/bench-backup.sh --quick     # a ~25 MB database, 1 round, no 1 GB run: checks the script
#
# (1) A ~250 MB database in four tables (bench_bk_src) is backed up by `dbdeploy backup` and by
#     `pg_dump -Fc`, and restored by `dbdeploy rollback --from-other-database` and by
#     `pg_restore` into a fresh empty database each time (plus `pg_restore -j N` of dbdeploy's
#     directory dump, for reference: the parallel restore dbdeploy does not do). Interleaved
#     rounds (scripts/bench-rounds.py), median of BENCH_BACKUP_RUNS (3) after a warm-up round.
# (2) The 1 GB database of issue 3 (1,100,000 rows × 960 random hex chars): one
#     `dbdeploy backup` and one `dbdeploy rollback`, with wall time and peak RSS (skip with
#     BENCH_BACKUP_1GB=0; it takes several minutes to build).
#
# BENCH_BIN measures a given dbdeploy binary instead of building one.
# Needs: cargo, python3, psql, pg_dump, pg_restore, GNU time, a PostgreSQL server at BENCH_PG_URL
# (default postgres://postgres@127.0.0.1:5432) as a role that may CREATE DATABASE.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WRITE="" QUICK=0
for arg in "$@"; do
    case "$arg" in
    --write) WRITE=all ;;
    --notes) WRITE=notes ;;
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench-backup.sh: unknown argument $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

PG=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
# The default URL: every client negotiates TLS as a user's would.
unset PGSSLMODE
RUNS=${BENCH_BACKUP_RUNS:-3}
SCALE=${BENCH_BACKUP_SCALE:-100}
BIG=${BENCH_BACKUP_1GB:-1}
if [ "$QUICK" = 1 ]; then
    RUNS=1 SCALE=10 BIG=0
fi
JOBS=$(python3 -c 'import os; print(max(1, min(os.cpu_count() or 1, 4)))')

WORK=$(mktemp -d)
DBS=(bench_bk_src bench_bk_dbd bench_bk_pr bench_bk_prj bench_bk_big)
cleanup() {
    for db in "${DBS[@]}"; do
        psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "bench-backup: $*" >&2; }
fresh() { echo "psql -X -q -d $PG/postgres -c 'DROP DATABASE IF EXISTS $1' -c 'CREATE DATABASE $1'"; }
median() { python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
spread() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f … %.2f s" % (r["min"], r["max"]))' "$1"; }

log "building the release binary"
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/dbdeploy
fi

# A dbdeploy project whose one migration creates the four tables.
project() { # DIR DB
    mkdir -p "$1/prisma/migrations/20260101000000_tables"
    cat >"$1/prisma/migrations/20260101000000_tables/migration.sql" <<'EOF'
CREATE TABLE customers (id bigint PRIMARY KEY, region int NOT NULL, name text NOT NULL, profile text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, customer bigint NOT NULL, status text NOT NULL, note text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE items (id bigint PRIMARY KEY, order_id bigint NOT NULL, sku text NOT NULL, detail text NOT NULL, qty int NOT NULL);
CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL, payload text NOT NULL, at timestamptz NOT NULL);
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX items_order ON items (order_id);
CREATE INDEX events_kind ON events (kind);
EOF
    cat >"$1/dbdeploy.toml" <<EOF
[project]
migration_tool = "prisma"
migrations_dir = "prisma/migrations"

[environments.bench]
url = "$PG/$2"
mode = "deploy"

[backup]
dir = "backups"
keep = 2
EOF
}

# ---------------------------------------------------------------- (1) ~250 MB, four tables
psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS bench_bk_src" -c "CREATE DATABASE bench_bk_src"
project "$WORK/src" bench_bk_src
"$BIN" -C "$WORK/src" migrate bench --yes >/dev/null
log "filling bench_bk_src (scale $SCALE)"
psql -X -q -v ON_ERROR_STOP=1 -d "$PG/bench_bk_src" <<EOF
INSERT INTO customers SELECT g, g % 97, 'customer ' || g, md5(g::text) || md5((g * 3)::text) || repeat(' plan=basic', 3), now() - g * interval '1 minute' FROM generate_series(1, 2000 * $SCALE) g;
INSERT INTO orders SELECT g, 1 + g % (2000 * $SCALE), (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4], md5(random()::text) || md5(g::text) || md5(random()::text), now() - g * interval '1 second' FROM generate_series(1, 4500 * $SCALE) g;
INSERT INTO items SELECT g, 1 + g % (4500 * $SCALE), 'SKU-' || (g % 5000), md5(random()::text) || ' ' || md5(random()::text), 1 + g % 9 FROM generate_series(1, 4500 * $SCALE) g;
INSERT INTO events SELECT g, g % 20, md5(random()::text) || md5(random()::text) || md5(g::text), now() - g * interval '1 second' FROM generate_series(1, 3000 * $SCALE) g;
VACUUM ANALYZE;
EOF
SIZE=$(psql -X -At -d "$PG/bench_bk_src" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
ROWS=$(psql -X -At -d "$PG/bench_bk_src" -c "SELECT string_agg(relname || ' ' || n_live_tup, ', ' ORDER BY relname) FROM pg_stat_user_tables WHERE relname <> '_prisma_migrations'")
log "bench_bk_src: $SIZE ($ROWS)"

# The reference backups that the restores read: dbdeploy's (directory) and pg_dump -Fc's.
"$BIN" -C "$WORK/src" backup bench >/dev/null
REF_ID=$(ls "$WORK/src/backups/bench" | sed -n 's/\.json$//p' | sort | tail -1)
REF_DIR=$WORK/src/backups/bench/$REF_ID.pgdir
DBD_SIZE=$(du -sb "$REF_DIR" | cut -f1)
pg_dump -Fc -d "$PG/bench_bk_src" -f "$WORK/ref.dump"
FC_SIZE=$(stat -c %s "$WORK/ref.dump")
# The restore project: environment `bench` on an empty database, holding the reference backup.
project "$WORK/dst" bench_bk_dbd
mkdir -p "$WORK/dst/backups"
cp -a "$WORK/src/backups/bench" "$WORK/dst/backups/bench"

BK_DBD="$BIN -C $WORK/src backup bench"
BK_FC="pg_dump -Fc -d $PG/bench_bk_src -f $WORK/plain.dump"
RS_DBD="$BIN -C $WORK/dst rollback bench --yes --to $REF_ID --from-other-database"
RS_PR="pg_restore -d $PG/bench_bk_pr $WORK/ref.dump"
RS_PRJ="pg_restore -j $JOBS -d $PG/bench_bk_prj $WORK/dst/backups/bench/$REF_ID.pgdir"
python3 -c 'import json, sys; a = sys.argv[2:]; json.dump([{"key": a[i], "prepare": a[i + 1], "command": a[i + 2]} for i in range(0, len(a), 3)], open(sys.argv[1], "w"))' "$WORK/spec.json" \
    bk_dbdeploy "rm -rf $WORK/src/backups/bench/*" "$BK_DBD" \
    bk_pgdump "rm -f $WORK/plain.dump" "$BK_FC" \
    rs_dbdeploy "$(fresh bench_bk_dbd)" "$RS_DBD" \
    rs_pgrestore "$(fresh bench_bk_pr)" "$RS_PR" \
    rs_pgrestore_j "$(fresh bench_bk_prj)" "$RS_PRJ"
mkdir -p "$WORK/results"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "timing $RUNS round(s) after a warm-up round (load $LOAD_START)"
python3 "$ROOT/scripts/bench-rounds.py" "$RUNS" "$WORK/results" "$WORK/spec.json"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for k in bk_dbdeploy bk_pgdump rs_dbdeploy rs_pgrestore rs_pgrestore_j; do
    if [ -f "$WORK/results/$k.failed" ]; then
        log "$k failed: $(tail -3 "$WORK/results/$k.failed")"
        exit 1
    fi
done
ratio() { python3 -c 'import sys; print("%.2f×" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
B1=$(median "$WORK/results/bk_dbdeploy.json") B0=$(median "$WORK/results/bk_pgdump.json")
R1=$(median "$WORK/results/rs_dbdeploy.json") R0=$(median "$WORK/results/rs_pgrestore.json")
RJ=$(median "$WORK/results/rs_pgrestore_j.json")
RB=$(ratio "$B1" "$B0") RR=$(ratio "$R1" "$R0")
log "backup: dbdeploy $B1 s, pg_dump -Fc $B0 s ($RB); restore: dbdeploy $R1 s, pg_restore $R0 s ($RR), pg_restore -j $JOBS $RJ s"
PROVIDER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["provider"])' "$WORK/dst/backups/bench/$REF_ID.json")

# ---------------------------------------------------------------- (2) 1 GB
BIG_ROWS=""
if [ "$BIG" = 1 ]; then
    log "building the 1 GB database (several minutes)"
    psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS bench_bk_big" -c "CREATE DATABASE bench_bk_big"
    project "$WORK/big" bench_bk_big
    psql -X -q -v ON_ERROR_STOP=1 -d "$PG/bench_bk_big" -c "CREATE TABLE big (id int PRIMARY KEY, payload text)" \
        -c "INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text||g||i),'') FROM generate_series(1,30) i) FROM generate_series(1,1100000) g" \
        -c "VACUUM ANALYZE big"
    BIG_SIZE=$(psql -X -At -d "$PG/bench_bk_big" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
    timed() { # LABEL COMMAND...: "LABEL<tab>SECONDS KB", or "LABEL<tab>failed" (the error is logged)
        if /usr/bin/time -f '%e %M' -o "$WORK/timed.txt" "${@:2}" >/dev/null 2>"$WORK/timed.err"; then
            printf '%s\t%s\n' "$1" "$(tail -1 "$WORK/timed.txt")"
        else
            log "$1 failed: $(tail -3 "$WORK/timed.err" | tr '\n' ' ')"
            printf '%s\tfailed\n' "$1"
        fi
    }
    BIG_ROWS=$(
        timed "\`dbdeploy backup bench\`" "$BIN" -C "$WORK/big" backup bench
        BIG_ID=$(ls "$WORK/big/backups/bench" | sed -n 's/\.json$//p' | sort | tail -1)
        timed "\`dbdeploy rollback bench --yes\` (sha256 check, restore in one transaction, verification)" "$BIN" -C "$WORK/big" rollback bench --yes --to "$BIG_ID"
        timed "\`pg_dump -Fc\`" pg_dump -Fc -d "$PG/bench_bk_big" -f "$WORK/big.dump"
        psql -X -q -d "$PG/postgres" -c "DROP DATABASE IF EXISTS bench_bk_pr" -c "CREATE DATABASE bench_bk_pr" >/dev/null
        timed "\`pg_restore\` into an empty database" pg_restore -d "$PG/bench_bk_pr" "$WORK/big.dump"
    )
    BIG_DIR_SIZE=$(du -sb "$WORK/big/backups/bench"/*.pgdir | cut -f1)
    BIG_FC_SIZE=$(stat -c %s "$WORK/big.dump")
fi

# ---------------------------------------------------------------- report
human() { python3 -c 'import sys; n=float(sys.argv[1]); print("%.1f MB" % (n / 1e6))' "$1"; }
report() {
    cat <<EOF
## Backup and restore (issue 12)

Generated by \`scripts/bench-backup.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown), load average at start $LOAD_START, at end $LOAD_END; $(nproc) cores shared with other builds). Every client on the default URL (\`$PG/DB\`, no \`sslmode\`: TLS, the server has \`ssl = on\`); pg_dump/pg_restore $(pg_dump --version | awk '{print $3}'), server $(psql -X -At -d "$PG/postgres" -c 'SHOW server_version' | awk '{print $1}').

**Data:** four tables (customers, orders, items, events; $ROWS rows) with primary keys and three secondary indexes, $SIZE (\`pg_database_size\`). dbdeploy's backup: $PROVIDER, $(human "$DBD_SIZE"); \`pg_dump -Fc\`: $(human "$FC_SIZE").

**Method:** interleaved rounds (\`scripts/bench-rounds.py\`): a warm-up round, then $RUNS, each running every command once; medians, min … max. Each restore goes into a fresh empty database (created before the run, not timed). dbdeploy's restore is \`rollback\` with \`--from-other-database\` into an empty database: it checks the sha256 of every file of the backup, takes the deploy lock, records the restore as unfinished, restores in one transaction and verifies the schema fingerprint and the tracking table afterwards.

| what | command | median | min … max | ÷ plain tool |
|---|---|---|---|---|
| backup, dbdeploy | \`dbdeploy -C P backup bench\` | **$B1 s** | $(spread "$WORK/results/bk_dbdeploy.json") | **$RB** |
| backup, plain | \`pg_dump -Fc -d URL -f plain.dump\` | $B0 s | $(spread "$WORK/results/bk_pgdump.json") | |
| restore, dbdeploy | \`dbdeploy -C P rollback bench --yes --to ID --from-other-database\` | **$R1 s** | $(spread "$WORK/results/rs_dbdeploy.json") | **$RR** |
| restore, plain | \`pg_restore -d URL plain.dump\` (into an empty database) | $R0 s | $(spread "$WORK/results/rs_pgrestore.json") | |
| restore, parallel (reference) | \`pg_restore -j $JOBS -d URL ID.pgdir\` (dbdeploy's dump, not one transaction) | $RJ s | $(spread "$WORK/results/rs_pgrestore_j.json") | $(ratio "$RJ" "$R0") |

EOF
    if [ -n "$BIG_ROWS" ]; then
        cat <<EOF
**1 GB (issue 3's database, re-measured):** \`CREATE TABLE big (id int PRIMARY KEY, payload text)\` with \`INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text||g||i),'') FROM generate_series(1,30) i) FROM generate_series(1,1100000) g\`, $BIG_SIZE; one run each, \`/usr/bin/time -f "%e %M"\`; dbdeploy's backup $(human "$BIG_DIR_SIZE"), \`pg_dump -Fc\`'s $(human "$BIG_FC_SIZE").

| command | time | peak RSS |
|---|---|---|
EOF
        echo "$BIG_ROWS" | while IFS=$'\t' read -r label figures; do
            set -- $figures
            if [ "${1:-failed}" = failed ] || [ -z "${2:-}" ]; then
                echo "| $label | failed (the run's log says why) | — |"
            else
                echo "| $label | $1 s | $(($2 / 1024)) MB |"
            fi
        done
        echo
    fi
}
SECTION=$(report)
echo "$SECTION"
if [ -n "$WRITE" ]; then
    export SECTION
    targets=("$ROOT/scripts/bench-notes.md")
    [ "$WRITE" = all ] && targets+=("$ROOT/BENCHMARKS.md")
    for f in "${targets[@]}"; do
        python3 - "$f" <<'EOF'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
section = os.environ["SECTION"].rstrip() + "\n"
pat = re.compile(r"^## Backup and restore[^\n]*\n.*?(?=^## |\Z)", re.S | re.M)
if pat.search(text):
    text = pat.sub(lambda m: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text.rstrip() + "\n")
EOF
        log "wrote $f"
    done
fi
