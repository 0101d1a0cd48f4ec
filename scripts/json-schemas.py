#!/usr/bin/env python3
"""Drafts docs/schemas/<operation>.schema.json and docs/json.md from the --json documents the
test suite produced:

    DBDEPLOY_TEST_JSON_DUMP=/tmp/docs cargo test --test it
    scripts/json-schemas.py /tmp/docs

The envelope (SPEC section 4) is written here by hand; each operation's `result` is inferred
from every document the suite saw: the keys seen (no others allowed), their JSON types, and the
keys every successful run had (required on success). `*_at` values must be RFC 3339 in UTC
with milliseconds. Review the diff: a key the suite never produced is not documented.
"""
import json
import os
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A failed check or rehearsal is the answer of these operations (`result` says which), not an error
# of dbdeploy: their `status` is `error` without an `error` object.
ANSWER_OPS = {"health-check", "rehearse-migrations"}
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


class Shape:
    """What was seen at one place of the documents."""

    def __init__(self):
        self.types = set()
        self.props = defaultdict(Shape)
        self.objects = 0
        self.seen_in = defaultdict(int)
        self.items = None
        self.timestamp = False

    def add(self, value, key=""):
        if value is None:
            self.types.add("null")
        elif isinstance(value, bool):
            self.types.add("boolean")
        elif isinstance(value, int):
            self.types.add("integer")
        elif isinstance(value, float):
            self.types.add("number")
        elif isinstance(value, str):
            self.types.add("string")
            if key.endswith("_at"):
                self.timestamp = True
        elif isinstance(value, list):
            self.types.add("array")
            if self.items is None:
                self.items = Shape()
            for item in value:
                self.items.add(item, key)
        elif isinstance(value, dict):
            self.types.add("object")
            self.objects += 1
            for k, v in value.items():
                self.props[k].add(v, k)
                self.seen_in[k] += 1

    def schema(self, required=True):
        types = set(self.types)
        if types == {"null"}:
            # Only ever seen empty: the suite says nothing of its type.
            return {}
        if {"integer", "number"} <= types:
            types.discard("integer")
        out = {}
        if types:
            ordered = sorted(types)
            out["type"] = ordered[0] if len(ordered) == 1 else ordered
        if "object" in types:
            out["properties"] = {k: self.props[k].schema() for k in sorted(self.props)}
            out["additionalProperties"] = False
            always = [k for k in sorted(self.props) if self.seen_in[k] == self.objects]
            if required and always:
                out["required"] = always
        if "array" in types and self.items is not None and self.items.types:
            out["items"] = self.items.schema()
        if self.timestamp and "string" in types:
            out["pattern"] = TIMESTAMP
        return out


def envelope(operation, result, success_required):
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://github.com/dbdeploy/dbdeploy/docs/schemas/{operation}.schema.json",
        "title": f"dbdeploy --json: {operation}",
        "type": "object",
        "required": ["schema_version", "status", "operation", "environment", "mode", "result", "message"],
        "additionalProperties": False,
        "properties": {
            "schema_version": {"const": 1},
            "status": {"enum": ["success", "error", "cancelled"]},
            "operation": {"const": operation},
            "environment": {"type": "string"},
            "mode": {"enum": ["dev", "deploy", None]},
            "message": {"type": "string"},
            "result": result,
            "error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "class", "message", "causes", "hints"],
                "properties": {
                    "code": {"type": "string"},
                    "class": {"enum": ["pre-deployment", "mid-deployment", "post-deployment"]},
                    "message": {"type": "string"},
                    "causes": {"type": "array", "items": {"type": "string"}},
                    "hints": {"type": "array", "items": {"type": "string"}},
                },
            },
            "recovery": {
                "type": "object",
                "additionalProperties": False,
                "required": ["rollback_initiated", "suggestions"],
                "properties": {
                    "backup_id": {"type": ["string", "null"]},
                    "rollback_command": {"type": ["string", "null"]},
                    "rollback_initiated": {"type": "boolean"},
                    "rollback_status": {"enum": ["success", "failed", "not-attempted", None]},
                    "rollback_reason": {"type": ["string", "null"]},
                    "suggestions": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "allOf": [] if operation in ANSWER_OPS else [
            {
                "if": {"properties": {"status": {"const": "error"}}},
                "then": {"required": ["error", "recovery"]},
            }
        ],
    }
    if success_required:
        schema["allOf"].append(
            {
                "if": {"properties": {"status": {"const": "success"}}},
                "then": {"properties": {"result": {"required": success_required}}},
            }
        )
    return schema


def describe(schema):
    t = schema.get("type", "any")
    t = " or ".join(t) if isinstance(t, list) else t
    if "items" in schema:
        t += " of " + describe(schema["items"])
    if schema.get("pattern") == TIMESTAMP:
        t += " (RFC 3339, UTC)"
    return t


def rows(schema, prefix, out):
    for key, sub in schema.get("properties", {}).items():
        out.append(f"| `{prefix}{key}` | {describe(sub)} |")
        if "properties" in sub:
            rows(sub, f"{prefix}{key}.", out)
        elif "items" in sub and "properties" in sub["items"]:
            rows(sub["items"], f"{prefix}{key}[].", out)


def main():
    dump = sys.argv[1]
    results = defaultdict(Shape)
    success = defaultdict(list)
    for name in os.listdir(dump):
        with open(os.path.join(dump, name)) as f:
            doc = json.load(f)
        op = doc["operation"]
        results[op].add(doc["result"])
        if doc["status"] == "success" and isinstance(doc["result"], dict):
            success[op].append(set(doc["result"]))
    out_dir = os.path.join(ROOT, "docs", "schemas")
    os.makedirs(out_dir, exist_ok=True)
    md = [open(os.path.join(ROOT, "docs", "json-intro.md")).read().rstrip(), ""]
    for op in sorted(results):
        result = results[op].schema(required=False)
        required = sorted(set.intersection(*success[op])) if success[op] else []
        schema = envelope(op, result, required)
        with open(os.path.join(out_dir, f"{op}.schema.json"), "w") as f:
            json.dump(schema, f, indent=2)
            f.write("\n")
        md += [f"## `{op}`", "", f"Schema: [`schemas/{op}.schema.json`](schemas/{op}.schema.json). "
               "Keys of `result` (those marked * are in every successful document):", "",
               "| key | type |", "|---|---|"]
        body = []
        rows(result, "", body)
        for k in required:
            body = [line.replace(f"| `{k}` |", f"| `{k}` * |") for line in body]
        md += body + [""]
    with open(os.path.join(ROOT, "docs", "json.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
