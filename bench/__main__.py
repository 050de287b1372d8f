"""Run benchmarks: ``python -m bench`` runs every bench_*.py module, ``python -m bench layer`` just one, and
``python -m bench transfer latency`` passes the words after a benchmark's name to it (its cases)."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def _names() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))


def _plan(argv: list[str], available: list[str]) -> list[tuple[str, list[str]]] | None:
    """``[name [case...]]...``: each benchmark named, with the words after it that are not benchmarks (its cases)."""
    plan: list[tuple[str, list[str]]] = []
    for word in argv:
        if word in available:
            plan.append((word, []))
        elif plan:
            plan[-1][1].append(word)
        else:
            return None
    return plan or [(name, []) for name in available]


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none is named) and print their ratios."""
    available = _names()
    plan = _plan(argv, available)
    if plan is None:
        print(f"unknown benchmark {argv[0]!r}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    results = {}
    for name, cases in plan:
        print(f"== bench {name}" + (f" ({' '.join(cases)})" if cases else ""), flush=True)
        sys.argv = [f"bench_{name}", *cases]  # a benchmark sees only its own cases
        results[name] = importlib.import_module(f"bench.bench_{name}").main() or {}
    print("== ratios")
    for name, ratios in results.items():
        for key, value in ratios.items():
            print(f"{name}.{key}: {value:.2f}" if isinstance(value, float) else f"{name}.{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
