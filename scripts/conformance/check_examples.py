"""Every example in the OpenAPI document is valid against its schema.

usage: python check_examples.py openapi.json
Walks component schemas (and their properties), request and response bodies
and parameters; prints each invalid example and exits 1 when there is one.
Uses jsonschema_rs, which the pinned schemathesis installs.
"""
import json
import sys

import jsonschema_rs

doc = json.load(open(sys.argv[1]))
root = {"components": doc.get("components", {})}
bad = []
checked = 0


def check(where, schema, example):
    global checked
    checked += 1
    validator = jsonschema_rs.Draft202012Validator({**root, **schema} if "$ref" not in schema else {**root, "$ref": schema["$ref"]})
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(example)]
    if errors:
        bad.append(f"{where}: {'; '.join(errors[:3])}")


def walk_schema(where, schema):
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        check(where, {k: v for k, v in schema.items() if k not in ("example", "examples")}, schema["example"])
    for i, ex in enumerate(schema.get("examples") or []):
        check(f"{where}.examples[{i}]", {k: v for k, v in schema.items() if k not in ("example", "examples")}, ex)
    for name, prop in (schema.get("properties") or {}).items():
        walk_schema(f"{where}.{name}", prop)
    for key in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            walk_schema(f"{where}.{key}[{i}]", sub)
    if isinstance(schema.get("items"), dict):
        walk_schema(f"{where}[]", schema["items"])


for name, schema in doc.get("components", {}).get("schemas", {}).items():
    walk_schema(f"#/components/schemas/{name}", schema)
for path, item in doc.get("paths", {}).items():
    for method, op in item.items():
        label = f"{method.upper()} {path}"
        for p in op.get("parameters", []):
            if "example" in p:
                check(f"{label} parameter {p['name']}", p.get("schema", {}), p["example"])
            walk_schema(f"{label} parameter {p['name']}", p.get("schema", {}))
        bodies = [("request", op.get("requestBody", {}))] + [
            (f"response {s}", r) for s, r in op.get("responses", {}).items()
        ]
        for kind, body in bodies:
            for ct, content in (body.get("content") or {}).items():
                if "example" in content:
                    check(f"{label} {kind} {ct}", content.get("schema", {}), content["example"])
for line in bad:
    print("invalid example:", line)
print(f"examples: {checked} checked, {len(bad)} invalid")
sys.exit(1 if bad else 0)
