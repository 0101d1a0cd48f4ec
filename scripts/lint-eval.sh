#!/usr/bin/env bash
# Precision and recall of dbdeploy's lint and of squawk on the labelled set in
# migrations-fixtures/lint/<engine>/<risky|safe>/*.sql.
#
#   scripts/lint-eval.sh [--cases]
#
# dbdeploy: the lint module with the live-database facts of migrations-fixtures/lint/facts.toml
# (run through `cargo test --lib lint::eval::labelled_set_table -- --ignored`); a case is
# flagged when a finding reaches medium. squawk (`pip install squawk-cli`, PostgreSQL only, no
# table sizes): a case is flagged when squawk reports anything, once with its default rules
# and once without its style rules (prefer-*, ban-char-field, require-timeout-settings and its
# two halves, transaction-nesting, identifier-too-long). --cases also prints the per-case table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CASES=0
[ "${1:-}" = "--cases" ] && CASES=1
command -v squawk >/dev/null || {
    echo "lint-eval.sh: squawk not found (pip install squawk-cli)" >&2
    exit 2
}
STYLE=prefer-robust-stmts,prefer-bigint-over-int,prefer-bigint-over-smallint,prefer-identity,prefer-text-field,prefer-timestamptz,ban-char-field,require-timeout-settings,require-lock-timeout,require-statement-timeout,transaction-nesting,identifier-too-long

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT"
cargo test --quiet --lib lint::eval::labelled_set_table -- --ignored --nocapture 2>/dev/null |
    grep '^EVAL' >"$TMP/dbdeploy.tsv"

# squawk prints a JSON array of violations; exit 1 only means "found some".
count() { squawk --reporter json "$@" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' || true; }
while IFS=$'\t' read -r _ name label flagged codes; do
    sq_all=- sq_risk=- sq_rules=
    if [[ $name == postgresql/* ]]; then
        file="migrations-fixtures/lint/$name"
        n_all=$(count "$file")
        n_risk=$(count --exclude="$STYLE" "$file")
        sq_all=$((n_all > 0 ? 1 : 0))
        sq_risk=$((n_risk > 0 ? 1 : 0))
        sq_rules=$(squawk --reporter json --exclude="$STYLE" "$file" 2>/dev/null |
            python3 -c 'import json,sys; print(" ".join(sorted({v["rule_name"] for v in json.load(sys.stdin)})))' || true)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$label" "$flagged" "$sq_all" "$sq_risk" "$codes" "$sq_rules"
done <"$TMP/dbdeploy.tsv" >"$TMP/all.tsv"

python3 - "$TMP/all.tsv" "$CASES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def score(rows, col):
    tp = sum(1 for r in rows if r[1] == "risky" and r[col] == "1")
    fp = sum(1 for r in rows if r[1] == "safe" and r[col] == "1")
    fn = sum(1 for r in rows if r[1] == "risky" and r[col] == "0")
    risky = sum(1 for r in rows if r[1] == "risky")
    safe = len(rows) - risky
    p = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
    r = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
    return f"{risky} risky, {safe} safe | {tp} | {fp} | {fn} | {p} | {r}"
pg = [r for r in rows if r[0].startswith("postgresql/")]
print("| tool | cases | risky found | safe flagged | risky missed | precision | recall |")
print("|---|---|---|---|---|---|---|")
print(f"| dbdeploy lint, PostgreSQL | {score(pg, 2)} |")
print(f"| squawk 2.x default rules, PostgreSQL | {score(pg, 3)} |")
print(f"| squawk 2.x without style rules, PostgreSQL | {score(pg, 4)} |")
for engine in ("mysql", "sqlite"):
    sub = [r for r in rows if r[0].startswith(engine + "/")]
    print(f"| dbdeploy lint, {engine} (squawk: PostgreSQL only) | {score(sub, 2)} |")
print(f"| dbdeploy lint, all engines | {score(rows, 2)} |")
if sys.argv[2] == "1":
    print()
    print("| case | label | dbdeploy | squawk | squawk w/o style | dbdeploy findings | squawk rules (w/o style) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
PY
