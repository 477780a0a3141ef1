"""``python -m bench [NAME ...] [--latency none,realistic]``: run the named benchmarks of this
folder (all without names), each at every latency profile of the emulator given (default both),
and print their medians side by side.

A benchmark is a module ``bench/<name>.py`` with ``main(latencies) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench._support import LATENCIES


def available() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def latencies(value: str) -> tuple[str, ...]:
    """``none,realistic`` -> the profiles, checked."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in LATENCIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"latency profiles are {', '.join(LATENCIES)}")
    return names


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks ({', '.join(available())})")
    parser.add_argument(
        "--latency",
        type=latencies,
        default=LATENCIES,
        help="the emulator's latency profiles to run at, comma-separated (default: none,realistic)",
    )
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        failed |= int(module.main(args.latency) != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
