"""The distribute-and-run engine.

For now it holds the one seam every external command goes through
(:mod:`imgbuild.engine.exec`); the phases, transfer and applier land with the
run-engine issues.
"""

__all__: list[str] = []
