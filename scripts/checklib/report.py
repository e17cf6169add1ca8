"""The report every check script ends with, and what it prints while it runs."""
import os
import shutil
import sys
import time


class Fatal(Exception):
    """Something that stops a phase or a run (a process that does not start, a helper that refuses): the caller
    turns it into a failed check."""


class Checks:
    """Named assertions, printed as they pass or fail, and the one report every check script ends with.

    `checks.check(what, ok, detail)` and `checks(ok, what, detail)` record one assertion (and return `ok`); `passed`
    lists what passed, `failed` what failed with its detail (`failures`: only the names); `figures` are lines the
    report prints before its counts. `checks.report(name)` prints "name: N passed, N failed" and exits the process
    with status 1 when any check failed or none ran at all; otherwise it returns 0. A script therefore cannot end
    green with a failed check, or with nothing checked.

    Given `began` (a time.monotonic()), `logs` and `dirs`, the report first prints the figures and the wall time and,
    on failure, the last `tail_lines` lines of every log (the directories are kept); on success it removes `dirs`."""

    def __init__(self):
        self.passed, self.failed, self.figures = [], [], []

    def check(self, what, ok, detail=""):
        ok = bool(ok)
        if ok:
            self.passed.append(what)
            log(f"[{time.strftime('%H:%M:%S')}] PASS {what}" + (f" ({detail})" if detail else ""))
        else:
            self.failed.append((what, detail))
            log(f"[{time.strftime('%H:%M:%S')}] FAIL {what}" + (f": {detail}" if detail else ""))
        return ok

    def __call__(self, condition, what, detail=""):
        return self.check(what, condition, detail)

    @property
    def failures(self):
        return [what for what, _ in self.failed]

    def report(self, name, began=None, logs=(), dirs=(), tail_lines=60):
        """The closing lines; exits 1 when a check failed or nothing was checked, else returns 0."""
        if not self.passed and not self.failed:
            self.failed.append(("anything was checked", "no check ran"))
            log("FAIL anything was checked: no check ran")
        if began is not None or logs or dirs or self.figures:
            print()
            for figure in self.figures:
                print(figure)
            if began is not None:
                print(f"wall time {time.monotonic() - began:.0f} s")
            if self.failed:
                for path in logs:
                    print(f"\n----- last lines of {path} -----")
                    print(log_tail(path, tail_lines))
                if dirs:
                    print(f"\n(data kept in {', '.join(dirs)})")
            else:
                for directory in dirs:
                    shutil.rmtree(directory, ignore_errors=True)
        if self.failed:
            log("\nFailed:\n" + "\n".join(f"  - {what}" + (f": {detail}" if detail else "") for what, detail in self.failed))
        log(f"{name}: {len(self.passed)} passed, {len(self.failed)} failed")
        if self.failed:
            sys.exit(1)
        return 0


# The report of a script whose checks are made by the shared helpers (checklib.invariants, the reliability, fault,
# replica, trace and monitoring checks): one per process.
CHECKS = Checks()
FIGURES = CHECKS.figures


def log(message):
    print(message, flush=True)


def progress(message):
    """A progress line: the time, then the message."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def log_tail(path, lines=60):
    """The last `lines` lines of a log (of its last 256 KB), each cut to 600 characters."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            text = f.read().decode("utf-8", "replace").splitlines()
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(line[:600] for line in text[-lines:])


def run_main(main, cleanup):
    """A check script's entry point: runs `main`, always ends the processes it started (`cleanup`), even on ^C,
    and exits with main's code (130 when interrupted)."""
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    finally:
        cleanup()
    sys.exit(code)
