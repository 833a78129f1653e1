"""Fault injection for the processes of tests/test_faults.py (Snakemake and its jobs).

tests/test_faults.py puts this folder first on PYTHONPATH, so every Python process it starts
imports this module. Nothing changes unless one of these is set in the environment:

LEJEPA_FAULT_KILL="<pattern>[@<n>]"
    The process SIGKILLs itself just before the n-th (default 1st) os.replace whose target
    path matches the fnmatch pattern: the temporary file is written, the target is not. Every
    file lejepa writes goes through lejepa.io.atomic_path (an os.replace), so this is "the job
    was killed while writing <target>". With LEJEPA_FAULT_DIR set, the count is kept there, so
    only the first process to reach the n-th write is killed.
LEJEPA_FAULT_KILL_OPEN="<pattern>"
    The process SIGKILLs itself right after it opens a matching file for writing (the file is
    created or emptied, nothing written): a killed in-place write, as Snakemake's report.html.
LEJEPA_FAULT_PAUSE="<pattern>" (with LEJEPA_FAULT_DIR)
    Before the first os.replace onto a matching target, create LEJEPA_FAULT_DIR/paused and wait
    until LEJEPA_FAULT_DIR/release exists (a job held mid-run, deterministically).
"""

import fnmatch
import os
import signal
import time

_KILL = os.environ.get("LEJEPA_FAULT_KILL")
_PAUSE = os.environ.get("LEJEPA_FAULT_PAUSE")
_DIR = os.environ.get("LEJEPA_FAULT_DIR")
_KILL_OPEN = os.environ.get("LEJEPA_FAULT_KILL_OPEN")

if _KILL_OPEN:
    import builtins
    import io

    _open = builtins.open

    def open_then_die(file, mode="r", *args, **kwargs):
        handle = _open(file, mode, *args, **kwargs)
        if isinstance(file, (str, os.PathLike)) and "w" in mode and fnmatch.fnmatch(os.fspath(file), _KILL_OPEN):
            os.kill(os.getpid(), signal.SIGKILL)
        return handle

    builtins.open = io.open = open_then_die

if _KILL or _PAUSE:
    _replace = os.replace
    _pattern, _, _nth = (_KILL or "").partition("@")
    _nth = int(_nth or 1)
    _seen = {"kill": 0, "paused": False}

    def _count() -> int:
        if not _DIR:
            _seen["kill"] += 1
            return _seen["kill"]
        counter = os.path.join(_DIR, "kill_count")
        with open(counter, "a") as f:
            f.write(".")
        with open(counter) as f:
            return len(f.read())

    def replace(src, dst, *args, **kwargs):
        target = os.fspath(dst)
        if _KILL and fnmatch.fnmatch(target, _pattern) and _count() == _nth:
            os.kill(os.getpid(), signal.SIGKILL)
        if _PAUSE and not _seen["paused"] and fnmatch.fnmatch(target, _PAUSE):
            _seen["paused"] = True
            open(os.path.join(_DIR, "paused"), "w").close()
            while not os.path.exists(os.path.join(_DIR, "release")):
                time.sleep(0.05)
        return _replace(src, dst, *args, **kwargs)

    os.replace = replace
