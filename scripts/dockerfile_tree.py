"""The Dockerfile as Docker reads it, for the checks that have no Docker engine (deploy_check.py, image_check.py).

`parse(path)` gives its stages and their real instructions: comments and parser directives dropped, line
continuations joined (a comment line inside a continuation is dropped too, as Docker does). `image_tree(...)` plays
the `COPY` instructions of every stage: what the build context brings (less `.dockerignore`), what `RUN` produced
(given by the caller, e.g. the binary the build stage's `install` line puts in place), and what `COPY --from=<stage>`
takes from an earlier stage, giving the files of the final stage as {path in the image: file on this machine}.
`materialize(tree, root)` lays such a tree out under a directory.

    python3 scripts/dockerfile_tree.py [--dockerfile PATH] [--self-test]   # prints the stages and the final tree
"""
import glob
import json
import os
import posixpath
import re
import shlex
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


KEYWORDS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
            "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


class DockerfileError(Exception):
    """Something the Dockerfile does that this reader cannot follow (a heredoc, COPY from an outside image, …)."""


class Instruction:
    def __init__(self, keyword, arguments, line):
        self.keyword, self.arguments, self.line = keyword, arguments, line

    def __repr__(self):
        return f"{self.line}: {self.keyword} {self.arguments}"


class Stage:
    def __init__(self, index, base, name, line):
        self.index, self.base, self.name, self.line = index, base, name, line
        self.instructions = []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def __repr__(self):
        return f"stage {self.index} {self.name or ''} FROM {self.base}"


def instructions(text):
    """(keyword, arguments, first line number) of every instruction: comments dropped, continuations joined."""
    escape = "\\"
    found, pending, start = [], None, 0
    lines = text.splitlines()
    for number, raw in enumerate(lines, 1):
        directive = re.match(r"\s*#\s*escape\s*=\s*(\S)\s*$", raw)
        if directive and not found and pending is None:
            escape = directive.group(1)
            continue
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue  # a comment (or a parser directive), also inside a continuation
        if pending is None:
            if not stripped:
                continue
            pending, start = "", number
        elif not stripped:
            continue  # an empty line inside a continuation
        if stripped.endswith(escape):
            pending += stripped[:-1].rstrip() + " "
            continue
        pending += stripped
        keyword, _, arguments = pending.partition(" ")
        found.append((keyword.upper(), arguments.strip(), start))
        pending = None
    if pending is not None:
        keyword, _, arguments = pending.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip(), start))
    return found


def parse(path):
    """The stages of the Dockerfile at `path`, each with its instructions (FROM excluded)."""
    stages = []
    for keyword, arguments, line in instructions(open(path).read()):
        if keyword not in KEYWORDS:
            raise DockerfileError(f"line {line}: {keyword} is not an instruction")
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), words[0] if words else "", name, line))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"line {line}: {keyword} before the first FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments, line))
    if not stages:
        raise DockerfileError(f"{path}: no FROM")
    return stages


def exec_form(arguments):
    """A JSON-array argument (`["a", "b"]`) as a list, or None in shell form."""
    if arguments.startswith("["):
        try:
            value = json.loads(arguments)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return None


class Copy:
    """One COPY (or ADD of local files): its flags, sources and destination."""

    def __init__(self, instruction):
        self.instruction = instruction
        if "<<" in instruction.arguments:
            raise DockerfileError(f"line {instruction.line}: heredocs are not followed")
        flags, rest = re.match(r"((?:--\S+\s+)*)(.*)\Z", instruction.arguments, flags=re.S).groups()
        self.flags = {}
        for flag in flags.split():
            key, _, value = flag[2:].partition("=")
            self.flags[key] = value
        listed = exec_form(rest)
        paths = listed if listed is not None else shlex.split(rest)
        if len(paths) < 2:
            raise DockerfileError(f"line {instruction.line}: COPY needs a source and a destination")
        self.sources, self.destination = paths[:-1], paths[-1]
        self.source_stage = self.flags.get("from")

    def __repr__(self):
        origin = f"--from={self.source_stage} " if self.source_stage else ""
        return f"COPY {origin}{' '.join(self.sources)} {self.destination} (line {self.instruction.line})"


def copies(stage):
    return [Copy(i) for i in stage.instructions if i.keyword in ("COPY", "ADD")]


def stage_named(stages, reference):
    for stage in stages:
        if stage.name == reference or str(stage.index) == str(reference):
            return stage
    return None


def ignore_patterns(context):
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    patterns = []
    for raw in open(path):
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
            patterns.append((negate, pattern))
    return patterns


def pattern_regex(pattern):
    """Docker's (Go filepath.Match, plus `**`) pattern as a regular expression over a context-relative path."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out += re.escape(c)
            else:
                out += "[" + ("^" + pattern[i + 2:end] if pattern[i + 1] == "!" else pattern[i + 1:end]) + "]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def ignored(relative, patterns):
    """Whether the context-relative path (or a folder above it) is excluded by .dockerignore."""
    parts = relative.split("/")
    result = False
    for negate, pattern in patterns:
        regex = pattern_regex(pattern)
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def context_files(context, source, patterns):
    """{path relative to the source: file} for one COPY source from the context, and whether it was a folder."""
    relative = posixpath.normpath(source.lstrip("/"))
    if relative.startswith(".."):
        raise DockerfileError(f"COPY source {source} is outside the build context")
    matches = sorted(glob.glob(os.path.join(context, relative))) if any(c in relative for c in "*?[") else \
        [os.path.join(context, relative)] if os.path.exists(os.path.join(context, relative)) else []
    found = []
    for match in matches:
        rel = os.path.relpath(match, context)
        if rel != "." and ignored(rel, patterns):
            continue
        if os.path.isdir(match):
            files = {}
            for directory, names, filenames in os.walk(match):
                names.sort()
                for filename in sorted(filenames):
                    path = os.path.join(directory, filename)
                    if not ignored(os.path.relpath(path, context), patterns):
                        files[os.path.relpath(path, match)] = path
            found.append((match, True, files))
        else:
            found.append((match, False, {os.path.basename(match): match}))
    return found


def stage_files(tree, source):
    """{path relative to the source: file} for a COPY --from source in an earlier stage's tree, and whether it was a
    folder there."""
    path = posixpath.normpath("/" + source.lstrip("/"))
    if path in tree:
        return [(path, False, {posixpath.basename(path): tree[path]})]
    prefix = path.rstrip("/") + "/" if path != "/" else "/"
    files = {p[len(prefix):]: host for p, host in tree.items() if p.startswith(prefix)}
    return [(path, True, files)] if files else []


def image_tree(dockerfile, context=ROOT, outputs=None, stage=None):
    """The files `COPY` puts in a stage (the last unless named): {absolute path in the image: file on this machine}.
    `outputs` gives what RUN instructions produced, by stage name or index: {stage: {path in the image: file}}.
    A COPY whose source matches nothing raises DockerfileError, as `docker build` fails."""
    stages = parse(dockerfile)
    patterns = ignore_patterns(context)
    trees = {}
    outputs = outputs or {}
    for current in stages:
        tree = {}
        workdir = "/"
        for instruction in current.instructions:
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.normpath(posixpath.join(workdir, instruction.arguments.strip()))
            elif instruction.keyword == "RUN":
                for path, host in ((outputs.get(current.name) or {}) | (outputs.get(current.index) or {})).items():
                    if installs(instruction, path):
                        tree[path] = host
            elif instruction.keyword in ("COPY", "ADD"):
                copy = Copy(instruction)
                if copy.source_stage is not None:
                    earlier = stage_named(stages, copy.source_stage)
                    if earlier is None or earlier.index >= current.index:
                        raise DockerfileError(f"{copy}: --from={copy.source_stage} is not an earlier stage "
                                              "(outside images are not followed)")
                    sources = [stage_files(trees[earlier.index], s) for s in copy.sources]
                else:
                    sources = [context_files(context, s, patterns) for s in copy.sources]
                for source, found in zip(copy.sources, sources):
                    if not found and not any(c in source for c in "*?["):
                        raise DockerfileError(f"{copy}: the source {source} does not exist")
                if not any(files for found in sources for _, _, files in found):
                    raise DockerfileError(f"{copy}: copies nothing")
                destination = posixpath.normpath(posixpath.join(workdir, copy.destination))
                many = len(copy.sources) > 1 or sum(len(f) for f in sources) > 1
                into_folder = copy.destination.endswith("/") or many or any(
                    p.startswith(destination.rstrip("/") + "/") for p in tree)
                for found in sources:
                    for _, is_folder, files in found:
                        for relative, host in files.items():
                            if is_folder or into_folder:
                                target = posixpath.normpath(posixpath.join(destination, relative))
                            else:
                                target = destination
                            tree[target] = host
        for path, host in ((outputs.get(current.name) or {}) | (outputs.get(current.index) or {})).items():
            if path not in tree:
                raise DockerfileError(f"stage {current.name or current.index}: no RUN instruction puts {path} in place")
        trees[current.index] = tree
    chosen = stages[-1] if stage is None else stage_named(stages, stage)
    return trees[chosen.index]


def installs(instruction, path):
    """Whether a RUN instruction puts a file at `path`: an `install … PATH`, `cp … PATH` or `mv … PATH` command."""
    for command in re.split(r"&&|\|\||;", instruction.arguments):
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        if words and words[0] in ("install", "cp", "mv") and len(words) >= 3 and words[-1] == path:
            return True
    return False


def installed_by_run(stage, name):
    """Where the stage's RUN instructions install a file called `name` (`install … …/name DEST`), or None."""
    for instruction in stage.all("RUN"):
        for command in re.split(r"&&|\|\||;", instruction.arguments):
            try:
                words = shlex.split(command)
            except ValueError:
                continue
            if words and words[0] in ("install", "cp", "mv") and len(words) >= 3 \
                    and posixpath.basename(words[-2]) == name and posixpath.basename(words[-1]) == name:
                return words[-1]
    return None


def entrypoint(stage):
    """The stage's ENTRYPOINT as a list (exec form), or None."""
    found = stage.all("ENTRYPOINT")
    if not found:
        return None
    return exec_form(found[-1].arguments) or shlex.split(found[-1].arguments)


def environment(stage):
    """The stage's ENV settings (`ENV A=1 B=2` and the old `ENV A 1`)."""
    env = {}
    for instruction in stage.all("ENV"):
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def materialize(tree, root):
    """Lays the tree out under `root`: folders 0755, files with their own mode, owned by root, as COPY makes them."""
    for path, host in sorted(tree.items()):
        target = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        shutil.copy2(host, target)
    for directory, names, _ in os.walk(root):
        for name in names:
            os.chmod(os.path.join(directory, name), 0o755)


def self_test():
    """The reader's rules, on small Dockerfiles in a scratch context."""
    import tempfile
    problems = []

    def expect(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            problems.append(what)

    context = tempfile.mkdtemp(prefix="dockerfile-selftest-")
    os.makedirs(os.path.join(context, "migrations/postgres"))
    for name in ("migrations/0001_a.sql", "migrations/postgres/0001_a.sql", "docs.yaml", "a.sqlite", "keep.txt"):
        os.makedirs(os.path.dirname(os.path.join(context, name)) or context, exist_ok=True)
        open(os.path.join(context, name), "w").write(name)
    open(os.path.join(context, ".dockerignore"), "w").write("*.sqlite*\n")
    binary = os.path.join(context, "gateway-binary")
    open(binary, "w").write("binary")
    text = """# syntax=docker/dockerfile:1
# COPY migrations /nowhere   (a comment: not an instruction)
FROM base AS build
WORKDIR /build
RUN make \\
    # a comment inside a continuation
    && install -D "$(pwd)/gateway" /staging/usr/local/bin/gateway
COPY migrations \\
     /staging/usr/local/share/gateway/migrations
COPY ["docs.yaml", "/staging/usr/local/share/gateway/openapi.yaml"]
COPY *.sqlite keep.txt /staging/extra/
FROM runtime
COPY --from=build /staging/ /
ENTRYPOINT ["/usr/local/bin/gateway"]
"""
    path = os.path.join(context, "Dockerfile")
    open(path, "w").write(text)
    stages = parse(path)
    expect(len(stages) == 2 and stages[0].name == "build", "two stages, the first named build")
    expect([i.keyword for i in stages[0].instructions] == ["WORKDIR", "RUN", "COPY", "COPY", "COPY"],
           "comments dropped, continuations joined")
    expect(installed_by_run(stages[0], "gateway") == "/staging/usr/local/bin/gateway", "the RUN line's install is found")
    tree = image_tree(path, context, {"build": {"/staging/usr/local/bin/gateway": binary}})
    expected = {
        "/usr/local/bin/gateway": binary,
        "/usr/local/share/gateway/migrations/0001_a.sql": os.path.join(context, "migrations/0001_a.sql"),
        "/usr/local/share/gateway/migrations/postgres/0001_a.sql": os.path.join(context, "migrations/postgres/0001_a.sql"),
        "/usr/local/share/gateway/openapi.yaml": os.path.join(context, "docs.yaml"),
        "/extra/keep.txt": os.path.join(context, "keep.txt"),
    }
    expect(tree == expected, "the final tree: the binary, migrations/ (a folder, recursively), the spec renamed, "
           "files into a folder (.dockerignore'd ones left out)" + ("" if tree == expected else f": {json.dumps(tree, indent=1)}"))
    open(path, "w").write(text.replace("COPY migrations \\\n", "# COPY migrations \\\n"))
    try:
        image_tree(path, context, {"build": {"/staging/usr/local/bin/gateway": binary}})
        expect(False, "a commented-out COPY leaves a dangling continuation line, which parses as its own instruction")
    except DockerfileError:
        expect(True, "a COPY commented out half-way is refused")
    open(path, "w").write(text.replace("COPY migrations \\\n     /staging/usr/local/share/gateway/migrations\n", ""))
    tree = image_tree(path, context, {"build": {"/staging/usr/local/bin/gateway": binary}})
    expect(not any("migrations" in p for p in tree), "without the COPY line, no migrations in the tree")
    open(path, "w").write(text.replace("COPY --from=build", "COPY --from=elsewhere"))
    try:
        image_tree(path, context, {"build": {"/staging/usr/local/bin/gateway": binary}})
        expect(False, "COPY --from an unknown stage is refused")
    except DockerfileError:
        expect(True, "COPY --from an unknown stage is refused")
    shutil.rmtree(context, ignore_errors=True)
    print(f"dockerfile self-test: {len(problems)} failed")
    return 1 if problems else 0


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dockerfile", default=os.path.join(ROOT, "Dockerfile"))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    stages = parse(args.dockerfile)
    for stage in stages:
        print(stage)
        for instruction in stage.instructions:
            print(f"  {instruction}")
    build = stages[0]
    binary = installed_by_run(build, "gateway")
    tree = image_tree(args.dockerfile, ROOT, {build.name or build.index: {binary: "<the built binary>"}} if binary else {})
    for path, host in sorted(tree.items()):
        print(f"{path}  <-  {os.path.relpath(host, ROOT) if os.path.isabs(host) else host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
