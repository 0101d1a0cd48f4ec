# syntax=docker/dockerfile:1
#
# dbdeploy with the database client tools its backups and restores run: pg_dump, pg_restore and
# psql for PostgreSQL, mariadb-dump and mariadb for MySQL/MariaDB (SQLite needs none).
#
#   docker build -t dbdeploy .
#   docker run --rm -v "$PWD:/work" -e PROD_DATABASE_URL dbdeploy migrate production --yes
#
# pg_dump refuses to dump a server of a newer major version than its own, and dbdeploy's
# pre-flight check refuses the deploy before anything changes when the tools are too old. Debian
# 13 ships PostgreSQL 17's client; for a PostgreSQL 18 server build with the PostgreSQL project's
# own apt repository (PGDG), which has the newest client for every Debian release:
#
#   docker build --build-arg PG_MAJOR=18 -t dbdeploy .
#
# PGDG is opt-in because it is a second package source, outside Debian's security support, whose
# signing key comes from Debian's postgresql-common package. A newer pg_dump dumps older servers
# (back to 9.2), so the newest client is always a safe choice.

ARG DEBIAN_RELEASE=trixie

FROM rust:1-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is copied out of
# the cache mount because a mount's contents are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/dbdeploy /usr/local/bin/dbdeploy

FROM debian:${DEBIAN_RELEASE}-slim
# Empty: the distribution's postgresql-client (17 on trixie, 15 on bookworm).
# A major version (18): postgresql-client-18 from apt.postgresql.org.
ARG PG_MAJOR=
# Not pinned (DL3008): the newest client and security fixes of the release are the point.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates mariadb-client; \
    if [ -n "$PG_MAJOR" ]; then \
        apt-get install -y --no-install-recommends postgresql-common; \
        /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
        apt-get install -y --no-install-recommends "postgresql-client-$PG_MAJOR"; \
    else \
        apt-get install -y --no-install-recommends postgresql-client; \
    fi; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version; mariadb-dump --version

COPY --from=builder /usr/local/bin/dbdeploy /usr/local/bin/dbdeploy

# A fixed numeric id, so that `runAsNonRoot` can check it and a mounted project can be made
# writable for it (`chown 10001` or `--user "$(id -u)"`); .dbdeploy/ (backups, audit log) is
# written next to dbdeploy.toml.
RUN groupadd --system --gid 10001 dbdeploy \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/dbdeploy --create-home dbdeploy
USER 10001:10001
WORKDIR /work

ENTRYPOINT ["dbdeploy"]
CMD ["--help"]
