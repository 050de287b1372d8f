"""The ``imgbuild`` command line: a thin typer layer over :mod:`imgbuild.api`.

One module per command group registers its commands on the app in
:mod:`imgbuild.cli.app`; all terminal output and exit-code mapping live in
:mod:`imgbuild.cli.output` and :mod:`imgbuild.cli.main`. Heavy imports happen
inside command bodies so ``imgbuild --help`` stays instant.
"""

__all__: list[str] = []
