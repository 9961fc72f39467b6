"""One markdown table from the JSON files the benchmarks write with --json (paste it into the README).

    .venv/bin/python benchmarks/summary.py runs/benchmarks/*.json
    .venv/bin/python benchmarks/summary.py runs/benchmarks/          # every *.json in a folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _format(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(reports: list[dict]) -> str:
    """Markdown: one row per headline number, benchmarks in the order given; the machines below."""
    lines = ["| benchmark | case | metric | value |", "|---|---|---|---:|"]
    machines = []
    for report in reports:
        name = report["benchmark"] + (" (quick)" if report.get("quick") else "")
        for entry in report["headline"]:
            lines.append(f"| {name} | {entry['case']} | {entry['metric']} | {_format(entry['value'])} |")
        if report.get("machine") and report["machine"] not in machines:
            machines.append(report["machine"])
    if machines:
        lines += ["", "Measured on: " + "; ".join(machines) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="JSON files, or folders of them")
    args = parser.parse_args(argv)
    files = [file for path in args.paths for file in (sorted(path.glob("*.json")) if path.is_dir() else [path])]
    reports = []
    for file in files:
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(report, dict) or "headline" not in report or "benchmark" not in report:
                raise ValueError("no 'benchmark' and 'headline' keys")
        except (OSError, ValueError) as error:
            print(f"summary: skipped {file}: {error}", file=sys.stderr)
            continue
        reports.append(report)
    if not reports:
        print("summary: no benchmark results found", file=sys.stderr)
        return 2
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
