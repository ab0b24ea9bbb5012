"""Makes docs/report.png: the HTML report of the two simulated nights, in headless Chromium.

PYTHONPATH=functions:. .venv/bin/python -m tests.cli.screenshot [OUT.png]
"""

import sys
import tempfile
from pathlib import Path

from simulator import Simulation, load
from tests.cli import chromium
from tests.cli.conftest import TWO_NIGHTS
from tests.cli.harness import pointed_at, vss_restore

DOCS_PNG = Path(__file__).parents[2] / "docs" / "report.png"


def main(argv: list[str]) -> int:
    png = Path(argv[0]) if argv else DOCS_PNG
    binary = chromium.find()
    if binary is None:
        print("no Chromium here (Debian: apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "report.html"
        with Simulation(load(TWO_NIGHTS)) as simulation:
            simulation.run()
            said = vss_restore(
                "report",
                "--since",
                "2026-11-20",
                "--format",
                "html",
                "--output",
                str(page),
                *pointed_at(simulation),
            )
        if said.code != 0:
            print(said.err, file=sys.stderr)
            return said.code
        chromium.screenshot(binary, page, png)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
