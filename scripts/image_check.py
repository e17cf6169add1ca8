#!/usr/bin/env python3
"""The Docker image, proven as far as a machine without a Docker engine allows (this one runs Debian bookworm, as
both of the Dockerfile's stages do):

1. The binary is built the way the Dockerfile's build stage builds it (the command is read from the Dockerfile and
   must match the one given here).
2. Every shared library it needs (`ldd`) belongs to a package the runtime stage has: debian:bookworm-slim's own
   (bookworm's `Priority: required` packages and apt) or one the runtime stage installs, with their dependencies,
   as bookworm's package index gives them. No Swift runtime library may be among them (`--static-swift-stdlib`).
3. It starts in a root holding only the files the Dockerfile's COPY lines put in the runtime stage, the data
   directory and the shared libraries from step 2, as the runtime stage's unprivileged user (uid 10001), with the
   stage's environment: its ENTRYPOINT and CMD (`serve`) without configuration refuse to start and say why (exit 78);
   `serve --sandbox` answers /readyz, writes only its data directory, and stops on SIGTERM. The tree is not laid out
   here by hand: scripts/dockerfile_tree.py plays the COPY lines through the stages (`COPY --from=build` takes what
   the build stage's own COPY lines brought from this repository, and the binary given here where the build stage's
   RUN installs its binary), so an image that would lack its migrations or its spec fails here as it would in Docker.

    python3 scripts/image_check.py --binary .build/release/gateway [--dockerfile PATH]
    python3 scripts/image_check.py --binary .build/debug/gateway --start-only   # step 3 only, any build
    python3 scripts/image_check.py --binary .build/debug/gateway --tree-only    # list the tree, start nothing
"""
import argparse
import filecmp
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile_tree  # noqa: E402 - the Dockerfile's stages and what their COPY lines make
from checklib import Checks, Fatal, Process, free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKS = Checks()


def check(what, ok, detail=""):
    CHECKS.check(what, ok, detail if not ok else "")


def run_words(stage):
    """Every command of the stage's RUN instructions, as words."""
    found = []
    for instruction in stage.all("RUN"):
        for command in re.split(r"&&|\|\||;", instruction.arguments):
            try:
                words = shlex.split(command)
            except ValueError:
                continue
            if words:
                found.append(words)
    return found


def runtime_packages(runtime):
    for words in run_words(runtime):
        if words[:2] == ["apt-get", "install"]:
            return [w for w in words[2:] if not w.startswith("-")]
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


def build_tree(dockerfile, binary):
    """The final stage's files as the Dockerfile's COPY lines make them, the binary standing for what the build
    stage's RUN installs: ({path in the image: file here}, the ENTRYPOINT, the final stage)."""
    stages = dockerfile_tree.parse(dockerfile)
    build, runtime = stages[0], stages[-1]
    installed = dockerfile_tree.installed_by_run(build, "gateway")
    check("the build stage's RUN installs the binary", installed is not None)
    tree = dockerfile_tree.image_tree(dockerfile, ROOT, {build.name or build.index: {installed: binary}} if installed else {})
    entry = dockerfile_tree.entrypoint(runtime) or []
    check("the runtime stage's ENTRYPOINT is the binary its COPY lines bring", bool(entry) and tree.get(entry[0]) == binary,
          f"ENTRYPOINT {entry}; files: {sorted(tree)}")
    print("the runtime stage's COPY lines make: " + ", ".join(
        f"{path} ({os.path.relpath(host, ROOT) if host != binary else 'the binary'})" for path, host in sorted(tree.items())),
        flush=True)
    return tree, entry, runtime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--build-command", default="swift build -c release --product gateway --static-swift-stdlib")
    parser.add_argument("--dockerfile", default=os.path.join(ROOT, "Dockerfile"),
                        help="the Dockerfile whose stages are played (its COPY sources come from this repository)")
    parser.add_argument("--tree-only", action="store_true",
                        help="only build the runtime tree from the COPY lines and list it (no libraries, no start)")
    parser.add_argument("--start-only", action="store_true",
                        help="skip steps 1 and 2 (how the binary was built, its libraries' packages): any build, "
                             "e.g. a debug one, started in the tree the COPY lines make")
    args = parser.parse_args()
    args.binary = os.path.abspath(args.binary)
    try:
        stages = dockerfile_tree.parse(args.dockerfile)
    except dockerfile_tree.DockerfileError as error:
        check("the Dockerfile parses", False, str(error))
        return CHECKS.report("image check")
    build, runtime = stages[0], stages[-1]

    if args.tree_only:
        try:
            tree, _, _ = build_tree(args.dockerfile, args.binary)
        except dockerfile_tree.DockerfileError as error:
            check("the runtime tree is built from the Dockerfile's COPY lines", False, str(error))
            return CHECKS.report("image check (tree only)")
        root = tempfile.mkdtemp(prefix="gw-image-tree-")
        dockerfile_tree.materialize(tree, root)
        laid = {os.path.join("/", os.path.relpath(os.path.join(d, f), root)) for d, _, files in os.walk(root) for f in files}
        check(f"the tree is laid out under a root ({len(laid)} files, each a copy of its source)",
              laid == set(tree) and all(filecmp.cmp(os.path.join(root, p.lstrip("/")), host, shallow=False)
                                        for p, host in tree.items()), f"{sorted(laid ^ set(tree))}")
        shutil.rmtree(root, ignore_errors=True)
        return CHECKS.report("image check (tree only)")

    libs = libraries(args.binary)
    if not args.start_only:
        check("the Dockerfile's build stage builds the binary as this check's was built",
              any(" ".join(words).startswith(args.build_command) for words in run_words(build)), args.build_command)
        check("the runtime stage is debian:bookworm-slim, as this machine", runtime.base == "debian:bookworm-slim"
              and "bookworm" in open("/etc/os-release").read(), runtime.base)

        # 2. Shared libraries.
        installs = runtime_packages(runtime)
        have = closure(sorted(required_packages() | {"apt"} | set(installs)))
        check("the runtime stage installs packages, and apt would install them (and debian:bookworm-slim's own) here",
              bool(installs) and len(have) > 50 and set(installs) <= have, f"{len(have)} packages; installs {installs}")
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

    # 3. Start in a root of only what the runtime stage's COPY lines make, as its user.
    try:
        tree, entry, runtime = build_tree(args.dockerfile, args.binary)
    except dockerfile_tree.DockerfileError as error:
        check("the runtime tree is built from the Dockerfile's COPY lines", False, str(error))
        return CHECKS.report("image check")
    user = re.match(r"(\d+):(\d+)$", (runtime.all("USER") or [dockerfile_tree.Instruction("USER", "0:0", 0)])[-1].arguments)
    check("the runtime stage runs as an unprivileged numeric user (uid:gid)", bool(user) and user.group(1) != "0")
    uid, gid = (int(user.group(1)), int(user.group(2))) if user else (10001, 10001)
    env = dockerfile_tree.environment(runtime)
    command = [w for i in runtime.all("CMD")[-1:] for w in (dockerfile_tree.exec_form(i.arguments) or shlex.split(i.arguments))]
    root = tempfile.mkdtemp(prefix="gw-image-")
    os.chmod(root, 0o755)  # as an image's /: anyone may enter
    dockerfile_tree.materialize(tree, root)
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
    # The runtime stage's RUN makes the data directory, owned by its user.
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
        run_in(root, uid, gid, env, data, before, entry, command)
    finally:
        if subprocess.run(["umount", os.path.join(root, "proc")]).returncode != 0:
            subprocess.run(["umount", "-l", os.path.join(root, "proc")])

    if not CHECKS.failed:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"(the root is kept in {root})")
    return CHECKS.report("image check")


def run_in(root, uid, gid, env, data, before, entry, command):
    """The runtime stage's two ways to start, as uid:gid in `root`: its ENTRYPOINT with its CMD (`serve`), and
    `serve --sandbox`."""

    port = free_port()
    environment = {"PATH": "/usr/local/bin", **env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port)}
    jail = [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={uid}:{gid}", root]
    refused = subprocess.run(jail + entry + (command or ["serve"]), env=environment, capture_output=True, text=True,
                             timeout=60)
    check("`serve` without configuration refuses to start, saying what is missing (exit 78)",
          refused.returncode == 78 and "GATEWAY_" in refused.stderr, f"exit {refused.returncode}: {refused.stderr[-300:]}")

    log = os.path.join(tempfile.gettempdir(), "gw-image.log")
    if os.path.exists(log):
        os.remove(log)
    gateway = Process(f"`serve --sandbox` as uid {uid}", jail + entry + ["serve", "--sandbox"], environment, log)
    try:
        gateway.start(port, "/readyz", limit=60, every=0.3)
        ready, detail = True, ""
    except Fatal as error:
        ready, detail = False, f"{error}; log {log}"
    check(f"`serve --sandbox` as uid {uid} in a root of only the copied files answers /readyz", ready, detail)
    check("it stops on SIGTERM", gateway.stop() and gateway.proc.returncode == 0)
    written = set()
    for directory, names, files in os.walk(root):
        if directory == root:
            names[:] = [n for n in names if n != "proc"]
        written.update(os.path.join(directory, f) for f in files)
    strays = sorted(p for p in written - before if not p.startswith(data + os.sep))
    check("it writes only its data directory", not strays and any(p.startswith(data) for p in written - before), str(strays))


if __name__ == "__main__":
    sys.exit(main())
