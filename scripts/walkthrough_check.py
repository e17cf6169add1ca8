#!/usr/bin/env python3
"""The first hour, exactly as written: runs the commands of README.md's walkthrough ("Five minutes in the sandbox")
and of docs/integrate.md's first section, in order, against a sandbox gateway, and checks that each answer shows what
the text promises.

    python3 scripts/walkthrough_check.py --binary .build/debug/gateway [--readme README.md] [--integrate docs/integrate.md]

The documents' fenced code blocks (indented ones too, so an older README is still run) are taken from those two
sections. A small HTML comment right before a block, invisible once rendered, says what it promises:

    <!-- walkthrough: run -->                     run it; it must exit 0, and every HTTP answer must be below 400
    <!-- walkthrough: skip (why) -->              not run (starting the gateway: this script starts it)
    <!-- walkthrough: 201 state=active -->        the block's last HTTP answer is a 201 whose JSON has state "active"
    <!-- walkthrough: #1 webhook_status=200; #2 state=active credentials_available=true; #3 api_key -->
                                                  clauses (`;`) for the block's 1st, 2nd, 3rd… HTTP answer (default:
                                                  the last): a status, `path=value` (dotted, `data.0.type`; `null`,
                                                  `true`, `false`), `path` (present and not empty)
    <!-- walkthrough: prints="action_required redirect_to_url" -->   what the block prints (Python blocks)

A block without a comment is still run (exit 0, every answer below 400; one that calls `swift` is not) and fails
"says what it promises". An HTTP
answer whose clause names no status must be below 400, so a `409` the text does not expect fails the block.

How it runs, as a new user would on a fresh clone: a temporary folder laid out like the clone's working tree (README.md,
docs/, migrations/ and .gitignore copied from this repository, committed to a throwaway git repository), the gateway
started there as `gateway serve --sandbox` with nothing but `GATEWAY_PORT` set (a free loopback port; `127.0.0.1:8080`
in a block is rewritten to it), so `data/sandbox-secrets.json` is where the README's `sed` reads it. Each block runs
with `bash` under `set -euo pipefail`, in that folder, with the environment the blocks before it exported; Python
blocks run with `python3`. `curl` is a thin shell function around the real one that also records each answer's status
and body for the checks (the command line is passed unchanged). `mktemp` makes its folders in the check's scratch folder (`TMPDIR`), removed at the end. `pip` runs with `PIP_NO_INDEX=1`: nothing but
loopback is touched (CI installed openapi-python-client beforehand). Last, `git status` in that folder must be clean:
the walkthrough leaves nothing in the clone but the ignored `data/`.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from checklib import Checks, Gateway, log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
expect = Checks()

SECTIONS = (("README.md", "## Five minutes in the sandbox"), ("docs/integrate.md", "## 1. A sandbox and a client"))
MARKER = re.compile(r"^\s*<!--\s*walkthrough:\s*(.*?)\s*-->\s*$")
SHELLS = {"", "sh", "bash", "shell", "console"}
BLOCK_SECONDS = 40

# The thin curl wrapper every shell block runs behind: the real curl with the same arguments, its body printed as
# usual, and "status<TAB>body file" appended to $WALKTHROUGH_CALLS for the checks.
CURL_WRAPPER = r'''
curl() {
    local body status rc=0
    body=$(mktemp "$WALKTHROUGH_BODIES/answer.XXXXXX")
    status=$(command curl -o "$body" -w '%{http_code}' "$@") || rc=$?
    cat "$body"
    printf '%s\t%s\n' "${status:-000}" "$body" >> "$WALKTHROUGH_CALLS"
    return $rc
}
'''


class Block:
    def __init__(self, document, line, language, code, marker):
        self.document, self.line, self.language, self.code, self.marker = document, line, language, code, marker

    @property
    def name(self):
        first = next((l.strip() for l in self.code.splitlines() if l.strip()), "")
        return f"{self.document}:{self.line} ({first[:70]}{'…' if len(first) > 70 else ''})"


def section(text, heading):
    """The lines of the section that starts with `heading`, up to the next heading of the same level, with their
    1-based line numbers."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(heading)), None)
    if start is None:
        return []
    level = len(heading) - len(heading.lstrip("#"))
    end = next((i for i in range(start + 1, len(lines))
                if re.match(r"^#{1,%d} " % level, lines[i])), len(lines))
    return [(i + 1, lines[i]) for i in range(start + 1, end)]


def blocks(document, text, heading):
    """Fenced and indented code blocks of the section, each with the walkthrough comment right before it (if any)."""
    found, lines, i, marker, previous_blank = [], section(text, heading), 0, None, True
    while i < len(lines):
        number, line = lines[i]
        fence = re.match(r"^(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            closing, language, body, i = fence.group(1), fence.group(2).lower(), [], i + 1
            while i < len(lines) and not lines[i][1].startswith(closing):
                body.append(lines[i][1])
                i += 1
            found.append(Block(document, number, language, "\n".join(body) + "\n", marker))
            marker, previous_blank, i = None, False, i + 1
            continue
        if line.startswith("    ") and previous_blank:
            body = []
            while i < len(lines) and (lines[i][1].startswith("    ") or not lines[i][1].strip()):
                body.append(lines[i][1][4:])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            found.append(Block(document, number, "", "\n".join(body) + "\n", marker))
            marker, previous_blank = None, True
            continue
        match = MARKER.match(line)
        if match:
            marker = match.group(1)
        elif line.strip():
            marker = None          # a comment counts only right before its block (blank lines aside)
        previous_blank = not line.strip()
        i += 1
    return found


def parse_marker(marker):
    """(skip?, clauses, prints): clauses maps an answer's index (1-based; -1 is the last) to its expectations."""
    if marker is None or marker == "run":
        return False, {}, []
    if marker.startswith("skip"):
        return True, {}, []
    clauses, prints = {}, []
    for clause in marker.split(";"):
        words = shlex.split(clause)
        if not words:
            continue
        index = -1
        if words[0].startswith("#"):
            index, words = int(words[0][1:]), words[1:]
        for word in words:
            if word.startswith("prints="):
                prints.append(word[len("prints="):])
            else:
                clauses.setdefault(index, []).append(word)
    return False, clauses, prints


def lookup(value, path):
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return True, value


def as_text(value):
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def judge(block, index, status, body, words):
    """The expectations of one HTTP answer; returns what failed."""
    failed, wanted_status = [], next((w for w in words if re.fullmatch(r"\d{3}", w)), None)
    if wanted_status is not None and str(status) != wanted_status:
        failed.append(f"answer #{index}: status {status}, expected {wanted_status}")
    if wanted_status is None and not (100 <= int(status) < 400):
        failed.append(f"answer #{index}: status {status} (the text promises no error)")
    try:
        document = json.loads(body) if body.strip() else None
    except ValueError:
        document = None
    for word in words:
        if re.fullmatch(r"\d{3}", word):
            continue
        path, _, want = word.partition("=")
        present, value = lookup(document, path)
        if "=" in word:
            if not present or as_text(value) != want:
                failed.append(f"answer #{index}: {path} is {as_text(value) if present else 'absent'}, expected {want}")
        elif not present or value in (None, "", [], {}):
            failed.append(f"answer #{index}: {path} is {'empty' if present else 'absent'}")
    return failed


def fresh_clone(work, texts):
    """A folder laid out like a fresh clone's working tree: the files the walkthrough reads, committed."""
    shutil.copytree(os.path.join(ROOT, "docs"), os.path.join(work, "docs"))
    shutil.copytree(os.path.join(ROOT, "migrations"), os.path.join(work, "migrations"))
    shutil.copy(os.path.join(ROOT, ".gitignore"), work)
    for document, text in texts.items():          # the documents under test, as given (`--readme`, `--integrate`)
        with open(os.path.join(work, document), "w") as f:
            f.write(text)
    git = ["git", "-c", "user.name=walkthrough", "-c", "user.email=walkthrough@example.invalid", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fresh clone"]):
        subprocess.run(git + command, cwd=work, check=True, capture_output=True)


def clean_environment():
    """The user's shell, without any gateway setting that would change what `serve --sandbox` does."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k not in ("GW", "KEY", "PYTHONPATH")}
    environment.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", LC_ALL="C.UTF-8")
    return environment


def run_block(block, work, port, environment, calls, bodies):
    """Runs one block; returns (exit status, output, the environment it leaves, its HTTP answers)."""
    code = block.code.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("localhost:8080", f"127.0.0.1:{port}")
    state = os.path.join(bodies, "environment")
    open(calls, "w").close()
    if block.language == "python":
        # As typed into `python3` in that folder: the folder itself is on sys.path (as '' is), the script nowhere.
        command, leaves, given = ["python3", "-"], None, code
    else:
        script = os.path.join(bodies, "block.sh")
        with open(script, "w") as f:
            f.write("set -euo pipefail\n" + CURL_WRAPPER + code + f'\nenv -0 > {shlex.quote(state)}\n')
        command, leaves, given = ["bash", script], state, ""
    try:
        result = subprocess.run(command, cwd=work, env=dict(environment, WALKTHROUGH_CALLS=calls, WALKTHROUGH_BODIES=bodies, TMPDIR=bodies),
                                capture_output=True, text=True, timeout=BLOCK_SECONDS, input=given)
        status, output = result.returncode, result.stdout + ("\n[stderr]\n" + result.stderr if result.stderr.strip() else "")
    except subprocess.TimeoutExpired as timeout:
        status, output = "timeout", f"no end after {BLOCK_SECONDS} s\n{timeout.stdout or ''}{timeout.stderr or ''}"
    answers = []
    for line in open(calls).read().splitlines():
        code_, _, path = line.partition("\t")
        answers.append((code_, open(path).read() if os.path.exists(path) else ""))
    after = environment
    if leaves and status == 0 and os.path.exists(leaves):
        after = dict(item.split("=", 1) for item in open(leaves).read().split("\0") if "=" in item)
        after = {k: v for k, v in after.items()
                 if not k.startswith("WALKTHROUGH_") and k not in ("SHLVL", "_", "PWD", "OLDPWD", "TMPDIR")}
        os.remove(leaves)
    return status, output, after, answers


def check_block(block, status, output, answers):
    skip, clauses, prints = parse_marker(block.marker)
    failed = []
    if status != 0:
        failed.append(f"exit status {status}")
    for index, (code, body) in enumerate(answers, 1):
        words = clauses.get(index, []) + (clauses.get(-1, []) if index == len(answers) else [])
        failed += judge(block, index, code, body, words)
    for index in clauses:
        if index != -1 and not 1 <= index <= len(answers):
            failed.append(f"answer #{index} expected, {len(answers)} HTTP answer(s) seen")
    if -1 in clauses and not answers:
        failed.append("an HTTP answer expected, none seen")
    for text in prints:
        if text not in output:
            failed.append(f"prints {text!r}: not in the output")
    promised = ", ".join([w for ws in clauses.values() for w in ws] + [f"prints {p!r}" for p in prints])
    if not expect(not failed, f"{block.name}: runs as written" + (f" and shows {promised}" if promised else ""),
                  "; ".join(failed)):
        log("      ---- what it printed (last 40 lines) ----")
        for line in output.rstrip().splitlines()[-40:]:
            log("      | " + line[:300])
        for index, (code, body) in enumerate(answers, 1):
            log(f"      answer #{index}: {code} {body[:300]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the built gateway")
    parser.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--integrate", default=os.path.join(ROOT, "docs", "integrate.md"))
    args = parser.parse_args()
    started = time.monotonic()

    texts = {"README.md": open(args.readme).read(), "docs/integrate.md": open(args.integrate).read()}
    walkthrough = []
    for document, heading in SECTIONS:
        found = blocks(document, texts[document], heading)
        expect(any(not parse_marker(b.marker)[0] for b in found), f"{document}: '{heading[3:]}' has blocks to run",
               f"{len(found)} code block(s) found in that section")
        for block in found:
            if block.marker is None:
                expect(False, f"{block.name}: says what it promises", "no <!-- walkthrough: … --> comment before it")
            if block.language not in SHELLS | {"python"}:
                expect(False, f"{block.name}: a shell or Python block", f"language {block.language!r}")
            if block.marker is None and re.search(r"(?m)^\s*swift\s", block.code):
                expect(False, f"{block.name}: not run", "it starts Swift (a build, the gateway): mark it skip")
                block.marker = "skip"
        walkthrough += [b for b in found if not parse_marker(b.marker)[0] and b.language in SHELLS | {"python"}]

    work = tempfile.mkdtemp(prefix="gw-walkthrough-")
    scratch = tempfile.mkdtemp(prefix="gw-walkthrough-scratch-")
    fresh_clone(work, texts)
    environment = clean_environment()
    log_path = os.path.join(scratch, "gateway.log")
    # In the clone, with nothing but GATEWAY_PORT set: its data (and secrets) in the clone's data/.
    gateway = Gateway(os.path.abspath(args.binary), None, base=environment, cwd=work, log_path=log_path)
    port = gateway.port
    try:
        ready = gateway.start_or_fail(expect, "the sandbox gateway is ready, its secrets in data/sandbox-secrets.json",
                                      ready_within=60, every=0.3)
        if not ready:
            log(open(log_path).read()[-3000:])
            return expect.report("walkthrough check")
        log(f"gateway on 127.0.0.1:{port}, working folder {work}")
        calls = os.path.join(scratch, "calls")
        for block in walkthrough:
            status, output, environment, answers = run_block(block, work, port, environment, calls, scratch)
            check_block(block, status, output, answers)
        porcelain = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"], cwd=work,
                                   capture_output=True, text=True).stdout
        expect(not porcelain.strip(), "git status is clean after the walkthrough (only the ignored data/ was written)",
               porcelain.strip().replace("\n", ", "))
        code = gateway.proc.poll()
        expect(code is None, "the gateway ran to the end", "" if code is None else f"exit status {code}")
    finally:
        gateway.stop(limit=10)
        if not expect.failed:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"kept for a look: {work} (the clone), {scratch} (the gateway's log, the last answers)")
    log(f"{len(walkthrough)} block(s) run in {time.monotonic() - started:.0f} s")
    return expect.report("walkthrough check")


if __name__ == "__main__":
    sys.exit(main())
