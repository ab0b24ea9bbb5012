"""docs/faults.md's table of what was tried is the suite's case list, rendered."""

from pathlib import Path

from simulator import load
from tests.faults.runs import BASE
from tests.faults.table import PAGE, render, section_of

README = Path(__file__).parents[2] / "README.md"


def test_the_faults_page_table_is_the_case_list() -> None:
    assert section_of(PAGE.read_text()) == render(), (
        "docs/faults.md's table differs from tests/faults/cases.py; regenerate it with "
        "PYTHONPATH=functions:. .venv/bin/python -m tests.faults.table"
    )


def test_the_readme_links_the_faults_page() -> None:
    assert "](docs/faults.md)" in README.read_text()


def test_the_base_scenario_follows_the_simulators_schema() -> None:
    assert load(BASE).name == "faults-base"
