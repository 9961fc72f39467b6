"""What every benchmark writes with --json: the machine, the rows of its table, and headline numbers.

    {"benchmark": "cpu", "quick": false, "machine": "...", "torch": "2.13.0", "created": "...Z",
     "rows": [{...}, ...],                      # the printed table, as numbers
     "headline": [{"case": "512x512 end to end", "metric": "seconds", "value": 0.71}, ...]}

benchmarks/summary.py turns the headlines of several files into one markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def argument_parser(description: str | None, quick_help: str = "smallest settings, for a smoke check"):
    """A benchmark's command line with the two options every benchmark takes: --json and --quick."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def headline(case: str, metric: str, value) -> dict:
    return {"case": case, "metric": metric, "value": value}


def write_json(path: str | None, benchmark: str, rows: list, headlines: list, quick: bool, **extra) -> None:
    """Write the results to ``path`` (nothing if None), creating its folder."""
    if not path:
        return
    report = {"benchmark": benchmark, "quick": quick, "machine": machine(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows, "headline": headlines,
              **extra}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=1), encoding="utf-8")
