"""`python -m bench [--quick] [AREA ...]`: run every benchmark module, print one table, save the results."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

from bench.harness import Figure, print_table, write_results

SKIP = {"harness", "chaos", "__main__"}


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in SKIP and not m.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("areas", nargs="*", help="module name prefixes to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    failed: list[str] = []
    for name in discover():
        if args.areas and not any(name.startswith(prefix) for prefix in args.areas):
            continue
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "run", None)
        if run is None:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            figures.extend(run(quick=args.quick))
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
    print_table(figures)
    path = write_results(figures)
    print(f"results: {path}")
    if failed:
        print(f"FAILED benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
