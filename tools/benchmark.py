"""Benchmarks of the systems: `python -m tools.benchmark NAME [options]`, NAME one of BENCHMARKS.

Each benchmark is its own module with `main(argv)` and prints `name value unit` lines; this
module only picks one, so running one never imports the other's dependencies.
"""
from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "autoencoder": "tools.benchmark_autoencoder",
    "beats": "tools.benchmark_beats",
    "beats_training": "tools.benchmark_beats_training",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        print(f"usage: python -m tools.benchmark {{{names}}} [options]  (NAME -h for the options)", file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark {argv[0]!r}; valid: {names}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    status = importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
