"""``python -m imgbuild`` runs the CLI."""

from imgbuild.cli.main import main

main()
