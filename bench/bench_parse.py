"""Benchmark: parsing is linear — a 20,000-line Kubefile parses in well under a second.

Run: .venv/bin/python bench/bench_parse.py [LINES]
Prints the time for N and 2N lines (their ratio should be ~2, i.e. linear) and
for one 20,000-line instruction built of continuations (the worst case for a
quadratic join) and a 20,000-line heredoc.
"""

from __future__ import annotations

import sys
import time

from imgbuild.kubefile import parse

_BLOCK = [
    "# a comment",
    "ARG V{i}=1.{i}",
    'ENV NAME_{i}=${{NAME_{i}:-"app-{i}"}} PORT_{i}=$V{i}',
    'LABEL check="check.sh \\$registryDomain" idx="{i}"',
    "RUN --mount=type=cache,target=/c echo $NAME_{i} \\",
    "    && echo done-{i}",
    "COPY --chmod=0644 files/{i}.conf /etc/app/{i}.conf",
    'CMD ["helm upgrade -i $(NAME) charts/{i}"]',
    "",
]


def kubefile(lines: int) -> str:
    """A realistic Kubefile of about ``lines`` lines."""
    out = ["# syntax=docker/dockerfile:1", "FROM scratch AS s0"]
    i = 0
    while len(out) < lines:
        out.extend(line.format(i=i) for line in _BLOCK)
        i += 1
        if i % 500 == 0:
            out.append(f"FROM s{i // 500 - 1} AS s{i // 500}")
    return "\n".join(out) + "\n"


def timed(text: str) -> float:
    """Best of five parse times, in CPU seconds (robust on a busy machine)."""
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        parse(text)
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    """Run the benchmarks and print one line each."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    t1, t2 = timed(kubefile(n)), timed(kubefile(2 * n))
    print(f"{n} lines: {t1:.3f}s   {2 * n} lines: {t2:.3f}s   ratio {t2 / t1:.2f} (2.0 = linear)")
    cont = "FROM scratch\nRUN echo start \\\n" + "".join(f"  && echo {i} \\\n" for i in range(n)) + "  && true\n"
    print(f"one {n}-line continued RUN: {timed(cont):.3f}s")
    heredoc = "FROM scratch\nCOPY <<EOF /big\n" + "".join(f"line {i} $HOME\n" for i in range(n)) + "EOF\n"
    print(f"one {n}-line COPY heredoc: {timed(heredoc):.3f}s")
    env = "FROM scratch\nENV " + " ".join(f"K{i}=${{V:-{i}}}" for i in range(n)) + "\n"
    print(f"one ENV with {n} pairs: {timed(env):.3f}s")


if __name__ == "__main__":
    main()
