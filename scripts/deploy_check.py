#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine.

- docker-compose.yml parses and holds together: every service has an image or a build, referenced files exist,
  env_file .env has a .env.example to start from, volumes and networks are declared, ports are well formed.
- .env.example sets (or shows, commented out) every setting the contract names: the "Contract settings" table of
  docs/configuration.md and every variable docs/openapi.yaml mentions (which configuration.md must document too),
  less the ones the compose service sets itself. Comparing nothing is a failure.
- deploy/nginx.conf sets the X-Forwarded-* headers the gateway trusts (directives, not comments).
- The Dockerfile, read as Docker reads it (scripts/dockerfile_tree.py: instructions, not words; comments ignored,
  continuations joined): the build stage builds with --static-swift-stdlib and installs the binary; the final stage's
  COPY lines, played through every stage, put the binary at the ENTRYPOINT and every file of migrations/ and
  docs/openapi.yaml in ../share/gateway/ beside it, where the binary looks for them; the final stage installs
  libsqlite3-0, runs as an unprivileged user, declares its data directory a volume and has a health check on /readyz.

    python3 scripts/deploy_check.py [--dockerfile PATH] [--env-example PATH]
"""
import argparse
import os
import posixpath
import re
import shlex
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile_tree  # noqa: E402
from checklib import Checks  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTRACT_VARIABLE = r"(?:GATEWAY|WRAPP|MAGNIFINANCE|LOG|OTEL)_[A-Z0-9_]+"
expect = Checks()


def read(relative):
    return open(os.path.join(ROOT, relative)).read()


def check_compose():
    compose = yaml.safe_load(read("docker-compose.yml"))
    services = compose.get("services") or {}
    expect(bool(services), f"docker-compose.yml has services ({len(services)})")
    declared_volumes = set((compose.get("volumes") or {}).keys())
    declared_networks = set((compose.get("networks") or {}).keys())
    problems = []
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if not os.path.exists(os.path.join(ROOT, source)):
                    problems.append(f"{name}: {source} does not exist")
            elif source not in declared_volumes:
                problems.append(f"{name}: volume {source} is not declared")
        networks = service.get("networks", [])
        for network in networks if isinstance(networks, list) else networks.keys():
            if network not in declared_networks:
                problems.append(f"{name}: network {network} is not declared")
        for dependency in (service.get("depends_on") or []):
            if dependency not in services:
                problems.append(f"{name}: depends on unknown service {dependency}")
        if service.get("env_file") == ".env" and not os.path.exists(os.path.join(ROOT, ".env.example")):
            problems.append(f"{name}: uses .env but there is no .env.example to start from")
        for port in service.get("ports", []):
            if not re.fullmatch(r"(\d{1,3}(\.\d{1,3}){3}:)?\d+:\d+", str(port)):
                problems.append(f"{name}: port {port} is not [IP:]HOST:CONTAINER")
    expect(not problems, "docker-compose.yml holds together (images, files, volumes, networks, dependencies, ports)",
           "; ".join(problems))
    return services


def contract_variables():
    """The settings of docs/configuration.md's "Contract settings" table (its first column), and the variables
    docs/openapi.yaml mentions."""
    configuration = read("docs/configuration.md")
    section = re.search(r"^## Contract settings\n(.*?)(?=^## )", configuration, flags=re.M | re.S)
    table = []
    for line in (section.group(1) if section else "").splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            table += re.findall(rf"`({CONTRACT_VARIABLE})`", cells[1])
    spec = set(re.findall(rf"\b({CONTRACT_VARIABLE})\b", read("docs/openapi.yaml")))
    documented = set(re.findall(rf"`({CONTRACT_VARIABLE})`", configuration))
    return sorted(set(table)), sorted(spec), documented


def check_env_example(services, env_example):
    table, spec, documented = contract_variables()
    expect(len(table) >= 10, f"docs/configuration.md's contract table names the settings: {', '.join(table)}")
    expect(bool(spec) and set(spec) <= documented,
           f"every variable docs/openapi.yaml mentions is documented in docs/configuration.md ({', '.join(spec)})",
           f"not documented: {sorted(set(spec) - documented)}" if not set(spec) <= documented else "")
    # What every service reading .env sets itself (bind address, port, data directory) need not be in .env.example.
    readers = [service for service in services.values() if service.get("env_file") == ".env"]
    set_by_compose = None
    for service in readers:
        environment = service.get("environment") or {}
        names = set(environment if isinstance(environment, dict) else (e.split("=")[0] for e in environment))
        set_by_compose = names if set_by_compose is None else set_by_compose & names
    set_by_compose = set_by_compose or set()
    example = open(env_example).read()
    offered = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.M))
    required = sorted(table)
    compared = [v for v in required if v not in set_by_compose]
    missing = [v for v in compared if v not in offered]
    expect(len(compared) >= 10 and not missing,
           f".env.example sets every contract setting a deployment provides ({len(compared)} compared; "
           f"{', '.join(sorted(set(required) & set_by_compose))} set by docker-compose.yml)", f"missing: {missing}" if missing else "")


def check_nginx():
    directives = re.sub(r"#[^\n]*", "", read("deploy/nginx.conf"))
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        expect(re.search(rf"^\s*proxy_set_header\s+{header}\s+\S+;", directives, flags=re.M | re.I),
               f"deploy/nginx.conf sets {header} (proxy_set_header)")


def run_words(stage):
    return [shlex.split(command) for i in stage.all("RUN") for command in re.split(r"&&|\|\||;", i.arguments)
            if command.strip()]


def check_dockerfile(path):
    try:
        stages = dockerfile_tree.parse(path)
    except dockerfile_tree.DockerfileError as error:
        expect(False, "the Dockerfile parses", str(error))
        return
    build, final = stages[0], stages[-1]
    expect(len(stages) >= 2, f"the Dockerfile has a build stage and a runtime stage ({len(stages)} stages)")
    builds = [w for w in run_words(build) if w[:2] == ["swift", "build"]]
    expect(any("--static-swift-stdlib" in w and "release" in w for w in builds),
           "the build stage runs `swift build -c release … --static-swift-stdlib`", f"found: {builds}")
    binary = dockerfile_tree.installed_by_run(build, "gateway")
    expect(binary is not None, f"the build stage's RUN installs the binary ({binary})")
    try:
        tree = dockerfile_tree.image_tree(path, ROOT, {build.name or build.index: {binary: "<the built binary>"}}
                                          if binary else {})
    except dockerfile_tree.DockerfileError as error:
        expect(False, "the COPY lines can be followed through the stages", str(error))
        return
    entry = dockerfile_tree.entrypoint(final) or []
    expect(bool(entry) and tree.get(entry[0]) == "<the built binary>",
           f"the final stage's ENTRYPOINT {entry} is the built binary, copied in by its COPY lines")
    share = posixpath.normpath(posixpath.join(posixpath.dirname(entry[0] if entry else "/"), "../share/gateway"))
    migrations = {}
    for directory, _, files in os.walk(os.path.join(ROOT, "migrations")):
        for name in files:
            host = os.path.join(directory, name)
            migrations[posixpath.join(share, "migrations", os.path.relpath(host, os.path.join(ROOT, "migrations")))] = host
    wrong = sorted(p for p, host in migrations.items() if tree.get(p) != host)
    expect(migrations and not wrong, f"COPY puts every file of migrations/ in {share}/migrations "
           f"({len(migrations)} files)", f"missing or not from migrations/: {wrong[:10]}" if wrong else "")
    strays = sorted(p for p in tree if p.startswith(share + "/migrations/") and p not in migrations)
    expect(not strays, f"{share}/migrations holds nothing else", str(strays) if strays else "")
    spec = posixpath.join(share, "openapi.yaml")
    expect(tree.get(spec) == os.path.join(ROOT, "docs/openapi.yaml"), f"COPY puts docs/openapi.yaml at {spec}",
           f"there: {tree.get(spec)}")
    print("the final stage's files: " + ", ".join(sorted(p for p in tree if "/migrations/" not in p))
          + f" and {len([p for p in tree if '/migrations/' in p])} migrations", flush=True)

    installs = [w for w in run_words(final) if w[:2] == ["apt-get", "install"]]
    expect(any("libsqlite3-0" in w for w in installs), "the final stage installs libsqlite3-0 (apt-get install)",
           "" if any("libsqlite3-0" in w for w in installs) else str(installs))
    users = final.all("USER")
    user = users[-1].arguments.split(":")[0] if users else "root"
    expect(user not in ("0", "root"), f"the final stage runs as an unprivileged user ({user})")
    data = dockerfile_tree.environment(final).get("GATEWAY_DATA_DIR")
    volumes = [v for i in final.all("VOLUME") for v in (dockerfile_tree.exec_form(i.arguments) or i.arguments.split())]
    expect(data and data in volumes, f"the data directory GATEWAY_DATA_DIR={data} is a VOLUME", f"volumes: {volumes}")
    health = final.all("HEALTHCHECK")
    expect(health and "/readyz" in health[-1].arguments and not health[-1].arguments.upper().startswith("NONE"),
           "the final stage has a HEALTHCHECK on /readyz", f"found: {health}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", default=os.path.join(ROOT, "Dockerfile"),
                        help="the Dockerfile to check (its COPY sources still come from this repository)")
    parser.add_argument("--env-example", default=os.path.join(ROOT, ".env.example"), help="the .env.example to check")
    args = parser.parse_args()
    services = check_compose()
    check_env_example(services, args.env_example)
    check_nginx()
    check_dockerfile(os.path.abspath(args.dockerfile))
    return expect.report("deploy check")


if __name__ == "__main__":
    sys.exit(main())
