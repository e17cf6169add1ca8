#!/usr/bin/env python3
"""docs/openapi.yaml says what the provider modules say: each module's OpenAPI fragments (`gateway providers`) are in
the spec as they are (descriptions aside), its credentials schema is among `Credentials`' choices and in its
discriminator, its id is in the `provider` enum, and every sandbox helper it mounts is a documented path and method.
A module added or changed without its spec fails here."""
import argparse
import json
import os
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checklib import Checks  # noqa: E402


def without_descriptions(node):
    if isinstance(node, dict):
        # A `description` annotation (text), not a property that happens to be named so.
        return {key: without_descriptions(value) for key, value in node.items() if not (key == "description" and isinstance(value, str))}
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def numbers_as_floats(node):
    """JSON from Swift writes 64 as 64; YAML reads 64 as an int: compare numbers as numbers."""
    if isinstance(node, dict):
        return {key: numbers_as_floats(value) for key, value in node.items()}
    if isinstance(node, list):
        return [numbers_as_floats(item) for item in node]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    return node


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--spec", default="docs/openapi.yaml")
    args = parser.parse_args()
    checks = Checks()
    catalog = json.loads(subprocess.run([args.binary, "providers"], check=True, capture_output=True, text=True).stdout)
    spec = yaml.safe_load(open(args.spec))
    schemas = spec["components"]["schemas"]
    credentials = schemas.get("Credentials", {})
    choices = {choice.get("$ref") for choice in credentials.get("oneOf", [])}
    mapping = credentials.get("discriminator", {}).get("mapping", {})
    provider_enums = [node.get("enum", []) for node in schemas.values() if isinstance(node, dict) and "wrapp" in node.get("enum", [])]
    checks(len(catalog["providers"]) >= 2, "the build lists its provider modules", f"{[p['id'] for p in catalog['providers']]}")
    for provider in catalog["providers"]:
        pid = provider["id"]
        for name, fragment in sorted(provider["schemas"].items()):
            documented = schemas.get(name)
            same = documented is not None and numbers_as_floats(without_descriptions(documented)) == numbers_as_floats(without_descriptions(fragment))
            checks(same, f"{pid}: components.schemas.{name} is the module's fragment",
                   "" if same else f"spec: {json.dumps(without_descriptions(documented))[:300]} module: {json.dumps(fragment)[:300]}")
        ref = f"#/components/schemas/{provider['credentials_schema']}"
        checks(ref in choices and mapping.get(pid) == ref, f"{pid}: Credentials offers {provider['credentials_schema']} and maps {pid} to it")
        listed = bool(provider_enums) and all(pid in values for values in provider_enums)
        checks(listed, f"{pid}: every provider enum lists it", "" if listed else f"{provider_enums}")
        for helper in provider["sandbox_helpers"]:
            path = f"/sandbox/test-helpers/{pid}/{helper['path']}"
            documented = spec["paths"].get(path, {})
            checks(helper["method"].lower() in documented, f"{pid}: the helper {helper['method']} {path} is documented")
    return checks.report("providers_spec_check")


if __name__ == "__main__":
    sys.exit(main())
