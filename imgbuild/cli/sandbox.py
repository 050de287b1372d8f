"""``imgbuild sandbox``: local hosts made of Linux namespaces, or containers of a Docker daemon (up, ls, exec, down,
clusterfile); the netns provider needs root, the docker one a daemon ($DOCKER_HOST)."""

from __future__ import annotations

from typing import List, Optional

import typer

from imgbuild.cli import output
from imgbuild.cli.app import app

__all__ = ["sandbox_app"]

sandbox_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "Local hosts to try cluster images on, without VMs: each with its own address, hostname, process "
        "table, sshd and writable root filesystem (root only).\n\n"
        "Example:\n\n"
        "  imgbuild sandbox up 3 && imgbuild sandbox exec sandbox-1 -- hostname"
    ),
)
app.add_typer(sandbox_app, name="sandbox")

_NAME_HELP = "Sandbox name (hosts are NAME-1, NAME-2, ...)."


@sandbox_app.command()
def up(
    count: int = typer.Argument(..., metavar="N", help="Number of hosts (1-250)."),
    name: str = typer.Option("sandbox", "--name", "-n", help=_NAME_HELP),
    subnet: Optional[str] = typer.Option(None, "--subnet", help="IPv4 subnet, e.g. 10.213.7.0/24 (default: a free "
                                         "/24 in 10.213.0.0/16); the machine gets its first address."),
    print_clusterfile: bool = typer.Option(False, "--print-clusterfile", help="Print a Clusterfile naming the "
                                           "hosts and the key instead of the host table."),
    images: List[str] = typer.Option([], "--image", help="Image for the printed Clusterfile's spec.image (repeat)."),
    masters: int = typer.Option(1, "--masters", help="How many hosts the printed Clusterfile makes masters."),
    json_out: bool = typer.Option(False, "--json", help="Print the sandbox as JSON."),
    provider: str = typer.Option("netns", "--provider", help="netns (namespaces on this machine, root) or docker "
                                 "(privileged containers of the Docker daemon $DOCKER_HOST names)."),
    host_image: Optional[str] = typer.Option(None, "--host-image", help="docker provider: the hosts' image (with "
                                             "bash and sshd), from the store or docker-daemon:REF."),
) -> None:
    """Start N hosts (or report the running sandbox of that name); a half-made one left by a crash is removed first.

    Example: imgbuild sandbox up 3 --name demo --print-clusterfile --image localhost:5000/demo/app:v1;
    imgbuild sandbox up 2 --provider docker --host-image docker-daemon:sandbox-host:1
    """
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.errors import InputError
    from imgbuild.home import home
    from imgbuild.infra.sandbox import PROVIDERS, Sandbox

    if provider not in PROVIDERS:
        raise InputError(f"--provider must be {' or '.join(PROVIDERS)}, not {provider!r}")
    if (provider == "docker") != (host_image is not None):
        raise InputError("--host-image goes with --provider docker (and is required there)")
    if provider == "docker":
        from imgbuild.cli.edge import local_store
        from imgbuild.infra.docker import DockerSandbox

        sb = DockerSandbox.up(home(), name, count, _daemon(), host_image, LocalExecutor(), store=local_store(),
                              subnet=subnet, on_progress=output.info)
    else:
        sb = Sandbox.up(home(), name, count, LocalExecutor(), subnet=subnet, on_progress=output.info)
    if sb.reused:
        output.info(f"sandbox {sb.name} is already running")
    _show(sb, json_out, print_clusterfile, images, masters)


@sandbox_app.command("ls")
def ls(json_out: bool = typer.Option(False, "--json", help="Print the sandboxes as JSON.")) -> None:
    """List the sandboxes of this imgbuild home with their hosts and state (running, degraded, stopped).

    Example: imgbuild sandbox ls --json
    """
    from imgbuild.home import home
    from imgbuild.infra.sandbox import list_sandboxes, require_root

    require_root()
    found = list_sandboxes(home()) + _docker_sandboxes(home(), lenient=True)
    if output.want_json(json_out):
        output.emit_json([{**sb.to_dict(), "state": sb.state(),
                           "hosts": [{**h.to_dict(), "running": h.running()} for h in sb.hosts]} for sb in found])
        return
    output.table(["SANDBOX", "HOST", "ADDRESS", "STATE"],
                 [(sb.name, h.name, h.address, "running" if h.running() else "stopped")
                  for sb in found for h in sb.hosts])


@sandbox_app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    host: str = typer.Argument(..., metavar="HOST", help="Host name (sandbox-1) or address."),
    command: List[str] = typer.Argument(..., metavar="-- CMD...", help="The command and its arguments."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Look for HOST in this sandbox only."),
) -> None:
    """Run a command on a sandbox host as root over SSH; its output and exit code are passed through.

    The command is an argv, not shell text: use sh -c for pipes and variables.

    Example: imgbuild sandbox exec sandbox-1 -- sh -c 'hostname; id -u'
    """
    from imgbuild.engine.ssh import SSHPool, SSHTarget
    from imgbuild.errors import ImgbuildError
    from imgbuild.home import home

    h = home()
    sb, target = _find_host(h, host, name)
    if not target.running():
        raise ImgbuildError(f"sandbox host {target.name} is not running; `imgbuild sandbox up` repairs it", target.name)
    with SSHPool(known_hosts=h.known_hosts) as pool:
        result = pool.executor(SSHTarget(target.address, target.port, key_file=str(sb.key_file))).run(
            command, check=False)
    if result.stdout:
        output.echo(result.stdout.rstrip("\n"))
    if result.stderr:
        output.info(result.stderr.rstrip("\n"))
    raise typer.Exit(result.exit_code)


@sandbox_app.command()
def down(
    name: Optional[str] = typer.Argument(None, metavar="[NAME]", help="Sandbox to remove (default: sandbox)."),
    all_: bool = typer.Option(False, "--all", "-a", help="Remove every sandbox of this imgbuild home."),
) -> None:
    """Stop every process of the hosts, unmount, delete links and namespaces, remove the layers and the key
    (a docker sandbox: stop and remove its containers and network).

    Example: imgbuild sandbox down demo
    """
    from imgbuild.engine.exec import LocalExecutor
    from imgbuild.errors import InputError
    from imgbuild.home import home
    from imgbuild.infra.sandbox import down_sandbox, list_sandboxes, require_root

    require_root()
    if all_ and name:
        raise InputError("name a sandbox or use --all, not both")
    h, executor = home(), LocalExecutor()
    names = [sb.name for sb in list_sandboxes(h)] if all_ else [name or "sandbox"]
    names += [sb.name for sb in _docker_sandboxes(h, daemon=False)] if all_ else []
    for n in names:
        if _provider(h, n) == "docker":
            from imgbuild.infra.docker import down_docker_sandbox

            removed = down_docker_sandbox(h, n, _daemon())
        else:
            removed = down_sandbox(h, n, executor)
        if removed:
            output.info(f"sandbox {n} removed")
        elif not all_:
            raise InputError(f"no sandbox named {n}", str(h.sandbox))
    if all_ and not names:
        output.info("no sandboxes")


@sandbox_app.command()
def clusterfile(
    name: str = typer.Argument("sandbox", metavar="[NAME]", help="The sandbox (default: sandbox)."),
    images: List[str] = typer.Option([], "--image", help="Image for spec.image (repeat)."),
    masters: int = typer.Option(1, "--masters", help="How many hosts are masters (the first ones)."),
) -> None:
    """Print a Clusterfile skeleton naming a sandbox's hosts and its key, for `imgbuild run -f` / `apply`.

    Example: imgbuild sandbox clusterfile demo --image localhost:5000/demo/app:v1 > Clusterfile
    """
    from imgbuild.home import home
    from imgbuild.infra.sandbox import Sandbox, require_root

    require_root()
    found = _docker_sandboxes(home(), name, daemon=False) if _provider(home(), name) == "docker" else []
    sb = found[0] if found else Sandbox.load(home(), name)
    output.echo(sb.clusterfile(images, masters).rstrip("\n"))


def _provider(h, name: str) -> str | None:
    from imgbuild.infra.sandbox import record_provider

    return record_provider(h, name)


def _daemon():
    """The Docker daemon ``$DOCKER_HOST`` names (read here, at the CLI edge)."""
    import os

    from imgbuild.oci.daemon import connect

    return connect(os.environ)


def _docker_sandboxes(h, name: Optional[str] = None, daemon: bool = True, lenient: bool = False) -> list:
    """This home's docker sandboxes (or the one named), with hosts' states when ``daemon`` (connecting only if any);
    ``lenient``: a daemon that cannot be reached leaves the states unknown (with a note) instead of failing."""
    from imgbuild.errors import ImgbuildError
    from imgbuild.infra.docker import list_docker_sandboxes

    found = [sb for sb in list_docker_sandboxes(h, None) if name in (None, sb.name)]
    if found and daemon:
        try:
            found = [sb for sb in list_docker_sandboxes(h, _daemon()) if name in (None, sb.name)]
        except ImgbuildError as exc:
            if not lenient:
                raise
            output.info(f"docker sandboxes' states are unknown: {exc}")
    return found


def _show(sb, json_out: bool, print_clusterfile: bool, images: List[str], masters: int) -> None:
    """Print a sandbox: its Clusterfile, JSON, or a host table."""
    if print_clusterfile:
        output.echo(sb.clusterfile(images, masters).rstrip("\n"))
    elif output.want_json(json_out):
        output.emit_json({**sb.to_dict(), "reused": sb.reused})
    else:
        output.table(["HOST", "ADDRESS"], [(h.name, h.address) for h in sb.hosts])
        output.info(f"ssh -i {sb.key_file} root@{sb.hosts[0].address}")


def _find_host(h, host: str, name: Optional[str]):
    """The sandbox and host that ``host`` (a name or address) names, among this home's sandboxes."""
    from imgbuild.errors import InputError
    from imgbuild.infra.sandbox import Sandbox, list_sandboxes, require_root

    require_root()
    if name and _provider(h, name) == "docker":
        found = _docker_sandboxes(h, name)
    else:
        found = [Sandbox.load(h, name)] if name else list_sandboxes(h) + _docker_sandboxes(h)
    for sb in found:
        for candidate in sb.hosts:
            if host in (candidate.name, candidate.address):
                return sb, candidate
    raise InputError(f"no sandbox host {host}" + (f" in sandbox {name}" if name else ""), str(h.sandbox))
