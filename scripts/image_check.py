#!/usr/bin/env python3
"""The Docker image, proven as far as a machine without a Docker engine allows (this one runs Debian bookworm, as
both of the Dockerfile's stages do):

1. The binary is built the way the Dockerfile's build stage builds it (the command is read from the Dockerfile and
   must match the one given here).
2. Every shared library it needs (`ldd`) belongs to a package the runtime stage has: debian:bookworm-slim's own
   (bookworm's `Priority: required` packages and apt) or one the runtime stage installs, with their dependencies,
   as bookworm's package index gives them. No Swift runtime library may be among them (`--static-swift-stdlib`).
3. It starts in a root holding only what the runtime stage copies (the binary, migrations/, openapi.yaml), the data
   directory and the shared libraries from step 2, as the runtime stage's unprivileged user (uid 10001), with the
   stage's environment: `serve` without configuration refuses to start and says why (exit 78); `serve --sandbox`
   answers /readyz, writes only its data directory, and stops on SIGTERM.

    python3 scripts/image_check.py --binary .build/release/gateway
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
passed, failed = [], []


def check(what, ok, detail=""):
    (passed if ok else failed).append((what, detail))
    print(f"{'PASS' if ok else 'FAIL'} {what}" + (f" ({detail})" if detail and not ok else ""), flush=True)


def stages():
    text = open(os.path.join(ROOT, "Dockerfile")).read().replace("\\\n", " ")
    parts = re.split(r"^FROM\s+", text, flags=re.M)[1:]
    return [("FROM " + p) for p in parts]


def run_lines(stage):
    return [line.strip()[4:] for line in stage.splitlines() if line.strip().startswith("RUN ")]


def runtime_packages(runtime):
    for command in run_lines(runtime):
        match = re.search(r"apt-get install -y (?:--no-install-recommends )?([^&]+)", command)
        if match:
            return match.group(1).split()
    return []


def closure(packages):
    """What apt would install for `packages` on an empty system (no recommends): the simulation's `Inst` lines."""
    result = subprocess.run(
        ["apt-get", "-s", "-o", "Dir::State::status=/dev/null", "install", "--no-install-recommends", *packages],
        capture_output=True, text=True)
    return {line.split()[1] for line in result.stdout.splitlines() if line.startswith("Inst ")}


def required_packages():
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True).stdout
    if not dump.strip():
        sys.exit("image check: apt has no package lists (run apt-get update)")
    required = set()
    for stanza in dump.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, flags=re.M))
        if fields.get("Priority") == "required" or fields.get("Essential") == "yes":
            required.add(fields.get("Package"))
    return required - {None}


def owner(path):
    candidates = {path, os.path.realpath(path)}
    for p in list(candidates):
        if p.startswith("/usr/"):
            candidates.add(p[4:])
        else:
            candidates.add("/usr" + p)
    for p in candidates:
        result = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].strip()
    return None


def libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    libs = {}
    for line in out.stdout.splitlines():
        if "not found" in line:
            libs[line.split()[0]] = None
            continue
        match = re.match(r"\s*(\S+)\s+=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if match:
            libs[match.group(1)] = match.group(match.lastindex)
    return libs


def readyz(port):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/readyz")
        return connection.getresponse().status
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--build-command", default="swift build -c release --product gateway --static-swift-stdlib")
    args = parser.parse_args()
    build, runtime = stages()[0], stages()[-1]

    check("the Dockerfile's build stage builds the binary as this check's was built",
          any(args.build_command in command for command in run_lines(build)), args.build_command)
    check("the runtime stage is debian:bookworm-slim, as this machine", runtime.startswith("FROM debian:bookworm-slim")
          and "bookworm" in open("/etc/os-release").read())

    # 2. Shared libraries.
    installs = runtime_packages(runtime)
    have = closure(sorted(required_packages() | {"apt"} | set(installs)))
    check("the runtime stage installs packages, and apt would install them (and debian:bookworm-slim's own) here",
          bool(installs) and len(have) > 50 and set(installs) <= have, f"{len(have)} packages; installs {installs}")
    libs = libraries(args.binary)
    check("ldd finds every library", libs and all(libs.values()), str({k: v for k, v in libs.items() if not v}))
    swift = [name for name in libs if re.search(r"swift|Foundation|dispatch|BlocksRuntime", name)]
    check("no Swift runtime library is needed (--static-swift-stdlib)", not swift, str(swift))
    owners = {}
    for name, path in libs.items():
        if path and "linux-vdso" not in name:
            owners[name] = owner(path)
    outside = {name: package for name, package in owners.items() if package not in have}
    check("every library belongs to a package of the runtime stage", not outside, str(outside))
    print("libraries: " + ", ".join(f"{name} ({package})" for name, package in sorted(owners.items())), flush=True)

    # 3. Start in a root of only what the runtime stage copies, as uid 10001.
    copies = [line for line in runtime.splitlines() if line.startswith("COPY")]
    check("the runtime stage copies only the build stage's /staging/", copies == ["COPY --from=build /staging/ /"], str(copies))
    user = re.search(r"^USER (\d+):(\d+)", runtime, flags=re.M)
    check("the runtime stage runs as an unprivileged user", bool(user) and user.group(1) != "0")
    uid, gid = (int(user.group(1)), int(user.group(2))) if user else (10001, 10001)
    env = dict(re.findall(r"(\w+)=(\S+)", re.search(r"^ENV (.*?)(?=^\S)", runtime, flags=re.M | re.S).group(1)))
    root = tempfile.mkdtemp(prefix="gw-image-")
    os.chmod(root, 0o755)  # as an image's /: anyone may enter
    staging = os.path.join(root, "usr/local")
    os.makedirs(os.path.join(staging, "bin"))
    os.makedirs(os.path.join(staging, "share/gateway"))
    shutil.copy(args.binary, os.path.join(staging, "bin/gateway"))
    shutil.copytree(os.path.join(ROOT, "migrations"), os.path.join(staging, "share/gateway/migrations"))
    shutil.copy(os.path.join(ROOT, "docs/openapi.yaml"), os.path.join(staging, "share/gateway/openapi.yaml"))
    for path in libs.values():
        if path:
            target = os.path.join(root, path.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(path, target)
    if os.path.isdir("/usr/share/zoneinfo"):
        shutil.copytree("/usr/share/zoneinfo", os.path.join(root, "usr/share/zoneinfo"), symlinks=True)
    os.makedirs(os.path.join(root, "tmp"))
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.makedirs(os.path.join(root, "proc"))
    os.makedirs(os.path.join(root, "dev"))
    for device, numbers in (("null", (1, 3)), ("urandom", (1, 9))):
        os.mknod(os.path.join(root, "dev", device), 0o666 | 0o020000, os.makedev(*numbers))
    data = os.path.join(root, env.get("GATEWAY_DATA_DIR", "/var/lib/gateway").lstrip("/"))
    os.makedirs(data)
    os.chown(data, uid, gid)
    before = set()
    for directory, _, files in os.walk(root):
        before.update(os.path.join(directory, f) for f in files)
    # A container has /proc: Swift reads its arguments from /proc/self/cmdline.
    mounted = subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], capture_output=True, text=True)
    check("/proc is mounted in the root, as in a container", mounted.returncode == 0, mounted.stderr)
    try:
        run_in(root, uid, gid, env, data, before)
    finally:
        if subprocess.run(["umount", os.path.join(root, "proc")]).returncode != 0:
            subprocess.run(["umount", "-l", os.path.join(root, "proc")])

    print(f"image check: {len(passed)} passed, {len(failed)} failed")
    if not failed:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed else 0)


def run_in(root, uid, gid, env, data, before):
    """The runtime stage's two ways to start, as uid:gid in `root`."""

    port = 18000 + os.getpid() % 1000
    environment = {"PATH": "/usr/local/bin", **env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)}
    jail = [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={uid}:{gid}", root]
    refused = subprocess.run(jail + ["/usr/local/bin/gateway", "serve"], env=environment, capture_output=True, text=True,
                             timeout=60)
    check("`serve` without configuration refuses to start, saying what is missing (exit 78)",
          refused.returncode == 78 and "GATEWAY_" in refused.stderr, f"exit {refused.returncode}: {refused.stderr[-300:]}")

    log = open(os.path.join(tempfile.gettempdir(), "gw-image.log"), "wb")
    proc = subprocess.Popen(jail + ["/usr/local/bin/gateway", "serve", "--sandbox"], env=environment, stdout=log,
                            stderr=subprocess.STDOUT)
    status, deadline = None, time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        status = readyz(port)
        if status == 200:
            break
        time.sleep(0.3)
    check(f"`serve --sandbox` as uid {uid} in a root of only the copied files answers /readyz", status == 200,
          f"last status {status}, exit {proc.poll()}; log {log.name}")
    proc.send_signal(signal.SIGTERM)
    try:
        stopped = proc.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        stopped = False
    check("it stops on SIGTERM", stopped)
    written = set()
    for directory, names, files in os.walk(root):
        if directory == root:
            names[:] = [n for n in names if n != "proc"]
        written.update(os.path.join(directory, f) for f in files)
    strays = sorted(p for p in written - before if not p.startswith(data + os.sep))
    check("it writes only its data directory", not strays and any(p.startswith(data) for p in written - before), str(strays))


if __name__ == "__main__":
    main()
