#!/usr/bin/env bash
# Installs the peer tools that scripts/bench.sh compares dbdeploy with, pinned, into one folder:
#
#   DIR/cargo/bin/sqlx                     sqlx-cli 0.9.0 (postgres, sqlite, rustls)
#   DIR/node/node_modules/.bin/dbmate      dbmate 2.36.0 (npm package; ships its Go binary)
#   DIR/prisma6/node_modules/.bin/prisma   Prisma CLI 6.19.3 with @prisma/adapter-pg and
#                                          @prisma/adapter-better-sqlite3 6.19.3 (driver
#                                          adapters: the WebAssembly schema engine)
#
# and writes DIR/README.txt. Usage: scripts/bench-tools.sh [DIR]  (default $BENCH_TOOLS, else
# /work/tools). Idempotent: a tool already there at its version is skipped, and the adapter-pg
# patch (see README.txt) is applied once. From scratch it takes about 8 minutes on 2 cores
# (7 min 51 s measured while other builds ran), nearly all of it compiling sqlx-cli with one
# job (CARGO_BUILD_JOBS, default 1, so that the machine stays usable) and better-sqlite3 (about
# 1 minute); a few seconds when everything is in place.
#
# Needs cargo, node and npm (the npm registry and crates.io only: nothing else is downloaded),
# make, g++ and python3 to build better-sqlite3, and Node.js's headers (/usr/include/node).
set -euo pipefail

TOOLS=${1:-${BENCH_TOOLS:-/work/tools}}
SQLX_VERSION=0.9.0
DBMATE_VERSION=2.36.0
PRISMA_VERSION=6.19.3
# What the adapters resolved to when this was written; pinned so that a rerun builds the same.
PG_VERSION=8.23.1
BETTER_SQLITE3_VERSION=11.10.0

log() { echo "bench-tools: $*" >&2; }
die() {
    log "$*"
    exit 1
}
for tool in cargo node npm make g++ python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
mkdir -p "$TOOLS"
TOOLS=$(cd "$TOOLS" && pwd)
START=$SECONDS

# ---------------------------------------------------------------- sqlx-cli
SQLX=$TOOLS/cargo/bin/sqlx
if [ -x "$SQLX" ] && [ "$("$SQLX" --version 2>/dev/null)" = "sqlx-cli $SQLX_VERSION" ]; then
    log "sqlx-cli $SQLX_VERSION: already installed"
else
    log "sqlx-cli $SQLX_VERSION: building (the long part)"
    # rustls, as dbdeploy uses: both sides negotiate TLS with the same library.
    CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo install sqlx-cli --version "$SQLX_VERSION" \
        --locked --root "$TOOLS/cargo" --no-default-features --features postgres,sqlite,rustls
    [ "$("$SQLX" --version)" = "sqlx-cli $SQLX_VERSION" ] || die "sqlx-cli did not install as $SQLX_VERSION"
fi

# ---------------------------------------------------------------- npm
# node-gyp would fetch Node.js's headers from the internet; the distribution's are used instead.
NODE_PREFIX=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$NODE_PREFIX/include/node/node_api.h" ]; then
    export npm_config_nodedir=$NODE_PREFIX
fi
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

# version DIR PACKAGE: the installed version of PACKAGE under DIR/node_modules, or nothing.
version() {
    node -e 'try { console.log(require(process.argv[1] + "/node_modules/" + process.argv[2] + "/package.json").version) } catch {}' "$1" "$2"
}

# ---------------------------------------------------------------- dbmate
DBMATE=$TOOLS/node/node_modules/.bin/dbmate
if [ "$(version "$TOOLS/node" dbmate)" = "$DBMATE_VERSION" ] && "$DBMATE" --version >/dev/null 2>&1; then
    log "dbmate $DBMATE_VERSION: already installed"
else
    log "dbmate $DBMATE_VERSION: installing"
    npm install --prefix "$TOOLS/node" --save-exact "dbmate@$DBMATE_VERSION" >&2
    [ "$("$DBMATE" --version)" = "dbmate version $DBMATE_VERSION" ] || die "dbmate did not install as $DBMATE_VERSION"
fi

# ---------------------------------------------------------------- Prisma 6
P=$TOOLS/prisma6
prisma_ok() {
    for pkg in prisma @prisma/adapter-pg @prisma/adapter-better-sqlite3; do
        [ "$(version "$P" "$pkg")" = "$PRISMA_VERSION" ] || return 1
    done
    [ "$(version "$P" pg)" = "$PG_VERSION" ] || return 1
    [ "$(version "$P" better-sqlite3)" = "$BETTER_SQLITE3_VERSION" ] || return 1
    (cd "$P" && node -e 'new (require("better-sqlite3"))(":memory:").close()') >/dev/null 2>&1
}
if prisma_ok; then
    log "Prisma $PRISMA_VERSION and its adapters: already installed"
else
    log "Prisma $PRISMA_VERSION and its adapters: installing (better-sqlite3 compiles, about 1 minute)"
    mkdir -p "$P"
    # @prisma/client and typescript are not needed: `migrate deploy` does not generate a client,
    # and the CLI loads prisma.config.ts itself (jiti).
    cat >"$P/package.json" <<EOF
{
  "name": "bench-prisma6",
  "private": true,
  "description": "Prisma CLI for dbdeploy's scripts/bench.sh; written by scripts/bench-tools.sh",
  "dependencies": {
    "@prisma/adapter-better-sqlite3": "$PRISMA_VERSION",
    "@prisma/adapter-pg": "$PRISMA_VERSION",
    "better-sqlite3": "$BETTER_SQLITE3_VERSION",
    "pg": "$PG_VERSION",
    "prisma": "$PRISMA_VERSION"
  }
}
EOF
    # No install scripts: @prisma/engines' would download the native engines, which cannot be
    # reached here (and are not used). better-sqlite3 is then built from source, as its
    # prebuilt binaries would be downloaded from outside the npm registry as well.
    (cd "$P" && npm install --ignore-scripts >&2)
    (cd "$P" && npm_config_build_from_source=true npm rebuild better-sqlite3 >&2)
    prisma_ok || die "the Prisma project in $P is not complete after installing"
fi

# prisma/orm#27403: adapter-pg has no column type for PostgreSQL's `name` (OID 19), so the
# schema engine's reads of the catalogs fail and so does every migrate command. Read it as
# text, which it is (a 63-byte identifier).
node - "$P/node_modules/@prisma/adapter-pg/dist/index.js" "$P/node_modules/@prisma/adapter-pg/dist/index.mjs" <<'EOF'
const fs = require("fs");
const mark = "case 19: /* name as text: prisma/orm#27403, bench-tools.sh */";
for (const file of process.argv.slice(2)) {
  const src = fs.readFileSync(file, "utf8");
  if (src.includes(mark)) continue;
  const anchor = /^( *)case ScalarColumnType\.TEXT:$/m;
  const found = src.match(anchor);
  if (!found || src.split("case ScalarColumnType.TEXT:").length !== 2) {
    console.error(`bench-tools: cannot patch ${file}: its text column case is not found exactly once`);
    process.exit(1);
  }
  fs.writeFileSync(file, src.replace(anchor, `${found[1]}${mark}\n${found[0]}`));
  console.error(`bench-tools: patched ${file}`);
}
EOF

# ---------------------------------------------------------------- README.txt
cat >"$TOOLS/README.txt" <<EOF
Benchmark peers for dbdeploy's scripts/bench.sh (which looks here through BENCH_TOOLS).
Installed by scripts/bench-tools.sh from the dbdeploy repository; run it again to repair or
reinstall (it skips what is already in place). Last run: $(date -u '+%Y-%m-%d %H:%M UTC').

cargo/     sqlx-cli $("$SQLX" --version | awk '{print $2}'), built with cargo install --locked,
           features postgres,sqlite,rustls (rustls like dbdeploy; no MySQL).
           Binary: cargo/bin/sqlx
node/      dbmate $("$DBMATE" --version | awk '{print $3}') (npm package dbmate, which ships the Go binary).
           Binary: node/node_modules/.bin/dbmate
prisma6/   Prisma CLI $(version "$P" prisma) with @prisma/adapter-pg $(version "$P" @prisma/adapter-pg),
           @prisma/adapter-better-sqlite3 $(version "$P" @prisma/adapter-better-sqlite3), pg $(version "$P" pg),
           better-sqlite3 $(version "$P" better-sqlite3) (compiled here from source).
           Binary: prisma6/node_modules/.bin/prisma

Why Prisma 6 with driver adapters: the native schema engine that \`prisma migrate\` uses is
downloaded from Prisma's own binary host at first use, which this machine cannot reach (only
the crates.io, PyPI, Debian and npm registries are). Prisma 6 can instead run the WebAssembly
schema engine through driver adapters (prisma.config.ts with engine "js" and
experimental.adapter, which bench.sh writes). npm install ran with --ignore-scripts for that
reason too (@prisma/engines' postinstall would try the same download). \`prisma --version\`
fails here for the same reason; bench.sh reads the versions from package.json instead. So the
Prisma figures are for the WebAssembly engine, not the native binary most users run.
node-postgres (pg, under adapter-pg) takes sslmode or PGSSLMODE prefer/require as "verify the
certificate", so against a server with a self-signed certificate Prisma needs sslmode=disable
(as bench.sh sets) where sqlx-cli and dbmate would fall back or accept it.

Patch: node_modules/@prisma/adapter-pg/dist/index.js and index.mjs (the CommonJS and ES module
builds) get one line in fieldToColumnType:
    case 19: /* name as text: prisma/orm#27403, bench-tools.sh */
so that PostgreSQL \`name\` columns (OID 19) map to text. Without it every migrate command on
PostgreSQL fails with "Column type 'name' could not be deserialized from the database" (open
bug prisma/orm#27403), because the schema engine reads catalog columns of that type.
EOF
log "done in $((SECONDS - START)) s; see $TOOLS/README.txt"
