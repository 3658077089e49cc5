"""A crash in native code under `s2s` prints the Python stack that led to it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_segmentation_fault_under_s2s_shows_where_it_happened() -> None:
    # s2s.cli.main sets the fault handler up before it parses anything; the crash (reading
    # address 0) comes from a subcommand's code, as one inside TensorFlow would
    code = (
        "import argparse, ctypes, sys\n"
        "from s2s import cli\n"
        "def crash(args): ctypes.string_at(0)\n"
        "class Parser:\n"
        "    def parse_args(self, argv): return argparse.Namespace(func=crash, verbose=0, "
        "command='crash')\n"
        "cli.build_parser = Parser\n"
        "sys.exit(cli.main([]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode < 0
    assert "Fatal Python error: Segmentation fault" in result.stderr
    assert "in crash" in result.stderr
