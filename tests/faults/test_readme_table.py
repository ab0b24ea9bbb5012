"""The README's table of what was tried is the suite's case list, rendered."""

from simulator import load
from tests.faults.runs import BASE
from tests.faults.table import FOLLOWING, HEADING, README, render, section_of


def test_the_readme_table_is_the_case_list() -> None:
    readme = README.read_text()
    assert section_of(readme) == render(), (
        "README.md's section differs from tests/faults/cases.py; regenerate it with "
        "PYTHONPATH=functions:. .venv/bin/python -m tests.faults.table"
    )
    assert readme.index(HEADING) < readme.index(FOLLOWING)


def test_the_base_scenario_follows_the_simulators_schema() -> None:
    assert load(BASE).name == "faults-base"
