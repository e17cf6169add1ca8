#!/usr/bin/env python3
"""Checks the deployment files without a Docker engine: docker-compose.yml parses and holds together (every
service has an image or build, referenced files exist, env_file exists as .env.example, volumes and networks are
declared, the proxy forwards the headers the gateway trusts), and the Dockerfile ships what the binary looks for."""
import os
import re
import sys

import yaml

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []
compose = yaml.safe_load(open(os.path.join(root, "docker-compose.yml")))
services = compose.get("services") or {}
if not services:
    problems.append("no services")
declared_volumes = set((compose.get("volumes") or {}).keys())
declared_networks = set((compose.get("networks") or {}).keys())
for name, service in services.items():
    if "image" not in service and "build" not in service:
        problems.append(f"{name}: neither image nor build")
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            if not os.path.exists(os.path.join(root, source)):
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
    if service.get("env_file") == ".env" and not os.path.exists(os.path.join(root, ".env.example")):
        problems.append(f"{name}: uses .env but there is no .env.example to start from")
    for port in service.get("ports", []):
        if not re.fullmatch(r"(\d{1,3}(\.\d{1,3}){3}:)?\d+:\d+", str(port)):
            problems.append(f"{name}: port {port} is not [IP:]HOST:CONTAINER")

example = open(os.path.join(root, ".env.example")).read()
contract = open(os.path.join(root, "..", "shared", "design", "contract.md")).read() if os.path.exists(os.path.join(root, "..", "shared", "design", "contract.md")) else ""
for variable in sorted(set(re.findall(r"`((?:GATEWAY|WRAPP|MAGNIFINANCE)_[A-Z_]+)`", contract))):
    if variable not in example and variable not in ("GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_DATA_DIR"):
        problems.append(f".env.example does not mention {variable}")

nginx = open(os.path.join(root, "deploy", "nginx.conf")).read()
for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
    if header not in nginx:
        problems.append(f"deploy/nginx.conf does not set {header}")

dockerfile = open(os.path.join(root, "Dockerfile")).read()
for needed in ("migrations", "openapi.yaml", "HEALTHCHECK", "USER 10001", "VOLUME", "--static-swift-stdlib", "libsqlite3-0"):
    if needed not in dockerfile:
        problems.append(f"Dockerfile lacks {needed}")

if problems:
    print("\n".join("- " + p for p in problems))
    sys.exit(1)
print(f"docker-compose.yml: {len(services)} services hold together; Dockerfile ships migrations, spec and a healthcheck")
