#!/usr/bin/env python3
"""Every example in docs/openapi.yaml (parameters, request and response bodies) is valid against its own schema, and
every operation carries at least one: generated clients and docs show them, so a wrong one teaches a wrong API."""
import copy
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC_URI = "urn:gateway-spec"
spec = yaml.safe_load(open(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.yaml"))
registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=__import__("referencing.jsonschema").jsonschema.DRAFT202012))


def absolute(schema):
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/"):
                    node[key] = SPEC_URI + value
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return schema


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


problems, checked, bare = [], 0, []


def check(where, schema, example):
    global checked
    checked += 1
    if isinstance(schema, dict) and schema.get("type") == "string" and not isinstance(example, str):
        problems.append(f"{where}: not a string")
        return
    for error in Draft202012Validator(absolute(schema or {}), registry=registry).iter_errors(example):
        problems.append(f"{where}: {error.message} at {'/'.join(map(str, error.absolute_path)) or '(root)'}")


def media_examples(where, content):
    found = False
    for media, item in (content or {}).items():
        schema = item.get("schema", {})
        if "example" in item:
            check(f"{where} {media}", schema, item["example"])
            found = True
        for name, example in (item.get("examples") or {}).items():
            check(f"{where} {media} ({name})", schema, resolve(example)["value"])
            found = True
    return found


for path, item in spec["paths"].items():
    shared = item.get("parameters", [])
    for method, operation in item.items():
        if method == "parameters":
            continue
        where = f"{method.upper()} {path}"
        found = False
        for parameter in shared + operation.get("parameters", []):
            parameter = resolve(parameter)
            if "example" in parameter:
                check(f"{where} parameter {parameter['name']}", parameter.get("schema"), parameter["example"])
                found = True
        if "requestBody" in operation:
            found |= media_examples(f"{where} request", resolve(operation["requestBody"]).get("content"))
        for status, response in operation.get("responses", {}).items():
            found |= media_examples(f"{where} {status}", resolve(response).get("content"))
        if not found:
            bare.append(where)

for problem in problems:
    print("wrong example:", problem)
for where in bare:
    print("no example:", where)
print(f"{checked} examples checked, {len(problems)} wrong, {len(bare)} operations without one")
sys.exit(1 if problems or bare else 0)
