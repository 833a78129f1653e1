"""File output: atomic writes (a reader never sees a half-written file) and a workflow job's log."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(error: OSError, path) -> OSError:
    """The OSError to raise when the disk (or quota) filled up while writing ``path``."""
    return OSError(
        error.errno,
        f"{os.strerror(error.errno)} while writing {path}: nothing was written there (the partial "
        f"temporary file is deleted); free space on that disk and rerun",
    )


def owner_tag() -> str:
    """<host>-<pid> of this process: temporary names carry it, so a later writer can tell a
    leftover of a killed process from the file of a live one."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _owner_gone(tag: str) -> bool:
    """Whether the process named by an owner tag has ended (only knowable on this host)."""
    host, _, pid = tag.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False


def remove_leftovers(folder, prefix: str, suffix: str = "") -> list[Path]:
    """Delete the files or folders ``<prefix><host>-<pid><anything><suffix>`` in ``folder`` whose
    process (on this host) has ended: what a killed write left behind. Returns them."""
    folder = Path(folder)
    pattern = re.compile(re.escape(prefix) + r"(?P<tag>.+-\d+)[.-][^/]*" + re.escape(suffix) + "$")
    removed = []
    if not folder.is_dir():
        return removed
    for candidate in folder.iterdir():
        match = pattern.match(candidate.name)
        if match and _owner_gone(match.group("tag")):
            if candidate.is_dir() and not candidate.is_symlink():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file is deleted if the block fails (a full disk, an exception); the one a
    killed process left behind is deleted by the next write of ``path`` on the same host."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.name}.", ".tmp" + path.suffix
    remove_leftovers(path.parent, prefix, suffix)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{prefix}{owner_tag()}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno in DISK_FULL:
            raise disk_full(error, path) from error
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv(frame, path) -> None:
    """Write a pandas DataFrame to ``path`` atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text(text: str, path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def append_json_lines(rows, path) -> None:
    """Rewrite the JSON-lines file ``path`` with one more line per row (dicts), through a
    temporary file and a rename (a file whose last line lacks its newline gets one)."""
    old = Path(path).read_text() if Path(path).exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_text(old + "".join(json.dumps(row) + "\n" for row in rows), path)


def send_output_to_log(path, *, append: bool = False, include_stdout: bool = False):
    """Send everything a workflow job writes to stderr (warnings, a traceback, tqdm, torch's
    C++ messages), and stdout too if asked, to its log file; ``lejepa.*`` loggers log at INFO.
    Returns the open log file."""
    log_file = open(path, "a" if append else "w", buffering=1)
    os.dup2(log_file.fileno(), sys.stderr.fileno())
    sys.stderr = log_file
    if include_stdout:
        os.dup2(log_file.fileno(), sys.stdout.fileno())
        sys.stdout = log_file
    logging.basicConfig(stream=log_file, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", force=True)
    logging.captureWarnings(True)
    logging.getLogger("lejepa").setLevel(logging.INFO)
    return log_file
