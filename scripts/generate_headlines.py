#!/usr/bin/env python3
"""Generate headlines for a file of articles: the same command as `s2s headlines`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.headlines import command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=command.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
