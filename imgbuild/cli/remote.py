"""``imgbuild exec`` and ``imgbuild scp``: a command or a local tree on a cluster's hosts, as sealos offers them.

Thin over :func:`imgbuild.runs.execute` and :func:`imgbuild.runs.scp`: hosts come
from the cluster's state under the Home (``--cluster``, default ``default``),
narrowed by ``--roles`` and ``--ips``; the machine itself runs through the local
executor, every other host over one SSH pool (``--max-parallel`` sessions at
once, host keys trusted on first use unless ``--insecure-host-key``). ``exec``
prefixes each output line with its host; ``scp`` (one tar stream per host, only
what changed) shows one progress bar with a line per host.
"""

from __future__ import annotations

import shlex
import sys
import threading
from typing import Any, List, Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

__all__ = ["exec_command", "scp"]

_CLUSTER = typer.Option("default", "--cluster", "-c", help="The cluster whose hosts to use (its state is in the Home).")
_ROLES = typer.Option(None, "--roles", help="Only hosts with one of these roles: master, node, registry (comma-separated).")
_IPS = typer.Option(None, "--ips", help="Only these hosts: addresses, ranges (a-b) or CIDRs, comma-separated.")
_PARALLEL = typer.Option(32, "--max-parallel", min=1, help="At most this many SSH sessions at once.")
_INSECURE = typer.Option(False, "--insecure-host-key", help="Do not check SSH host keys (trust on first use is the default).")


def _roles(roles: Optional[str]) -> list[str]:
    return [r for r in (roles or "").split(",") if r.strip()]


@app.command("exec")
def exec_command(
    command: List[str] = typer.Argument(..., metavar="-- CMD...", help="The command; one word is run by sh -c."),
    cluster: str = _CLUSTER, roles: Optional[str] = _ROLES, ips: Optional[List[str]] = _IPS,
    max_parallel: int = _PARALLEL, insecure_host_key: bool = _INSECURE,
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Seconds each host may take."),
    json_out: bool = typer.Option(False, "--json", help="Print each host's exit code and output as JSON."),
) -> None:
    """Run a command on the cluster's hosts at once, each output line prefixed by its host.

    Exit 0 when it succeeded everywhere, 1 when it failed (or a host was unreachable) anywhere.

    Example: imgbuild exec --roles node -- 'systemctl is-active kubelet'
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_executor, local_home
    from imgbuild.errors import ImgbuildError

    line = command[0] if len(command) == 1 else shlex.join(command)
    lock = threading.Lock()

    def show(host: str, text: str) -> None:
        with lock:
            output.echo(f"[{host}] {text}")

    outcomes = runs.execute(line, home=local_home(), cluster=cluster, roles=_roles(roles), ips=ips or [],
                            max_parallel=max_parallel, insecure_host_key=insecure_host_key, timeout=timeout,
                            on_line=None if output.want_json(json_out) else show, local=local_executor())
    failed = [(host, _why(o)) for host, o in outcomes if _why(o)]
    if output.want_json(json_out):
        output.emit_json([_as_json(host, o) for host, o in outcomes])
    if failed:
        raise ImgbuildError(f"failed on {len(failed)} of {len(outcomes)} hosts: "
                            + "; ".join(f"{host} ({why})" for host, why in failed))


def _why(outcome: Any) -> str:
    """'' for success, else a short reason: the exit code or the error's first line."""
    if isinstance(outcome, Exception):
        return str(outcome).splitlines()[0]
    return "" if outcome.ok else f"exit {outcome.exit_code}"


def _as_json(host: str, outcome: Any) -> dict:
    if isinstance(outcome, Exception):
        return {"host": host, "exit_code": None, "stdout": "", "stderr": "", "error": str(outcome)}
    return {"host": host, "exit_code": outcome.exit_code, "stdout": outcome.stdout, "stderr": outcome.stderr,
            "error": None}


class _Bars:
    """The CLI side of :class:`~imgbuild.engine.transfer.Progress`: one total tqdm bar, a line per finished host."""

    def __init__(self, show: bool) -> None:
        self._lock = threading.Lock()
        self._bar = None
        self._show = show

    def started(self, label: str, total: int) -> None:
        """Grow the bar's total by the host's stream size (the bar appears with the first host's stream)."""
        if not self._show:
            return
        with self._lock:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=0, unit="B", unit_scale=True, desc="scp", file=sys.stderr, leave=False)
            self._bar.total += total
            self._bar.refresh()

    def advanced(self, label: str, n: int) -> None:
        """Advance the bar."""
        if self._bar is not None:
            with self._lock:
                self._bar.update(n)

    def finished(self, label: str, note: str) -> None:
        """One line for the host: what it got, or why it failed."""
        with self._lock:
            if self._bar is not None:
                self._bar.write(f"  [{label}] {note}", file=sys.stderr)
            elif not output.state.quiet and not output.state.json:
                output.info(f"  [{label}] {note}")

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()


@app.command()
def scp(
    source: str = typer.Argument(..., metavar="SRC", help="A local directory (or file)."),
    dest: str = typer.Argument(..., metavar="DEST", help="Absolute path on the hosts: the directory SRC becomes."),
    cluster: str = _CLUSTER, roles: Optional[str] = _ROLES, ips: Optional[List[str]] = _IPS,
    max_parallel: int = _PARALLEL, insecure_host_key: bool = _INSECURE,
    replace: bool = typer.Option(False, "--replace", help="Replace DEST even where imgbuild did not write it."),
    compress: Optional[bool] = typer.Option(None, "--zstd/--no-zstd", help="Force zstd on or off (default: "
                                            "measured per host)."),
    json_out: bool = typer.Option(False, "--json", help="Print each host's outcome as JSON."),
) -> None:
    """Copy a local tree to the cluster's hosts: DEST becomes a copy of SRC (one tar stream per host, in parallel).

    A re-run sends only what changed (a host whose copy is current costs one small read); files under DEST that
    SRC no longer has are removed. DEST is swapped in whole, so a host has the old or the new tree, never a mix;
    an existing DEST that imgbuild did not write is refused unless --replace. A single file SRC is copied to the
    path DEST.

    Example: imgbuild scp --roles master ./manifests /root/manifests
    """
    from imgbuild import runs
    from imgbuild.cli.edge import local_executor, local_home
    from imgbuild.engine.transfer import raise_failures

    bars = _Bars(show=not output.state.quiet and not output.want_json(json_out) and sys.stderr.isatty())
    try:
        results = runs.scp(source, dest, home=local_home(), cluster=cluster, roles=_roles(roles), ips=ips or [],
                           max_parallel=max_parallel, insecure_host_key=insecure_host_key, replace=replace,
                           compress=compress, progress=bars, local=local_executor())
    finally:
        bars.close()
    if output.want_json(json_out):
        output.emit_json([{"host": r.host, "dest": r.dest, "digest": r.digest, "unchanged": r.unchanged,
                           "sent_files": r.sent_files, "removed": r.removed, "bytes": r.bytes,
                           "zstd": r.compressed, "seconds": round(r.seconds, 3),
                           "error": None if r.ok else str(r.error)} for r in results])
    raise_failures(results)
