"""``assistd sandbox install``: the kernel's own virtual environment, separate from the server's.

It is made from the system's Python (``/usr/bin/python3``: it lives under ``/usr``, which the
sandbox mounts; a Python elsewhere is mounted too, but must be readable by the sandbox's uid),
gets ipykernel, numpy, pandas and matplotlib from the package index pip is configured for, and
matplotlib's font cache built once (else each new kernel builds it again on first use).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from assistd.sandbox.launch import MPL_CACHE_DIR

KERNEL_PACKAGES = ("ipykernel", "numpy", "pandas", "matplotlib")


def default_python() -> str:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return getattr(sys, "_base_executable", sys.executable)


def _run(argv: Sequence[str], **kwargs: object) -> None:
    subprocess.run(list(argv), check=True, **kwargs)  # type: ignore[call-overload]


def _world_readable(root: Path) -> None:
    """Let the sandbox's uid read the venv even if it was written under a strict umask."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            extra = stat.S_IROTH | stat.S_IRGRP
            if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
                extra |= stat.S_IXOTH | stat.S_IXGRP
            if st.st_mode & extra != extra:
                p.chmod(stat.S_IMODE(st.st_mode) | extra)


def install(
    venv: Path,
    *,
    python: str | None = None,
    packages: Sequence[str] = (),
    clear: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Create (or update) the kernel venv at ``venv``."""
    venv = venv.resolve()
    python = python or default_python()
    if clear and venv.exists():
        say(f"removing {venv}")
        shutil.rmtree(venv)
    if not (venv / "bin" / "python").exists():
        say(f"creating {venv} with {python}")
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    wanted = [*KERNEL_PACKAGES, *packages]
    say(f"installing {' '.join(wanted)}")
    _run([*pip, "install", "-q", *wanted])
    say("building matplotlib's font cache")
    cache = venv / MPL_CACHE_DIR
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "MPLCONFIGDIR": str(cache)}
        _run(
            [str(venv / "bin" / "python"), "-c", "import matplotlib.font_manager"],
            env=env,
            stdout=subprocess.DEVNULL,
        )
    for extra in cache.iterdir():
        if extra.suffix != ".json":
            shutil.rmtree(extra, ignore_errors=True) if extra.is_dir() else extra.unlink()
    _world_readable(venv)
