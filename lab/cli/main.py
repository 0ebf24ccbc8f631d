"""`python -m lab ...` (or `cifar10-lab ...` once installed): everything the app does, headless.

    python -m lab models --json
    python -m lab train --model seed-cnn --task cifar10 --epochs 2 --subset 10000 --data-dir DIR --json
    python -m lab evaluate RUN_ID --data-dir DIR --json
    python -m lab resume RUN_ID --data-dir DIR
    python -m lab runs --json
    python -m lab export RUN_ID PATH
    python -m lab study --epochs 10 --weights none --data-dir DIR
    python -m lab gradcam RUN_ID photo.jpg --out heatmap.png [--class cat]
    python -m lab lr-find --model seed-cnn --data-dir DIR [--json]
    python -m lab report --out report.html [--runs RUN_ID ...]
    python -m lab teacher attempts [--json]      python -m lab teacher unlock

Errors a user can fix (a bad setting, no data, no weights) print one readable line
and exit with status 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter

from lab.cli.parser import build_parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The console script installed by pip is called cifar10-lab; `python -m lab` runs lab/__main__.py.
    prog = "cifar10-lab" if Path(sys.argv[0]).stem == "cifar10-lab" else "python -m lab"
    args = build_parser(prog).parse_args(argv)
    from lab.cli import commands  # imported here, below the parser, so `--help` answers without loading TensorFlow

    try:
        return commands.dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one readable line for every error a user can meet
        if os.environ.get("LAB_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
