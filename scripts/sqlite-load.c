/* Runs the SQL on stdin against the SQLite database file argv[1], in the benchmark only.
 *
 * The benchmark's 20,000 and 50,000 table states are loaded with this instead of the system
 * `sqlite3` shell: a SQLite built with the default SQLITE_MALLOC_SOFT_LIMIT keeps its schema
 * hash tables at 64 buckets, so creating n tables costs O(n^2) (the shell needs ~3 minutes for
 * 10,000 tables and over an hour for 50,000 here). scripts/bench.sh compiles this with the
 * amalgamation dbdeploy itself is built from (libsqlite3-sys, bundled) and the same flag as
 * .cargo/config.toml, so the database is written by the SQLite dbdeploy reads it with.
 */
#include <stdio.h>
#include <stdlib.h>
#include "sqlite3.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: sqlite-load DB < script.sql\n");
        return 2;
    }
    size_t cap = 1 << 20, len = 0;
    char *sql = malloc(cap);
    size_t n;
    while (sql && (n = fread(sql + len, 1, cap - len - 1, stdin)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            sql = realloc(sql, cap);
        }
    }
    if (!sql) {
        fprintf(stderr, "sqlite-load: out of memory\n");
        return 1;
    }
    sql[len] = 0;
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite-load: %s: %s\n", argv[1], sqlite3_errmsg(db));
        return 1;
    }
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite-load: %s\n", err ? err : "error");
        return 1;
    }
    return sqlite3_close(db) == SQLITE_OK ? 0 : 1;
}
