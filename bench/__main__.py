"""``python -m bench [NAME ...] [--latency none,realistic] [--OPTION ...]``: run the named
benchmarks of this folder (without names, all but the opt-in ones).

A benchmark is a module ``bench/<name>.py`` with one of three ``main`` signatures:
``main(latencies) -> int`` runs at each latency profile of the emulator given (default both)
and prints the medians side by side (orders, stock, offers); ``main(argv) -> int`` takes its own
options, given after the names with one name only (``bench accounts --accounts 500``,
``bench soak --minutes 30``), and ``--latency`` too where the module says ``TAKES_LATENCY``
(accounts); ``main() -> int`` takes none. The soak runs only when named.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

from bench._support import LATENCIES

OPT_IN = ("soak",)  # long: run only when named


def available() -> list[str]:
    """The benchmark modules of this folder."""
    here = str(Path(__file__).parent)
    # packages (the fault suite, ``python -m bench.faults``) are not benchmarks
    modules = pkgutil.iter_modules([here])
    return sorted(m.name for m in modules if not m.name.startswith("_") and not m.ispkg)


def latencies(value: str) -> tuple[str, ...]:
    """``none,realistic`` -> the profiles, checked."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n not in LATENCIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"latency profiles are {', '.join(LATENCIES)}")
    return names


def _first_parameter(module: object) -> str | None:
    parameters = list(inspect.signature(module.main).parameters)  # type: ignore[attr-defined]
    return parameters[0] if parameters else None


def _takes_latency(module: object) -> bool:
    return bool(getattr(module, "TAKES_LATENCY", False))


def main(argv: list[str]) -> int:
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names = argv[:first_option] or [n for n in available() if n not in OPT_IN]
    parser = argparse.ArgumentParser(prog="python -m bench", add_help=False)
    parser.add_argument("--latency", type=latencies, default=LATENCIES)
    known, options = parser.parse_known_args(argv[first_option:])
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
        takes = _first_parameter(module)
        if options and takes != "argv":
            print(f"bench {name} takes no options but --latency")
            return 2
        if takes == "latencies":
            result = module.main(known.latency)
        elif takes == "argv":  # and the profiles, to one that takes them (TAKES_LATENCY)
            profiles = ["--latency", ",".join(known.latency)]
            result = module.main([*options, *profiles] if _takes_latency(module) else options)
        else:
            result = module.main()
        failed |= int(result != 0)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
