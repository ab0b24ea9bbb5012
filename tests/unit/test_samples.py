"""Every sample in events/ is a JSON object that some unit test loads by name."""

import json
import re
from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).resolve().parent
EVENTS = UNIT_TESTS.parents[1] / "events"
# How the tests load a sample: sample("name") or world.event("name", ...).
LOADED = re.compile(r"""(?:\bsample|\.event)\(\s*["']([\w.-]+)["']""")


def _loaded_by_tests() -> set[str]:
    names: set[str] = set()
    for module in UNIT_TESTS.glob("test_*.py"):
        if module.name == Path(__file__).name:
            continue
        names.update(LOADED.findall(module.read_text(encoding="utf-8")))
    return names


def test_there_are_samples_to_check() -> None:
    assert sorted(EVENTS.glob("*.json")), f"no samples in {EVENTS}"


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.stem)
def test_each_sample_is_a_json_object_that_a_unit_test_loads(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    assert path.stem in _loaded_by_tests(), (
        f"events/{path.name} is not loaded by any test in tests/unit: "
        f'add a test that calls sample("{path.stem}") or world.event("{path.stem}")'
    )


def test_every_sample_a_test_loads_exists() -> None:
    missing = {name for name in _loaded_by_tests() if not (EVENTS / f"{name}.json").exists()}
    assert not missing, f"tests load samples that are not in events/: {sorted(missing)}"
