"""File output: atomic writes (a reader never sees a half-written file) and a workflow job's log."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
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
