"""``python -m bench [NAME ...]``: run the named benchmarks of this folder (all without names).

A benchmark is a module ``bench/<name>.py`` with ``main() -> int``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    """The benchmark modules of this folder."""
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        failed |= int(module.main() != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
