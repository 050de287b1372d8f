"""``imgbuild login`` and ``imgbuild logout``: registry credentials in ``$IMGBUILD_HOME/auth.json``.

The file has docker's ``config.json`` format and mode 0600; docker and podman credential
files are read as well (see :mod:`imgbuild.oci.auth`). The password is never printed,
logged or put in an error message. Logic lives in :func:`imgbuild.api.login` and :mod:`imgbuild.oci.auth`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imgbuild.cli import output
from imgbuild.cli.edge import local_home
from imgbuild.cli.app import app
from imgbuild.cli.transfer import CERT_HELP, TLS_HELP, tls_verify_value

__all__ = ["login_cmd", "logout_cmd"]


@app.command("login")
def login_cmd(
    registry: str = typer.Argument(..., help="Registry host[:port], e.g. localhost:5000."),
    username: str = typer.Option(..., "--username", "-u", help="User name."),
    password: str | None = typer.Option(None, "--password", "-p", help="Password (prefer --password-stdin)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    tls_verify: str | None = typer.Option(None, "--tls-verify", help=TLS_HELP),
    cert_dir: Path | None = typer.Option(None, "--cert-dir", help=CERT_HELP),
) -> None:
    """Check credentials against a registry and store them for later pulls and pushes.

    Example: echo "$PASS" | imgbuild login localhost:5000 -u alice --password-stdin
    """
    from imgbuild import api
    from imgbuild.errors import InputError

    if password_stdin == (password is not None):
        raise InputError("give exactly one of --password/-p and --password-stdin")
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        output.warn("a password on the command line can be seen by other users; prefer --password-stdin")
    if not password:
        raise InputError("empty password")
    host = api.login(registry, username, password, home=local_home(), tls_verify=tls_verify_value(tls_verify),
                     ca_file=str(cert_dir) if cert_dir else None)
    output.echo(f"Login succeeded: {username}@{host}")


@app.command("logout")
def logout_cmd(registry: str = typer.Argument(..., help="Registry host[:port].")) -> None:
    """Remove the stored credentials of a registry from imgbuild's auth file.

    Example: imgbuild logout localhost:5000
    """
    from imgbuild import api

    if api.logout(registry, home=local_home()):
        output.echo(f"Removed login credentials for {registry}")
    else:
        output.info(f"not logged in to {registry}")
