#!/usr/bin/env python3
"""Generates a synthetic migration history for benchmarks and corpus runs.

Migration i (1-based) creates table t_NNNNN with 5 columns and one index; every 10th one
also adds a column to the table created 9 migrations earlier. The same SQL is written in
several layouts so that dbdeploy and the peer tools run exactly the same statements:

  OUT/prisma/migrations/<ts>_mNNNNN/migration.sql   Prisma (plus migration_lock.toml)
  OUT/sqlx/<ts>_mNNNNN.sql                          sqlx-cli
  OUT/dbmate/<ts>_mNNNNN.sql                        dbmate (-- migrate:up / -- migrate:down)
  OUT/all.sql                                       every statement, in order (the floor)
  OUT/dbdeploy.toml                                 environment `bench`, URL from BENCH_DATABASE_URL
  OUT/state.sql                                     with --state: every migration applied, as
                                                    Prisma leaves it (its tracking table and one
                                                    row per migration, sha256 checksums), in
                                                    transactions of 500 migrations

Usage: gen-migrations.py --engine postgresql|sqlite [-n 300] [--state] OUT
"""

import argparse
import datetime
import hashlib
import os
import sys
import uuid

BASE = datetime.datetime(2024, 1, 1, 0, 0, 0)

COLUMNS = {
    "postgresql": [
        '"id" SERIAL NOT NULL',
        '"name" TEXT NOT NULL',
        '"email" TEXT',
        '"score" INTEGER NOT NULL DEFAULT 0',
        '"created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP',
    ],
    "sqlite": [
        '"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT',
        '"name" TEXT NOT NULL',
        '"email" TEXT',
        '"score" INTEGER NOT NULL DEFAULT 0',
        '"created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP',
    ],
}


def table(i):
    return f"t_{i:05d}"


def migration_sql(engine, i):
    """The SQL of migration i, formatted the way `prisma migrate dev` writes it."""
    t = table(i)
    cols = list(COLUMNS[engine])
    if engine == "postgresql":
        cols.append(f'CONSTRAINT "{t}_pkey" PRIMARY KEY ("id")')
    body = ",\n".join(f"    {c}" for c in cols)
    sql = f'-- CreateTable\nCREATE TABLE "{t}" (\n{body}\n);\n\n'
    sql += f'-- CreateIndex\nCREATE INDEX "{t}_email_idx" ON "{t}"("email");\n'
    if i % 10 == 0:
        sql += f'\n-- AlterTable\nALTER TABLE "{table(i - 9)}" ADD COLUMN "extra_{i:05d}" TEXT;\n'
    return sql


# Prisma's tracking table, as `prisma migrate deploy` (and dbdeploy) create it.
TRACKING = {
    "postgresql": """CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);
""",
    "sqlite": """CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);
""",
}
# Prisma's SQLite rows hold milliseconds since the epoch.
NOW = {"postgresql": "now()", "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"}
# Tables, indexes and sequences each take a lock until commit: a transaction of 500
# migrations stays well below PostgreSQL's default lock table.
BATCH = 500


def tracking_row(engine, name, sql):
    checksum = hashlib.sha256(sql.encode()).hexdigest()
    now = NOW[engine]
    return (
        'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, '
        f"started_at, applied_steps_count) VALUES ('{uuid.uuid4()}', '{checksum}', {now}, "
        f"'{name}', {now}, 1);\n"
    )


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=sorted(COLUMNS), required=True)
    p.add_argument("-n", type=int, default=300, help="number of migrations (default 300)")
    p.add_argument("--state", action="store_true", help="also write state.sql (see above)")
    p.add_argument("out", help="output folder (created; must not exist or be empty)")
    a = p.parse_args()
    if a.n < 1:
        sys.exit("gen-migrations: -n must be at least 1")
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"gen-migrations: {a.out} exists and is not empty")
    prisma = os.path.join(a.out, "prisma", "migrations")
    sqlx = os.path.join(a.out, "sqlx")
    dbmate = os.path.join(a.out, "dbmate")
    for d in (prisma, sqlx, dbmate):
        os.makedirs(d, exist_ok=True)
    write(
        os.path.join(prisma, "migration_lock.toml"),
        "# Please do not edit this file manually\n"
        "# It should be added in your version-control system (e.g., Git)\n"
        f'provider = "{a.engine}"\n',
    )
    state = None
    if a.state:
        state = open(os.path.join(a.out, "state.sql"), "w", encoding="utf-8", newline="\n")
        state.write("BEGIN;\n" + TRACKING[a.engine])
    with open(os.path.join(a.out, "all.sql"), "w", encoding="utf-8", newline="\n") as everything:
        for i in range(1, a.n + 1):
            ts = (BASE + datetime.timedelta(minutes=i)).strftime("%Y%m%d%H%M%S")
            name = f"{ts}_m{i:05d}"
            sql = migration_sql(a.engine, i)
            os.makedirs(os.path.join(prisma, name))
            write(os.path.join(prisma, name, "migration.sql"), sql)
            write(os.path.join(sqlx, f"{name}.sql"), sql)
            write(os.path.join(dbmate, f"{name}.sql"), f"-- migrate:up\n{sql}\n-- migrate:down\n")
            everything.write(sql)
            everything.write("\n")
            if state:
                state.write(sql + tracking_row(a.engine, name, sql))
                if i % BATCH == 0:
                    state.write("COMMIT;\nBEGIN;\n")
    if state:
        state.write("COMMIT;\n")
        state.close()
    write(
        os.path.join(a.out, "dbdeploy.toml"),
        "# Generated by scripts/gen-migrations.py for benchmarks.\n"
        "[project]\n"
        'migration_tool = "prisma"\n'
        'migrations_dir = "prisma/migrations"\n\n'
        "[environments.bench]\n"
        'url_env = "BENCH_DATABASE_URL"\n'
        'mode = "deploy"\n',
    )


if __name__ == "__main__":
    main()
