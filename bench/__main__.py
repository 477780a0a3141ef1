"""``python -m bench [NAME ...]``: run the named benchmarks of this folder (without names, all
but the opt-in ones); ``python -m bench NAME --option ...`` runs one with its options.

A benchmark is a module ``bench/<name>.py`` with ``main() -> int``; one that takes options has
``main(argv) -> int``. The soak (``python -m bench soak --minutes N``) runs only when named.
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


OPT_IN = ("soak",)  # long: run only when named


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[0] in available() and argv[1].startswith("-"):
        module = importlib.import_module(f"bench.{argv[0]}")
        return int(module.main(argv[1:]))
    names = argv or [n for n in available() if n not in OPT_IN]
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
