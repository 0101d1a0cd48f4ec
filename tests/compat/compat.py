#!/usr/bin/env python3
"""dbdeploy against the real migration tools (see tests/compat/run.sh, which installs them).

For every format, fixture and engine, checks against the tool itself:

  a  dbdeploy deploys the fixture; the tool's status says everything is applied and the
     tool's own migrate changes nothing (tracking rows identical, timestamps included);
  b  the tool applies the first half of the fixture; dbdeploy sees exactly the rest as
     pending, deploys it without touching the tool's rows, and the tool agrees afterwards;
  c  the tool deploys the fixture into database A and dbdeploy into database B: the tracking
     rows are identical in every column the tool defines (timestamps, execution times and
     installed_by excepted), and so is the tracking table's definition;
  d  (where the tool records failures as dbdeploy does) the same failing fixture deployed by
     the tool and by dbdeploy leaves the same rows, and the tool's next migrate answers both
     databases the same way.

Flyway and golang-migrate cannot be installed from the registries this suite uses (Maven
Central; Go binaries), so they are checked against their documented format instead: an
independent oracle in this file computes the rows the tool would write (Flyway's CRC-32 over
lines, versions, descriptions; golang-migrate's single version row), and "the tool's first
half" is written the way the tool writes it. Those rows say "documented format" in the summary.

Only the Python standard library and the engines' command-line clients (psql, mariadb,
sqlite3) are used. Every database is created with a unique name and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "migrations-fixtures"
TIMEOUT = int(os.environ.get("DBDEPLOY_COMPAT_TIMEOUT", "300"))
VERBOSE = False


class CheckFailed(Exception):
    """A check found dbdeploy and the tool disagreeing (or a step that must work failed)."""


class Skip(Exception):
    """A check that cannot run here, with the reason."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd, *, cwd=None, env=None, input=None, check=True, what=None, stdout_only=False):
    """Runs a command, returning (exit code, stdout + stderr), or (exit code, stdout) with
    `stdout_only`. Fails the check on a non-zero exit when `check` is set, quoting the tail
    of the output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if VERBOSE:
        log(f"    $ {' '.join(str(c) for c in cmd)}")
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            # Raw checksum bytes show up in SELECT *; keep them distinct rather than fail.
            errors="backslashreplace",
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{what or cmd[0]} timed out after {TIMEOUT}s") from exc
    out = proc.stdout + proc.stderr
    if VERBOSE and out.strip():
        log("      " + out.strip().replace("\n", "\n      "))
    if check and proc.returncode != 0:
        raise CheckFailed(f"{what or Path(str(cmd[0])).name} exited {proc.returncode}: {tail(out)}")
    return proc.returncode, (proc.stdout if stdout_only else out)


def tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-600:]


# ---------------------------------------------------------------------------------- engines


class Engine:
    """A database server (or SQLite) the checks create databases in and query."""

    name = ""

    def create(self, db: str) -> None: ...

    def drop(self, db: str) -> None: ...

    def url(self, db: str) -> str: ...

    def query(self, db: str, sql: str) -> list[tuple[str, ...]]: ...

    def run_file(self, db: str, path: Path) -> None: ...

    def table_definition(self, db: str, schema: str | None, table: str) -> list[str]: ...


class Postgres(Engine):
    name = "postgres"

    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def url(self, db):
        return f"{self.base}/{db}"

    def _psql(self, db, *args, input=None):
        return run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(db), *args],
            input=input,
            what="psql",
        )[1]

    def create(self, db):
        self._psql("postgres", "-c", f'CREATE DATABASE "{db}"')

    def drop(self, db):
        self._psql("postgres", "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    def query(self, db, sql):
        out = run(
            ["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-P", "null=NULL", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(db), "-c", sql],
            what="psql",
        )[1]
        return [tuple(line.split("\t")) for line in out.splitlines() if line != ""]

    def run_file(self, db, path):
        self._psql(db, "-f", str(path))

    def table_definition(self, db, schema, table):
        schema = schema or "public"
        cols = self.query(
            db,
            "SELECT column_name, data_type, coalesce(character_maximum_length::text, ''), "
            "is_nullable, coalesce(column_default, '') FROM information_schema.columns "
            f"WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position",
        )
        idx = self.query(
            db,
            f"SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' "
            f"AND tablename = '{table}' ORDER BY indexname",
        )
        return [" ".join(c) for c in cols] + [i[0] for i in idx]


class MariaDB(Engine):
    name = "mariadb"

    def __init__(self, base: str):
        parts = urlsplit(base)
        self.base = base.rstrip("/")
        self.args = [
            "-h", parts.hostname or "127.0.0.1",
            "-P", str(parts.port or 3306),
            "-u", parts.username or "root",
        ]
        if parts.password:
            self.args.append(f"-p{parts.password}")

    def url(self, db):
        return f"{self.base}/{db}"

    def _client(self, db, *args, input=None):
        cmd = ["mariadb", *self.args, *([db] if db else []), *args]
        return run(cmd, input=input, what="mariadb")[1]

    def create(self, db):
        self._client(None, "-e", f"CREATE DATABASE `{db}`")

    def drop(self, db):
        self._client(None, "-e", f"DROP DATABASE IF EXISTS `{db}`")

    def query(self, db, sql):
        out = self._client(db, "-N", "-B", "-e", sql)
        return [tuple(line.split("\t")) for line in out.splitlines() if line != ""]

    def run_file(self, db, path):
        self._client(db, input=path.read_text(encoding="utf-8"))

    def table_definition(self, db, schema, table):
        rows = self.query(db, f"SHOW CREATE TABLE `{table}`")
        ddl = rows[0][1].replace("\\n", "\n")
        # The counter moves with the rows, which are compared separately.
        ddl = re.sub(r" AUTO_INCREMENT=\d+", "", ddl)
        return [line.strip() for line in ddl.splitlines()]


class Sqlite(Engine):
    name = "sqlite"

    def __init__(self, directory: Path):
        self.dir = directory

    def path(self, db):
        return self.dir / f"{db}.db"

    def url(self, db):
        return f"sqlite://{self.path(db)}"

    def create(self, db):
        self.path(db).unlink(missing_ok=True)

    def drop(self, db):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path(db)}{suffix}").unlink(missing_ok=True)

    def query(self, db, sql):
        out = run(
            ["sqlite3", "-bail", "-separator", "\t", "-nullvalue", "NULL", str(self.path(db)), sql],
            what="sqlite3",
        )[1]
        return [tuple(line.split("\t")) for line in out.splitlines() if line != ""]

    def run_file(self, db, path):
        run(["sqlite3", "-bail", str(self.path(db))], input=path.read_text(encoding="utf-8"),
            what="sqlite3")

    def table_definition(self, db, schema, table):
        # The declared types, constraints and indexes, not the CREATE text (quoting and
        # spacing in it are not part of the format).
        cols = self.query(
            db,
            "SELECT name, type, \"notnull\", coalesce(dflt_value, ''), pk "
            f"FROM pragma_table_info('{table}') ORDER BY cid",
        )
        idx = self.query(
            db,
            "SELECT il.name, il.\"unique\", il.origin, group_concat(ii.name) "
            f"FROM pragma_index_list('{table}') il, pragma_index_info(il.name) ii "
            "GROUP BY il.name ORDER BY il.name",
        )
        return [" ".join(c) for c in cols] + [" ".join(i) for i in idx]


# ---------------------------------------------------------------------------------- formats


@dataclass
class Fixture:
    """A fixture folder, plus the edits that make it acceptable to the real tool."""

    path: Path
    exclude: dict[str, str] = field(default_factory=dict)  # file name -> why
    edits: list[tuple[str, str, str, str]] = field(default_factory=list)  # file, old, new, why

    def notes(self) -> list[str]:
        notes = [f"{name} left out: {why}" for name, why in self.exclude.items()]
        notes += [f"{name} edited: {why}" for name, _, _, why in self.edits]
        return notes


class Format:
    """A migration format: how to lay out a project, run the tool and read its table."""

    name = ""
    tool_label = ""  # "sqlx-cli 0.9.0" or "documented format"
    documented_only = False
    folder = "migrations"
    schema: str | None = None
    table = ""

    # variant -> engine -> fixture folder under migrations-fixtures/
    variants: dict[str, dict[str, str]] = {}

    def __init__(self, tools: "Tools", variant: str = "basic"):
        self.tools = tools
        self.variant = variant

    @property
    def label(self) -> str:
        return self.name if self.variant == "basic" else f"{self.name} ({self.variant})"

    # -- fixture and layout
    def fixture(self, engine: Engine) -> Fixture:
        folder = self.variants[self.variant][engine.name]
        return self.adjust(Fixture(FIXTURES / folder), engine)

    def adjust(self, fx: Fixture, engine: Engine) -> Fixture:
        """Leaves out or edits fixture files the real tool cannot run (saying why)."""
        return fx

    def units(self, src: Path) -> list[str]:
        """The fixture's migrations, in the order the tool applies them."""
        raise NotImplementedError

    def files_of(self, src: Path, units: list[str]) -> list[Path]:
        raise NotImplementedError

    def layout(self, fixture: Fixture, project: Path, half: bool = False) -> None:
        dest = project / self.folder
        dest.mkdir(parents=True, exist_ok=True)
        units = self.units(fixture.path)
        if half:
            units = units[: len(units) // 2]
        for src in self.files_of(fixture.path, units):
            if src.name in fixture.exclude:
                continue
            target = dest / src.relative_to(fixture.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        for name, old, new, _ in fixture.edits:
            target = dest / name
            if target.exists():
                data = target.read_bytes()
                if old.encode() not in data:
                    raise CheckFailed(f"fixture edit for {name} no longer applies")
                target.write_bytes(data.replace(old.encode(), new.encode()))
        self.after_layout(fixture, project, dest, units)

    def after_layout(self, fixture, project, dest, units) -> None:
        pass

    def unit_count(self, fixture: Fixture, half: bool = False) -> int:
        units = self.units(fixture.path)
        if half:
            units = units[: len(units) // 2]
        excluded = {self.unit_of(name) for name in fixture.exclude}
        return len([u for u in units if u not in excluded])

    def unit_of(self, file_name: str) -> str:
        return file_name

    # -- the real tool
    def tool_migrate(self, project: Path, engine: Engine, db: str, check: bool = True):
        """Runs the tool's migrate command; returns (exit code, output)."""
        raise NotImplementedError

    def tool_status(self, project: Path, engine: Engine, db: str, expected: int) -> str:
        """Raises CheckFailed unless the tool reports all `expected` migrations applied;
        returns a short description of what it showed."""
        raise NotImplementedError

    # -- the tracking table
    def qualified(self, engine: Engine) -> str:
        if self.schema and engine.name == "postgres":
            return f'"{self.schema}"."{self.table}"'
        return self.table

    def all_rows(self, engine: Engine, db: str) -> list[tuple[str, ...]]:
        """Every column of every row (timestamps included), to see that nothing changed."""
        return sorted(engine.query(db, f"SELECT {self.all_columns(engine)} "
                                       f"FROM {self.qualified(engine)}"))

    def all_columns(self, engine: Engine) -> str:
        return "*"

    def defined_rows(self, engine: Engine, db: str) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def table_definition(self, engine: Engine, db: str) -> list[str]:
        return engine.table_definition(db, self.schema, self.table)

    def dbdeploy_tool(self) -> str:
        return self.name

    # engine -> fixture folder whose deploy fails where the tool records failures as dbdeploy
    # does (a migration outside a transaction, or MySQL's dirty row); checked as "d".
    failures: dict[str, str] = {}

    def failure_rows(self, engine: Engine, db: str) -> list[tuple[str, ...]]:
        return self.defined_rows(engine, db)

    def expected_rows(self, fixture: Fixture, engine: Engine, half: bool) -> list[tuple]:
        """Documented-format formats: the rows the tool would write."""
        raise NotImplementedError

    def tool_first_half(self, fixture: Fixture, project: Path, engine: Engine, db: str):
        """Documented-format formats: the database as the tool leaves it after the first half."""
        raise NotImplementedError

    def reference_table(self, engine: Engine, db: str) -> None:
        """Documented-format formats: create the tool's table with the tool's own DDL."""
        raise NotImplementedError

    def oracle_note(self, fixture: Fixture) -> str:
        """Documented-format formats: how the expected rows were cross-checked, if at all."""
        return ""


def hex_expr(engine: Engine, column: str) -> str:
    if engine.name == "postgres":
        return f"encode({column}, 'hex')"
    return f"lower(hex({column}))"


def bool_expr(column: str) -> str:
    return f"CASE WHEN {column} THEN 1 ELSE 0 END"


def sorted_by_version(files: list[Path], pattern: str) -> list[tuple[int, Path]]:
    out = []
    for f in files:
        m = re.match(pattern, f.name)
        if m:
            out.append((int(m.group(1)), f))
    return sorted(out, key=lambda p: (p[0], p[1].name))


class Sqlx(Format):
    name = "sqlx"
    table = "_sqlx_migrations"
    pattern = r"^(\d+)_.*?(\.up|\.down)?\.sql$"

    def __init__(self, tools, variant="basic"):
        super().__init__(tools, variant)
        self.tool_label = f"sqlx-cli {tools.versions['sqlx-cli']}"

    variants = {
        "basic": {"postgres": "sqlx/basic", "mariadb": "sqlx/basic", "sqlite": "sqlx/basic"},
        "crlf": {"postgres": "sqlx/crlf", "mariadb": "sqlx/crlf", "sqlite": "sqlx/crlf"},
        "reversible": {"postgres": "sqlx/reversible", "mariadb": "sqlx/reversible",
                       "sqlite": "sqlx/reversible"},
        "concurrently": {"postgres": "sqlx/postgresql-concurrently"},
    }

    def adjust(self, fx, engine):
        if self.variant != "basic":
            return fx
        if engine.name == "mariadb":
            fx.exclude["4_empty.sql"] = (
                "sqlx-cli cannot apply an empty file on MySQL/MariaDB (1065 Query was empty)"
            )
        if engine.name == "sqlite":
            fx.exclude["6_backfill.sql"] = (
                "sqlx-cli wraps the file in its own transaction and SQLite refuses the file's "
                "BEGIN (cannot start a transaction within a transaction)"
            )
        return fx

    def units(self, src):
        return sorted({str(v) for v, _ in sorted_by_version(list(src.iterdir()), self.pattern)},
                      key=int)

    def unit_of(self, file_name):
        return re.match(r"^(\d+)", file_name).group(1)

    def files_of(self, src, units):
        return [f for v, f in sorted_by_version(list(src.iterdir()), self.pattern)
                if str(v) in units]

    def _url(self, engine, db):
        if engine.name == "sqlite":
            return f"sqlite://{engine.path(db)}?mode=rwc"
        return engine.url(db)

    def tool_migrate(self, project, engine, db, check=True):
        return run([self.tools.sqlx, "migrate", "run", "--source", self.folder], cwd=project,
                   env={"DATABASE_URL": self._url(engine, db)}, check=check,
                   what="sqlx migrate run")

    def tool_status(self, project, engine, db, expected):
        _, out = run([self.tools.sqlx, "migrate", "info", "--source", self.folder], cwd=project,
                     env={"DATABASE_URL": self._url(engine, db)}, what="sqlx migrate info")
        lines = [line for line in out.splitlines() if re.match(r"^\d+/", line)]
        installed = [line for line in lines if re.match(r"^\d+/installed ", line)]
        odd = [line for line in lines if line not in installed or "different checksum" in line]
        if odd or len(installed) != expected:
            raise CheckFailed(f"sqlx migrate info: {len(installed)}/{expected} installed; {odd}")
        return f"`sqlx migrate info`: {len(installed)}/{expected} installed, checksums match"

    def all_columns(self, engine):
        return (f"version, description, installed_on, success, {hex_expr(engine, 'checksum')}, "
                "execution_time")

    # sqlx's own transaction rolls a failure back on PostgreSQL and SQLite, as dbdeploy's does;
    # on MySQL both leave a `success = false` row.
    failures = {"postgres": "sqlx/fails-halfway", "mariadb": "sqlx/fails-halfway",
                "sqlite": "sqlx/fails-halfway"}

    def defined_rows(self, engine, db):
        return engine.query(
            db,
            f"SELECT version, description, {bool_expr('success')}, {hex_expr(engine, 'checksum')} "
            f"FROM {self.table} ORDER BY version",
        )


class Dbmate(Format):
    name = "dbmate"
    folder = "db/migrations"
    table = "schema_migrations"

    def __init__(self, tools, variant="basic"):
        super().__init__(tools, variant)
        self.tool_label = f"dbmate {tools.versions['dbmate']}"

    variants = {
        "basic": {"postgres": "dbmate/basic", "mariadb": "dbmate/basic", "sqlite": "dbmate/basic"},
        "crlf": {"postgres": "dbmate/crlf", "mariadb": "dbmate/crlf", "sqlite": "dbmate/crlf"},
        "concurrently": {"postgres": "dbmate/postgresql-concurrently"},
    }

    def adjust(self, fx, engine):
        if self.variant != "basic":
            return fx
        fx.edits.append((
            "20240102000000_posts.sql", "    -- migrate:down", "-- migrate:down",
            "dbmate 2 rejects an indented `-- migrate:down` (dbdeploy accepts it with a warning)",
        ))
        return fx

    def units(self, src):
        return sorted(f.name for f in src.iterdir() if re.match(r"^\d+.*\.sql$", f.name))

    def files_of(self, src, units):
        return [src / u for u in units]

    def _url(self, engine, db):
        if engine.name == "postgres":
            return engine.url(db) + "?sslmode=disable"
        if engine.name == "sqlite":
            return f"sqlite:{engine.path(db)}"
        return engine.url(db)

    def _dbmate(self, project, engine, db, *args, check=True):
        return run([self.tools.dbmate, "--no-dump-schema", "--migrations-dir", self.folder,
                    "--url", self._url(engine, db), *args], cwd=project, check=check,
                   what=f"dbmate {args[0]}")

    def tool_migrate(self, project, engine, db, check=True):
        return self._dbmate(project, engine, db, "migrate", check=check)

    def tool_status(self, project, engine, db, expected):
        code, out = self._dbmate(project, engine, db, "status", "--exit-code", check=False)
        applied = re.search(r"Applied: (\d+)", out)
        pending = re.search(r"Pending: (\d+)", out)
        if code != 0 or not applied or int(applied.group(1)) != expected or not pending \
                or pending.group(1) != "0":
            raise CheckFailed(f"dbmate status (exit {code}): {tail(out)}")
        return f"`dbmate status`: Applied: {expected}, Pending: 0"

    def defined_rows(self, engine, db):
        return engine.query(db, f"SELECT version FROM {self.table} ORDER BY version")


class Drizzle(Format):
    name = "drizzle"
    folder = "drizzle"
    table = "__drizzle_migrations"
    schema = "drizzle"
    dialects = {"postgres": "postgresql", "mariadb": "mysql", "sqlite": "sqlite"}

    def __init__(self, tools, variant="basic"):
        super().__init__(tools, variant)
        self.tool_label = (f"drizzle-kit {tools.versions['drizzle-kit']} "
                           f"(drizzle-orm {tools.versions['drizzle-orm']})")

    variants = {
        "basic": {"postgres": "drizzle/postgresql-basic", "mariadb": "drizzle/mysql-basic",
                  "sqlite": "drizzle/sqlite-basic"},
    }

    def adjust(self, fx, engine):
        if engine.name == "sqlite":
            fx.exclude["0002_custom_comment_only.sql"] = (
                "drizzle-kit's SQLite driver (@libsql/client) fails on a statement that is only "
                "a comment (SQLITE_OK: not an error)"
            )
        return fx

    def _journal(self, src):
        return json.loads((src / "meta" / "_journal.json").read_text(encoding="utf-8"))

    def units(self, src):
        return [e["tag"] for e in self._journal(src)["entries"]]

    def files_of(self, src, units):
        return [src / f"{u}.sql" for u in units]

    def unit_of(self, file_name):
        return file_name.removesuffix(".sql")

    def after_layout(self, fixture, project, dest, units):
        journal = self._journal(fixture.path)
        journal["entries"] = [e for e in journal["entries"]
                              if e["tag"] in units and f"{e['tag']}.sql" not in fixture.exclude]
        (dest / "meta").mkdir(exist_ok=True)
        (dest / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2),
                                                     encoding="utf-8")

    def _config(self, project, engine, db):
        url = f"file:{engine.path(db)}" if engine.name == "sqlite" else engine.url(db)
        config = {"dialect": self.dialects[engine.name], "out": f"./{self.folder}",
                  "dbCredentials": {"url": url}}
        path = project / "drizzle.config.js"
        path.write_text("module.exports = " + json.dumps(config) + ";\n", encoding="utf-8")
        return path.name

    def tool_migrate(self, project, engine, db, check=True):
        config = self._config(project, engine, db)
        return run([self.tools.drizzle_kit, "migrate", "--config", config], cwd=project,
                   env=self.tools.node_env("drizzle"), check=check, what="drizzle-kit migrate")

    def tool_status(self, project, engine, db, expected):
        raise Skip("drizzle-kit has no status command (the no-op migrate below is the check)")

    def qualified(self, engine):
        return super().qualified(engine)

    def table_definition(self, engine, db):
        schema = self.schema if engine.name == "postgres" else None
        return engine.table_definition(db, schema, self.table)

    def defined_rows(self, engine, db):
        # SQLite's `id SERIAL PRIMARY KEY` is not a rowid alias: ids stay NULL there.
        return engine.query(
            db,
            f"SELECT id, hash, created_at FROM {self.qualified(engine)} ORDER BY created_at, id",
        )


class Prisma(Format):
    name = "prisma"
    folder = "prisma/migrations"
    table = "_prisma_migrations"
    providers = {"postgres": "postgresql", "mariadb": "mysql", "sqlite": "sqlite"}

    def __init__(self, tools, variant="basic"):
        super().__init__(tools, variant)
        self.tool_label = f"prisma {tools.versions['prisma']} (WebAssembly schema engine)"

    variants = {
        "basic": {"postgres": "prisma/postgresql-basic", "mariadb": "prisma/mysql-basic",
                  "sqlite": "prisma/sqlite-basic"},
        "crlf": {"sqlite": "prisma/sqlite-crlf"},
        "concurrently": {"postgres": "prisma/postgresql-concurrently"},
    }

    def fixture(self, engine):
        self.engine_name = engine.name
        if engine.name == "mariadb":
            raise Skip(
                "Prisma's native schema engine is a download this machine cannot reach, and "
                f"the WebAssembly engine of prisma {self.tools.versions['prisma']} aborts on "
                "MySQL/MariaDB (RuntimeError: unreachable)"
            )
        return super().fixture(engine)

    def units(self, src):
        return sorted(d.name for d in src.iterdir() if (d / "migration.sql").is_file())

    def files_of(self, src, units):
        return [src / u / "migration.sql" for u in units] + [src / "migration_lock.toml"]

    def unit_of(self, file_name):
        return file_name.split("/")[0]

    def after_layout(self, fixture, project, dest, units):
        provider = self.providers[self.engine_name]
        (project / "prisma" / "schema.prisma").write_text(
            f'datasource db {{\n  provider = "{provider}"\n  url = env("DATABASE_URL")\n}}\n',
            encoding="utf-8",
        )
        (project / "prisma.config.js").write_text(PRISMA_CONFIG[self.engine_name],
                                                  encoding="utf-8")

    def _env(self, engine, db):
        url = f"file:{engine.path(db)}" if engine.name == "sqlite" else engine.url(db)
        env = self.tools.node_env("prisma")
        env.update({
            "DATABASE_URL": url,
            # With a driver adapter the CLI never loads the query engine, but still tries to
            # download it unless this points at a file.
            "PRISMA_QUERY_ENGINE_LIBRARY": str(self.tools.prisma_dummy_engine),
            "PRISMA_HIDE_UPDATE_MESSAGE": "1",
            "CHECKPOINT_DISABLE": "1",
        })
        return env

    def tool_migrate(self, project, engine, db, check=True):
        return run([self.tools.prisma, "migrate", "deploy"], cwd=project,
                   env=self._env(engine, db), check=check, what="prisma migrate deploy")

    def tool_status(self, project, engine, db, expected):
        code, out = run([self.tools.prisma, "migrate", "status"], cwd=project,
                        env=self._env(engine, db), check=False, what="prisma migrate status")
        found = re.search(r"(\d+) migrations? found", out)
        if code != 0 or "Database schema is up to date!" not in out or not found \
                or int(found.group(1)) != expected:
            raise CheckFailed(f"prisma migrate status (exit {code}): {tail(out)}")
        return f"`prisma migrate status`: {expected} migrations found, up to date"

    # A migration with its own BEGIN runs outside the runner's transaction in both tools.
    failures = {"postgres": "prisma/postgresql-own-transaction-fails"}

    def failure_rows(self, engine, db):
        # `logs` holds each tool's own wording of the error: only whether it is set counts.
        return engine.query(
            db,
            "SELECT migration_name, checksum, CASE WHEN logs IS NULL THEN 'NULL' ELSE 'set' END, "
            "applied_steps_count, CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END, "
            "CASE WHEN rolled_back_at IS NULL THEN 0 ELSE 1 END "
            f"FROM {self.table} ORDER BY migration_name, started_at",
        )

    def defined_rows(self, engine, db):
        return engine.query(
            db,
            "SELECT migration_name, checksum, coalesce(logs, 'NULL'), applied_steps_count, "
            "CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END, "
            "CASE WHEN rolled_back_at IS NULL THEN 0 ELSE 1 END "
            f"FROM {self.table} ORDER BY migration_name, started_at",
        )


# prisma/orm#27403: @prisma/adapter-pg cannot decode PostgreSQL's `name` type, which the
# schema engine reads from the catalogs. The shim presents such columns as text (same bytes);
# it changes nothing in what Prisma writes.
PRISMA_CONFIG = {
    "postgres": """\
const Result = require('pg/lib/result');
const addFields = Result.prototype.addFields;
Result.prototype.addFields = function (fields) {
  for (const f of fields) if (f.dataTypeID === 19) f.dataTypeID = 25;
  return addFields.call(this, fields);
};
const { PrismaPg } = require('@prisma/adapter-pg');
module.exports = {
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL }),
};
""",
    "sqlite": """\
const { PrismaLibSQL } = require('@prisma/adapter-libsql');
module.exports = {
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  adapter: async () => new PrismaLibSQL({ url: process.env.DATABASE_URL }),
};
""",
}


# ------------------------------------------------------------ documented-format oracles


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum, written from its documented algorithm (ChecksumCalculator): the file
    is read as UTF-8 line by line with java.io.BufferedReader.readLine (which ends a line at
    \\n, \\r or \\r\\n and drops the terminator), a BOM on the first line is dropped, and
    CRC-32 is fed the UTF-8 bytes of each line; the result is the CRC as a signed int."""
    text = data.decode("utf-8")
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()  # readLine returns no empty line after a final terminator
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    crc = 0
    for line in lines:
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def flyway_version_key(version: str) -> list[int]:
    return [int(p) for p in version.split(".")]


class Flyway(Format):
    name = "flyway"
    tool_label = "documented format (Flyway is not installable here)"
    documented_only = True
    folder = "db/migration"
    table = "flyway_schema_history"

    variants = {
        "basic": {"postgres": "flyway/basic", "mariadb": "flyway/basic", "sqlite": "flyway/basic"},
        "crlf": {"postgres": "flyway/crlf", "mariadb": "flyway/crlf", "sqlite": "flyway/crlf"},
        "special": {"postgres": "flyway/postgresql-special"},
    }

    def _parse(self, src):
        versioned, repeatable = [], []
        for f in sorted(src.iterdir()):
            m = re.match(r"^V([0-9][0-9._]*)__(.*)\.sql$", f.name)
            if m:
                versioned.append((m.group(1).replace("_", "."), m.group(2).replace("_", " "), f))
                continue
            m = re.match(r"^R__(.*)\.sql$", f.name)
            if m:
                repeatable.append((None, m.group(1).replace("_", " "), f))
        versioned.sort(key=lambda v: flyway_version_key(v[0]))
        repeatable.sort(key=lambda r: r[1])
        return versioned + repeatable

    def units(self, src):
        return [f.name for _, _, f in self._parse(src)]

    def files_of(self, src, units):
        return [src / u for u in units]

    def expected_rows(self, fixture, engine, half):
        parsed = self._parse(fixture.path)
        if half:
            parsed = parsed[: len(parsed) // 2]
        return [
            (str(rank), version or "NULL", desc, "SQL", f.name,
             str(flyway_checksum(f.read_bytes())), "1")
            for rank, (version, desc, f) in enumerate(parsed, start=1)
        ]

    def oracle_note(self, fixture: Fixture) -> str:
        """Cross-checks the Python checksums with the JDK's BufferedReader and CRC32 (the
        classes Flyway uses), when a JDK is installed."""
        if not shutil.which("java"):
            return "checksums from the Python oracle (no JDK to cross-check)"
        files = [f for _, _, f in self._parse(fixture.path)]
        _, out = run(["java", Path(__file__).with_name("FlywayChecksum.java"), *files],
                     what="java FlywayChecksum.java")
        java = {Path(line.split("\t", 1)[1]).name: int(line.split("\t", 1)[0])
                for line in out.splitlines() if "\t" in line}
        python = {f.name: flyway_checksum(f.read_bytes()) for f in files}
        if java != python:
            raise CheckFailed(f"the checksum oracle disagrees with the JDK: {java} vs {python}")
        return "checksums agree with the JDK's BufferedReader + CRC32"

    def defined_rows(self, engine, db):
        return engine.query(
            db,
            "SELECT installed_rank, coalesce(version, 'NULL'), description, type, script, "
            f"checksum, {bool_expr('success')} FROM {self.table} ORDER BY installed_rank",
        )

    def reference_table(self, engine, db):
        # Flyway's createMetaDataTable.sql for each engine (flyway-core resources).
        ddl = {
            "postgres": FLYWAY_DDL_POSTGRES,
            "mariadb": FLYWAY_DDL_MYSQL,
            "sqlite": FLYWAY_DDL_SQLITE,
        }[engine.name]
        path = Path(tempfile.mkstemp(suffix=".sql")[1])
        path.write_text(ddl, encoding="utf-8")
        try:
            engine.run_file(db, path)
        finally:
            path.unlink()

    def tool_first_half(self, fixture, project, engine, db):
        self.reference_table(engine, db)
        rows = self.expected_rows(fixture, engine, half=True)
        for rank, version, desc, typ, script, checksum, _ in rows:
            engine.run_file(db, fixture.path / script)
            version_sql = "NULL" if version == "NULL" else f"'{version}'"
            stmt = (
                f"INSERT INTO {self.table} (installed_rank, version, description, type, script, "
                f"checksum, installed_by, execution_time, success) VALUES ({rank}, "
                f"{version_sql}, '{desc}', '{typ}', '{script}', {checksum}, 'flyway', 1, "
                f"{'true' if engine.name == 'postgres' else '1'})"
            )
            engine.query(db, stmt)


FLYWAY_DDL_POSTGRES = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""

FLYWAY_DDL_MYSQL = """
CREATE TABLE `flyway_schema_history` (
    `installed_rank` INT NOT NULL,
    `version` VARCHAR(50),
    `description` VARCHAR(200) NOT NULL,
    `type` VARCHAR(20) NOT NULL,
    `script` VARCHAR(1000) NOT NULL,
    `checksum` INT,
    `installed_by` VARCHAR(100) NOT NULL,
    `installed_on` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    `execution_time` INT NOT NULL,
    `success` BOOL NOT NULL,
    CONSTRAINT `flyway_schema_history_pk` PRIMARY KEY (`installed_rank`)
) ENGINE=InnoDB;
CREATE INDEX `flyway_schema_history_s_idx` ON `flyway_schema_history` (`success`);
"""

FLYWAY_DDL_SQLITE = """
CREATE TABLE "main"."flyway_schema_history" (
    "installed_rank" INT NOT NULL PRIMARY KEY,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')),
    "execution_time" INT NOT NULL,
    "success" BOOLEAN NOT NULL
);
CREATE INDEX "main"."flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");
"""


class GolangMigrate(Format):
    name = "golang-migrate"
    tool_label = "documented format (golang-migrate is not installable here)"
    documented_only = True
    table = "schema_migrations"
    pattern = r"^(\d+)_.*\.(up|down)\.sql$"

    variants = {
        "basic": {"postgres": "golang-migrate/basic", "mariadb": "golang-migrate/basic",
                  "sqlite": "golang-migrate/basic"},
        "crlf": {"postgres": "golang-migrate/crlf", "mariadb": "golang-migrate/crlf",
                 "sqlite": "golang-migrate/crlf"},
    }

    def units(self, src):
        return sorted({str(v) for v, _ in sorted_by_version(list(src.iterdir()), self.pattern)},
                      key=int)

    def files_of(self, src, units):
        return [f for v, f in sorted_by_version(list(src.iterdir()), self.pattern)
                if str(v) in units]

    def expected_rows(self, fixture, engine, half):
        units = self.units(fixture.path)
        if half:
            units = units[: len(units) // 2]
        return [(units[-1], "0")]

    def defined_rows(self, engine, db):
        return engine.query(db, f"SELECT version, {bool_expr('dirty')} FROM {self.table}")

    def reference_table(self, engine, db):
        # database/{postgres,mysql,sqlite3} ensureVersionTable in golang-migrate.
        stmts = {
            "postgres": ["CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version bigint not null primary key, dirty boolean not null)"],
            "mariadb": ["CREATE TABLE IF NOT EXISTS `schema_migrations` "
                        "(version bigint not null primary key, dirty boolean not null)"],
            "sqlite": ["CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool)",
                       "CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations "
                       "(version)"],
        }[engine.name]
        for stmt in stmts:
            engine.query(db, stmt)

    def tool_first_half(self, fixture, project, engine, db):
        self.reference_table(engine, db)
        units = self.units(fixture.path)[: len(self.units(fixture.path)) // 2]
        for f in self.files_of(fixture.path, units):
            if f.name.endswith(".up.sql") and f.read_text(encoding="utf-8").strip():
                engine.run_file(db, f)
        # SetVersion(N, dirty) truncates the table and inserts the one row.
        engine.query(db, f"DELETE FROM {self.table}")
        engine.query(db, f"INSERT INTO {self.table} (version, dirty) VALUES ({units[-1]}, "
                         f"{'false' if engine.name == 'postgres' else '0'})")


# ---------------------------------------------------------------------------------- tools


class Tools:
    """Where run.sh installed the real tools, and their versions."""

    def __init__(self, args):
        self.versions = dict(v.split("=", 1) for v in args.version or [])
        self.dir = Path(args.tools_dir)
        self.sqlx = self.dir / "cargo" / "bin" / "sqlx"
        self.dbmate = self.dir / "npm" / "dbmate" / "node_modules" / ".bin" / "dbmate"
        self.drizzle_kit = self.dir / "npm" / "drizzle" / "node_modules" / ".bin" / "drizzle-kit"
        self.prisma = self.dir / "npm" / "prisma" / "node_modules" / ".bin" / "prisma"
        self.prisma_dummy_engine = self.dir / "npm" / "prisma" / "no-query-engine.so.node"
        self.dbdeploy = Path(args.dbdeploy)

    def node_env(self, package: str) -> dict[str, str]:
        # Config files live in the project directory, outside node_modules.
        return {"NODE_PATH": str(self.dir / "npm" / package / "node_modules")}

    def available(self, fmt: Format) -> str | None:
        """None when the format's tool is installed, else why not."""
        paths = {"sqlx": self.sqlx, "dbmate": self.dbmate, "drizzle": self.drizzle_kit,
                 "prisma": self.prisma}
        path = paths.get(fmt.name)
        if path is not None and not path.exists():
            return f"{path} is missing (run tests/compat/run.sh to install the tools)"
        return None


# ---------------------------------------------------------------------------------- checks


@dataclass
class Outcome:
    fmt: str
    engine: str
    check: str
    status: str  # PASS FAIL SKIP
    detail: str
    against: str


class Case:
    """One format on one engine: its databases, projects and checks."""

    def __init__(self, fmt: Format, engine: Engine, tools: Tools, workdir: Path, run_id: str):
        self.fmt, self.engine, self.tools = fmt, engine, tools
        slug = re.sub(r"[^a-z0-9]+", "_", f"{fmt.name}_{fmt.variant}").strip("_")
        self.prefix = f"dbdeploy_compat_{run_id}_{slug}_{engine.name}"
        self.workdir = workdir / f"{slug}-{engine.name}"
        self.databases: list[str] = []
        self.fixture: Fixture | None = None

    def database(self, suffix: str) -> str:
        db = f"{self.prefix}_{suffix}"
        self.engine.drop(db)
        self.engine.create(db)
        self.databases.append(db)
        return db

    def cleanup(self):
        if os.environ.get("DBDEPLOY_COMPAT_KEEP"):
            log(f"    kept databases: {', '.join(self.databases)}")
            return
        for db in self.databases:
            try:
                self.engine.drop(db)
            except CheckFailed as exc:
                log(f"    could not drop {db}: {exc}")

    def project(self, name: str, half: bool = False, fixture: Fixture | None = None) -> Path:
        project = self.workdir / name
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        self.fmt.layout(fixture or self.fixture, project, half=half)
        (project / "dbdeploy.toml").write_text(
            "[project]\n"
            f'migration_tool = "{self.fmt.dbdeploy_tool()}"\n'
            f'migrations_dir = "{self.fmt.folder}"\n\n'
            "[environments.compat]\n"
            'url_env = "COMPAT_DATABASE_URL"\n',
            encoding="utf-8",
        )
        return project

    def dbdeploy(self, project: Path, db: str, *args: str, expect: int = 0) -> dict:
        code, out = run(
            [self.tools.dbdeploy, "--json", "--color", "never", "-C", project, *args, "compat"],
            env={"COMPAT_DATABASE_URL": self.engine.url(db), "NO_COLOR": "1"},
            check=False,
            what=f"dbdeploy {args[0]}",
            stdout_only=True,  # --json: one document on stdout, progress on stderr
        )
        try:
            doc = json.loads(out)
        except json.JSONDecodeError:
            doc = {}
        if code != expect:
            message = doc.get("error", {}).get("message") or tail(out) or "no JSON document"
            raise CheckFailed(f"dbdeploy {args[0]} exited {code} (expected {expect}): {message}")
        return doc

    # a
    def check_a(self) -> str:
        project = self.project("a")
        db = self.database("b")  # also database B of check c
        self.db_b, self.project_b = db, project
        expected = self.fmt.unit_count(self.fixture)
        doc = self.dbdeploy(project, db, "migrate", "--yes")
        applied = doc["result"]["migrations_applied"]
        if applied != expected:
            raise CheckFailed(f"dbdeploy applied {applied} migrations, expected {expected}")
        status = self.tool_agrees(project, db, expected)
        return f"dbdeploy applied {applied}; {status}"

    def tool_agrees(self, project: Path, db: str, expected: int) -> str:
        try:
            said = self.fmt.tool_status(project, self.engine, db, expected)
        except Skip as why:
            said = str(why)
        before = self.fmt.all_rows(self.engine, db)
        self.fmt.tool_migrate(project, self.engine, db)
        after = self.fmt.all_rows(self.engine, db)
        if before != after:
            raise CheckFailed(
                f"the tool's migrate changed the tracking rows: before {before}, after {after}")
        return f"{said}; its migrate changed nothing ({len(after)} row(s))"

    # b
    def check_b(self) -> str:
        first = self.fmt.unit_count(self.fixture, half=True)
        total = self.fmt.unit_count(self.fixture)
        if first == 0:
            raise Skip("a single migration: there is no first half to hand over")
        db = self.database("half")
        half_project = self.project("b-half", half=True)
        if self.fmt.documented_only:
            self.fmt.tool_first_half(self.fixture, half_project, self.engine, db)
        else:
            self.fmt.tool_migrate(half_project, self.engine, db)
        tool_rows = self.fmt.all_rows(self.engine, db)
        project = self.project("b-full")

        status = self.dbdeploy(project, db, "status", expect=4)["result"]
        pending = len(status["pending"])
        problems = {k: status[k] for k in ("failed", "modified", "missing", "out_of_order")
                    if status.get(k)}
        if pending != total - first or problems or len(status["applied"]) != first:
            raise CheckFailed(
                f"dbdeploy status after the tool's first {first}: {len(status['applied'])} "
                f"applied, {pending} pending (expected {total - first}), {problems}")

        doc = self.dbdeploy(project, db, "migrate", "--yes")
        applied = doc["result"]["migrations_applied"]
        if applied != total - first:
            raise CheckFailed(f"dbdeploy applied {applied}, expected the {total - first} left")
        after = self.fmt.all_rows(self.engine, db)
        if self.fmt.name == "golang-migrate":
            kept = "the one version row moved on"
        else:
            missing = [r for r in tool_rows if r not in after]
            if missing:
                raise CheckFailed(f"dbdeploy changed or removed the tool's rows: {missing}")
            kept = f"the tool's {len(tool_rows)} row(s) untouched"
        if self.fmt.documented_only:
            want = self.fmt.expected_rows(self.fixture, self.engine, half=False)
            got = self.fmt.defined_rows(self.engine, db)
            if want != got:
                raise CheckFailed(f"rows differ from the documented format: {diff(want, got)}")
            return (f"{self.fmt.name} state for the first {first} written as the tool writes it; "
                    f"dbdeploy saw {pending} pending, applied {applied}; {kept}; rows as documented")
        agrees = self.tool_agrees(project, db, total)
        return (f"tool applied {first}; dbdeploy saw {pending} pending, applied {applied}; "
                f"{kept}; {agrees}")

    # c
    def check_c(self) -> tuple[str, str]:
        db_a = self.database("a")
        if self.fmt.documented_only:
            want = self.fmt.expected_rows(self.fixture, self.engine, half=False)
            self.fmt.reference_table(self.engine, db_a)
            source = "the documented format"
            note = self.fmt.oracle_note(self.fixture)
        else:
            self.fmt.tool_migrate(self.project("c-tool"), self.engine, db_a)
            want = self.fmt.defined_rows(self.engine, db_a)
            source = "the tool's"
            note = ""
        got = self.fmt.defined_rows(self.engine, self.db_b)
        rows = (f"{len(got)} row(s) identical to {source} in the tool's columns" if want == got
                else None)
        if rows and note:
            rows += f"; {note}"
        if rows is None:
            raise CheckFailed(f"rows differ from {source} (want → got): {diff(want, got)}")
        ddl_want = self.fmt.table_definition(self.engine, db_a)
        ddl_got = self.fmt.table_definition(self.engine, self.db_b)
        if ddl_want != ddl_got:
            raise CheckFailed(
                f"{rows}, but the table definitions differ (want → got): {diff(ddl_want, ddl_got)}")
        return rows, f"table definition identical ({len(ddl_got)} columns/indexes)"


def check_failure(case: "Case", folder: str) -> str:
    """d: the same failing fixture deployed by the tool (A) and by dbdeploy (B) leaves the same
    tracking rows, and the tool's next migrate reacts to both databases the same way."""
    fmt, engine = case.fmt, case.engine
    fixture = Fixture(FIXTURES / folder)
    project = case.project("d", fixture=fixture)
    db_a, db_b = case.database("fail_a"), case.database("fail_b")
    code, out = fmt.tool_migrate(project, engine, db_a, check=False)
    if code == 0:
        raise CheckFailed(f"the tool did not fail on {folder}: {tail(out)}")
    doc = case.dbdeploy(project, db_b, "migrate", "--yes", expect=1)
    failed = doc.get("result", {}).get("failed_migration") or "?"
    want, got = fmt.failure_rows(engine, db_a), fmt.failure_rows(engine, db_b)
    if want != got:
        raise CheckFailed(f"after the failure, rows differ (tool → dbdeploy): {diff(want, got)}")

    def again(db):
        code, out = fmt.tool_migrate(project, engine, db, check=False)
        text = out.replace(db, "<db>")
        text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( UTC)?", "<time>", text)
        text = re.sub(r"\d+(\.\d+)?(ms|µs|s)\b", "<duration>", text)
        return code, text

    code_a, text_a = again(db_a)
    code_b, text_b = again(db_b)
    if (code_a, text_a) != (code_b, text_b):
        raise CheckFailed(f"the tool's next migrate differs: on its own database (exit {code_a}) "
                          f"{tail(text_a)}; on dbdeploy's (exit {code_b}) {tail(text_b)}")
    return (f"both stopped at {failed}; {len(got)} row(s) identical; the tool's next migrate "
            f"answers both the same (exit {code_b}: {tail(text_b, 1)})")


def diff(want, got) -> str:
    missing = [w for w in want if w not in got]
    extra = [g for g in got if g not in want]
    if not missing and not extra:
        return f"same rows, different order: {want} → {got}"
    return f"only in reference {missing}; only in dbdeploy's {extra}"


def run_case(fmt: Format, engine: Engine, tools: Tools, workdir: Path, run_id: str,
             results: list[Outcome]) -> None:
    label = fmt.label

    def record(check, status, detail):
        results.append(Outcome(label, engine.name, check, status, detail, fmt.tool_label))
        log(f"  {status:4}  {label} · {engine.name} · {check}: {detail}")

    case = Case(fmt, engine, tools, workdir, run_id)
    names = ("a: dbdeploy, then tool", "b: tool half, dbdeploy rest", "c: rows identical",
             "c: table definition")
    try:
        missing = tools.available(fmt)
        if missing:
            raise Skip(missing)
        case.fixture = fmt.fixture(engine)
    except Skip as why:
        for check in names:
            record(check, "SKIP", str(why))
        return
    for note in case.fixture.notes():
        log(f"  note  {label} · {engine.name}: {note}")
    try:
        a_ok = False
        try:
            if fmt.documented_only:
                raise Skip(f"{fmt.name} cannot run here; (b) and (c) check the documented format")
            record(names[0], "PASS", case.check_a())
            a_ok = True
        except Skip as why:
            # Documented-only formats still need database B deployed by dbdeploy for (c).
            project = case.project("a")
            case.db_b = case.database("b")
            case.dbdeploy(project, case.db_b, "migrate", "--yes")
            a_ok = True
            record(names[0], "SKIP", str(why))
        except CheckFailed as exc:
            record(names[0], "FAIL", str(exc))
        except Exception as exc:  # a bug in this suite is a failure too
            record(names[0], "FAIL", f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
        for check, fn in ((names[1], case.check_b),):
            try:
                record(check, "PASS", fn())
            except Skip as why:
                record(check, "SKIP", str(why))
            except CheckFailed as exc:
                record(check, "FAIL", str(exc))
            except Exception as exc:
                record(check, "FAIL", f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
        if not a_ok:
            record(names[2], "SKIP", "needs the database dbdeploy deployed in (a)")
            record(names[3], "SKIP", "needs the database dbdeploy deployed in (a)")
        else:
            try:
                rows, ddl = case.check_c()
                record(names[2], "PASS", rows)
                record(names[3], "PASS", ddl)
            except CheckFailed as exc:
                text = str(exc)
                if "table definitions differ" in text:
                    record(names[2], "PASS", text.split(", but")[0])
                    record(names[3], "FAIL", text.split(", but ")[1])
                else:
                    record(names[2], "FAIL", text)
                    record(names[3], "SKIP", "rows differ already")
            except Exception as exc:
                record(names[2], "FAIL", f"{type(exc).__name__}: {exc}")
                record(names[3], "SKIP", "rows check crashed")
                traceback.print_exc()
        if fmt.variant == "basic" and engine.name in fmt.failures:
            check = "d: a failure, as the tool"
            try:
                record(check, "PASS", check_failure(case, fmt.failures[engine.name]))
            except CheckFailed as exc:
                record(check, "FAIL", str(exc))
            except Exception as exc:
                record(check, "FAIL", f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
    finally:
        case.cleanup()
    for note in case.fixture.notes():
        results.append(Outcome(label, engine.name, "note", "NOTE", note, fmt.tool_label))


def summary(results: list[Outcome]) -> int:
    checks = [r for r in results if r.status != "NOTE"]
    width = {
        "fmt": max(len("format"), *(len(r.fmt) for r in results)),
        "engine": max(len("engine"), *(len(r.engine) for r in results)),
        "check": max(len("check"), *(len(r.check) for r in checks)),
    }
    print()
    print(f"{'format':{width['fmt']}}  {'engine':{width['engine']}}  "
          f"{'check':{width['check']}}  result  detail")
    print("-" * (width["fmt"] + width["engine"] + width["check"] + 24))
    for r in results:
        check = r.check if r.status != "NOTE" else ""
        status = r.status if r.status != "NOTE" else "note"
        print(f"{r.fmt:{width['fmt']}}  {r.engine:{width['engine']}}  "
              f"{check:{width['check']}}  {status:6}  {r.detail}")
    print()
    tools = sorted({(r.fmt.split(" ")[0], r.against) for r in results})
    print("verified against:")
    for fmt, against in tools:
        print(f"  {fmt}: {against}")
    passed = sum(r.status == "PASS" for r in checks)
    failed = sum(r.status == "FAIL" for r in checks)
    skipped = sum(r.status == "SKIP" for r in checks)
    print()
    print(f"compat: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


def main() -> int:
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools-dir", required=True)
    parser.add_argument("--dbdeploy", required=True)
    parser.add_argument("--version", action="append", help="tool=version, for the summary")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--mariadb", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--engines", default="postgres,mariadb,sqlite")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("formats", nargs="*",
                        help="sqlx dbmate drizzle prisma flyway golang-migrate (default: all)")
    args = parser.parse_args()
    VERBOSE = args.verbose
    tools = Tools(args)
    all_formats = [Sqlx, Dbmate, Drizzle, Prisma, Flyway, GolangMigrate]
    wanted = set(args.formats) or {f.name for f in all_formats}
    unknown = wanted - {f.name for f in all_formats}
    if unknown:
        parser.error(f"unknown format(s): {', '.join(sorted(unknown))}")
    run_id = f"{os.getpid()}{int(time.time()) % 10000}"
    results: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="dbdeploy-compat-") as tmp:
        workdir = Path(tmp)
        (workdir / "sqlite").mkdir()
        engines = {
            "postgres": Postgres(args.postgres),
            "mariadb": MariaDB(args.mariadb),
            "sqlite": Sqlite(workdir / "sqlite"),
        }
        selected = [engines[e] for e in args.engines.split(",") if e]
        for cls in all_formats:
            if cls.name not in wanted:
                continue
            for variant, folders in cls.variants.items():
                fmt = cls(tools, variant)
                for engine in selected:
                    if engine.name in folders:
                        log(f"== {fmt.label} on {engine.name}")
                        run_case(fmt, engine, tools, workdir, run_id, results)
    if not args.formats:
        results.append(Outcome("sql", "all", "-", "SKIP",
                               "dbdeploy's own format (_dbdeploy_migrations): no other tool "
                               "writes it", "n/a"))
    return summary(results)


if __name__ == "__main__":
    sys.exit(main())
