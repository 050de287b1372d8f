"""Serve a registry/ directory with the stock registry binary, in the foreground.

:func:`serve` writes a throw-away registry configuration (filesystem storage at the
directory, the address and port asked for) into a private temp directory, runs
``docker-registry serve`` through the exec seam with its log streamed line by line,
and stops it cleanly: on Ctrl-C (SIGINT), SIGTERM or SIGHUP the registry gets a
SIGTERM, drains its connections and exits, and the temp configuration is removed.
The registry runs in its own process group (the local executor starts every command in
one), so a terminal's Ctrl-C reaches only imgbuild, which forwards it as that graceful
SIGTERM. ``REGISTRY_*`` environment variables are not passed on: the stock registry
would read them as overrides of its configuration, and some are common for other reasons
(podman's ``REGISTRY_AUTH_FILE``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from imgbuild.engine.exec import Executor, require_tool
from imgbuild.errors import CommandFailed, InputError

__all__ = ["ServeConfig", "serve", "registry_config", "REGISTRY_BIN"]

REGISTRY_BIN = "docker-registry"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class ServeConfig:
    """What to serve and where: the directory, address, port and whether pushes are refused."""

    root: Path
    port: int = 5000
    address: str = "127.0.0.1"
    read_only: bool = False
    log_level: str = "info"

    @property
    def listen(self) -> str:
        """``address:port`` (IPv6 addresses bracketed)."""
        host = f"[{self.address}]" if ":" in self.address and not self.address.startswith("[") else self.address
        return f"{host}:{self.port}"


def registry_config(cfg: ServeConfig) -> dict:
    """The docker-registry configuration document for ``cfg``."""
    if not 0 < cfg.port < 65536:
        raise InputError(f"invalid port {cfg.port}: expected 1-65535")
    return {
        "version": 0.1,
        "log": {"level": cfg.log_level, "formatter": "text", "accesslog": {"disabled": cfg.log_level != "debug"}},
        "storage": {
            "filesystem": {"rootdirectory": str(cfg.root)},
            "delete": {"enabled": False},
            "maintenance": {"uploadpurging": {"enabled": False}, "readonly": {"enabled": cfg.read_only}},
        },
        "http": {"addr": cfg.listen, "secret": secrets.token_hex(16), "draintimeout": "5s"},
    }


def serve(cfg: ServeConfig, *, executor: Executor, on_line: Callable[[str], None] | None = None) -> int:
    """Run the registry on ``cfg.root`` through ``executor`` until it exits or is stopped; 0 after a clean stop.

    Raises InputError if the directory is missing, ToolMissing without the registry binary and
    CommandFailed (with the registry's last log lines) if it exits on its own with an error.
    """
    import yaml

    root = Path(cfg.root).absolute()
    if not root.is_dir():
        raise InputError("registry directory does not exist", str(root))
    binary = require_tool(REGISTRY_BIN, "install it (Debian: apt-get install docker-registry)")
    stop = threading.Event()
    errors: list[str] = []

    def seen(line: str) -> None:
        if ("level=fatal" in line or "level=error" in line or line.startswith("configuration error")) and not errors:
            errors.append(line.split("msg=", 1)[-1].strip('"'))
        if on_line:
            on_line(line)

    unset = [a for k in sorted(os.environ) if k.startswith("REGISTRY_") for a in ("-u", k)]
    with _private_dir() as tmp:
        conf = tmp / "config.yml"
        conf.write_text(yaml.safe_dump(registry_config(ServeConfig(root, cfg.port, cfg.address, cfg.read_only,
                                                                   cfg.log_level)), sort_keys=False))
        with _forward_stop_signals(stop, (binary, require_tool("env"))):
            argv = [*(["env", *unset] if unset else []), binary, "serve", str(conf)]
            result = executor.run(argv, check=False, on_line=seen)
    if result.ok or stop.is_set():
        return 0
    why = f": {errors[0]}" if errors else ""
    raise CommandFailed(result, f"{REGISTRY_BIN} exited with code {result.exit_code}{why}")


@contextlib.contextmanager
def _private_dir() -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="imgbuild-serve-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _forward_stop_signals(stop: threading.Event, binaries: tuple[str, ...]) -> Iterator[None]:
    """While inside, a stop signal sends SIGTERM to our registry child instead of raising.

    With no child to forward to (not started yet, or already gone) it raises KeyboardInterrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        children = _children_running(binaries)
        if not children:
            raise KeyboardInterrupt
        stop.set()
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, handler) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _children_running(binaries: tuple[str, ...]) -> list[int]:
    """Pids of this process's direct children whose executable is one of ``binaries``."""
    me, found = os.getpid(), []
    targets = {os.path.realpath(b) for b in binaries}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            exe = os.path.realpath(f"/proc/{entry}/exe") if ppid == me else ""
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and exe in targets:
            found.append(int(entry))
    return found
