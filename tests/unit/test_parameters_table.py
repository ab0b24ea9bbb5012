"""README's Parameters table is template.yaml's: every parameter, default, allowed values and
Description, and a page that explains it (tools/parameters.py)."""

import copy
from pathlib import Path
from typing import Any

import pytest

from tools import parameters
from tools.cfn_template import load_template

COMMAND = "PYTHONPATH=functions:. .venv/bin/python -m tools.parameters --write"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(parameters.TEMPLATE)


def rows_of(table: str) -> dict[str, str]:
    """The table's rows by parameter name."""
    return {
        line.split("|")[1].strip().strip("`"): line
        for line in table.splitlines()[2:]
        if line.startswith("| `")
    }


def test_readme_shows_the_template_s_parameters(template: dict[str, Any]) -> None:
    readme = parameters.README.read_text(encoding="utf-8")

    assert parameters.shown(readme) == parameters.table(template), (
        f"README.md's Parameters table is out of date: {COMMAND}"
    )


def test_every_parameter_has_a_row_in_the_template_s_order(template: dict[str, Any]) -> None:
    shown = parameters.shown(parameters.README.read_text(encoding="utf-8"))

    assert list(rows_of(shown)) == list(template["Parameters"])


def test_every_parameter_has_a_description_the_console_shows(template: dict[str, Any]) -> None:
    missing = [
        name
        for name, parameter in template["Parameters"].items()
        if not str(parameter.get("Description") or "").strip()
    ]

    assert not missing, f"template.yaml: no Description for {missing}"


def test_a_parameter_without_a_description_is_refused(template: dict[str, Any]) -> None:
    changed = copy.deepcopy(template)
    del changed["Parameters"]["MaxHelpers"]["Description"]
    changed["Parameters"]["KeepDaily"]["Description"] = "  "

    with pytest.raises(parameters.ParametersUndocumented) as refused:
        parameters.table(changed)

    assert "MaxHelpers has no Description" in str(refused.value)
    assert "KeepDaily has no Description" in str(refused.value)


def test_a_parameter_no_page_explains_is_refused() -> None:
    template = {"Parameters": {"Frobnicate": {"Type": "String", "Description": "Does it."}}}

    with pytest.raises(parameters.ParametersUndocumented, match="Frobnicate has no doc section"):
        parameters.table(template)


def test_a_new_parameter_is_explained_where_its_family_is() -> None:
    assert parameters.explained_in("BackupWindowHours") == "docs/backup.md"
    assert parameters.explained_in("BootTestSubnetIds") == "docs/boot-test.md"
    assert parameters.explained_in("HelperMode") == "docs/helpers.md"  # its own entry first


def test_a_link_to_a_heading_that_is_not_there_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(parameters.EXPLAINED_IN, "Frobnicate", "docs/backup.md#no-such-heading")
    template = {"Parameters": {"Frobnicate": {"Type": "String", "Description": "Does it."}}}

    with pytest.raises(parameters.ParametersUndocumented, match="no such heading"):
        parameters.table(template)


def test_each_cell_shows_what_the_template_says() -> None:
    template = {
        "Parameters": {
            "HelperImage": {
                "Type": "String",
                "Default": "ami-0123456789abcdef0",
                "AllowedPattern": "^(ami-[0-9a-f]{8,17}|/aws/.+)$",
                "Description": "Runs C:\\x\\v.ps1 -VolumePath <paths> | *all* of_them _here_.\n",
            },
            "MaxHelpers": {
                "Type": "Number",
                "Default": 5,
                "MinValue": 1,
                "MaxValue": 100,
                "Description": "At most.",
            },
            "BackupEnabled": {
                "Type": "String",
                "Default": True,  # unquoted in YAML: CloudFormation reads the text
                "AllowedValues": ["true", "false"],
                "Description": "On.",
            },
            "AlertEmail": {"Type": "String", "Default": "", "Description": "Who."},
            "VssTagKey": {"Type": "String", "Description": "Which."},
        }
    }

    rows = rows_of(parameters.table(template))

    assert rows["HelperImage"] == (
        "| `HelperImage` | `ami-0123456789abcdef0` | `^(ami-[0-9a-f]{8,17}\\|/aws/.+)$` | "
        "Runs C:\\x\\v.ps1 -VolumePath &lt;paths&gt; \\| \\*all\\* of_them \\_here\\_. | "
        "[helpers.md, The helper fleet (`HelperMode=fleet`)]"
        "(docs/helpers.md#the-helper-fleet-helpermodefleet) |"
    )
    assert "| `5` | 1 to 100 |" in rows["MaxHelpers"]
    assert "| `true` | `true`, `false` |" in rows["BackupEnabled"]
    assert "| (empty) | any String |" in rows["AlertEmail"]
    assert "| (required) |" in rows["VssTagKey"]


def test_the_check_fails_when_the_template_changes_and_write_mends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    template_text = parameters.TEMPLATE.read_text(encoding="utf-8")
    assert "    Default: 5\n    MinValue: 1\n    MaxValue: 100\n" in template_text  # MaxHelpers
    changed = template_text.replace(
        "    Default: 5\n    MinValue: 1\n    MaxValue: 100\n",
        "    Default: 7\n    MinValue: 1\n    MaxValue: 100\n",
    )
    (tmp_path / "template.yaml").write_text(changed, encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(parameters.README.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(parameters, "TEMPLATE", tmp_path / "template.yaml")
    monkeypatch.setattr(parameters, "README", readme)

    assert parameters.main(["--check"]) == 1
    assert "differs from template.yaml" in capsys.readouterr().out

    assert parameters.main(["--write"]) == 0
    assert "| `MaxHelpers` | `7` | 1 to 100 |" in readme.read_text(encoding="utf-8")
    assert parameters.main(["--check"]) == 0
