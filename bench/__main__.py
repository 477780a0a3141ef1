"""``python -m bench [NAME ...] [--OPTION ...]``: run the named benchmarks of this folder
(without names, all but the opt-in ones); options after the names go to the benchmark that takes
them (one name then).

A benchmark is a module ``bench/<name>.py`` with ``main() -> int`` (or ``main(argv) -> int``
when it takes options, as ``bench accounts --accounts 500``). The soak (``python -m bench soak
--minutes N``) runs only when named.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    """The benchmark modules of this folder."""
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


OPT_IN = ("soak",)  # long: run only when named


def main(argv: list[str]) -> int:
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names = argv[:first_option] or [n for n in available() if n not in OPT_IN]
    options = argv[first_option:]
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(available())}")
        return 2
    if options and len(names) != 1:
        print("options go to one benchmark: name it alone")
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        takes_options = bool(inspect.signature(module.main).parameters)
        if options and not takes_options:
            print(f"bench {name} takes no options")
            return 2
        failed |= int((module.main(options) if takes_options else module.main()) != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
