"""Run benchmarks: ``python -m bench`` runs every bench_*.py module, ``python -m bench layer`` just one."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def _names() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none is named) and print their ratios."""
    available = _names()
    wanted = argv or available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    results = {}
    for name in wanted:
        print(f"== bench {name}", flush=True)
        sys.argv = [f"bench_{name}"]  # benchmarks see no harness arguments
        results[name] = importlib.import_module(f"bench.bench_{name}").main() or {}
    print("== ratios")
    for name, ratios in results.items():
        for key, value in ratios.items():
            print(f"{name}.{key}: {value:.2f}" if isinstance(value, float) else f"{name}.{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
