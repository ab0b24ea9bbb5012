"""README's Parameters table: every parameter of template.yaml, generated from the template.

Each row is a parameter in the template's order: its default, the values CloudFormation
accepts (AllowedValues, MinValue-MaxValue or AllowedPattern), its Description (what the
console shows at deploy time, so it is written there and nowhere else) and the doc section
that explains it (EXPLAINED_IN, below). `python -m tools.parameters` prints the table;
`--write` puts it into README.md between its markers; `--check` changes nothing and exits 1
when README's table is not the template's. A parameter with no Description, or none of
EXPLAINED_IN's entries, is refused.
"""

import argparse
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.cfn_template import load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
README = REPO / "README.md"
COMMAND = "python -m tools.parameters --write"
BEGIN = f"<!-- parameters-table:begin ({COMMAND}) -->"
END = "<!-- parameters-table:end -->"

# Where each parameter is explained, relative to the repository: its name, else the longest
# prefix of its name that is listed (a new Backup... parameter is the nightly backup's).
_FLEET = "docs/helpers.md#the-helper-fleet-helpermodefleet"
_BUSY = "docs/design.md#failures-duplicates-and-busy-helpers"
_RETENTION = "docs/retention.md"
EXPLAINED_IN: dict[str, str] = {
    "VssTagKey": "docs/design.md#what-counts-as-a-vss-snapshot",
    "VssTagValue": "docs/design.md#what-counts-as-a-vss-snapshot",
    "HelperMode": "docs/helpers.md",
    "HelperInstanceIds": "docs/helpers.md",
    "AllowSourceAsHelper": "docs/helpers.md",
    "Helper": _FLEET,
    "MaxHelpers": _FLEET,
    "VolumeType": "docs/deploy.md#parameters",
    "CheckAfterRevert": "docs/design.md#what-counts-as-a-vss-snapshot",
    "ValidationScript": "docs/design.md#what-counts-as-a-vss-snapshot",
    "HelperConcurrency": _BUSY,
    "MaxWaitHours": _BUSY,
    "AlertEmail": "docs/deploy.md#parameters",
    "LogRetentionDays": "docs/deploy.md#parameters",
    "Backup": "docs/backup.md",
    "Reconcile": _BUSY,
    "OrphanVolumeHours": _BUSY,
    "DeleteOrphanVolumes": _BUSY,
    "RetentionSchedule": _RETENTION,
    "Keep": _RETENTION,
    "DeleteExpiredSnapshots": _RETENTION,
    "OneCopy": _RETENTION,
    "Reverify": "docs/retention.md#re-verification-older-backups-restored-again-weekly",
    "BootTest": "docs/boot-test.md",
    "Pace": "docs/performance.md#pacing-our-ec2-calls",
}


class ParametersUndocumented(Exception):
    """A parameter has no Description, or no entry in EXPLAINED_IN."""


def explained_in(name: str) -> str | None:
    """The doc section for a parameter: its own entry, else its longest listed prefix."""
    if name in EXPLAINED_IN:
        return EXPLAINED_IN[name]
    prefixes = [prefix for prefix in EXPLAINED_IN if name.startswith(prefix)]
    return EXPLAINED_IN[max(prefixes, key=len)] if prefixes else None


def _value(value: Any) -> str:
    if isinstance(value, bool):  # YAML's unquoted true/false; CloudFormation reads the text
        return "true" if value else "false"
    return str(value)


def _code(text: str) -> str:
    """A code span inside a table cell: GitHub splits cells at every unescaped pipe."""
    return "`" + text.replace("|", "\\|") + "`"


def _prose(text: str) -> str:
    """A Description on one line, as Markdown that shows it as the console does."""
    line = " ".join(text.split())
    # A backslash escapes only the punctuation after it (C:\\vss-restore shows as written),
    # an underscore emphasizes only at a word's edge.
    line = re.sub(r"\\(?=[!-/:-@[-`{-~])", r"\\\\", line)
    line = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", line)
    for special in ("|", "*", "`", "[", "]"):
        line = line.replace(special, "\\" + special)
    return line.replace("<", "&lt;").replace(">", "&gt;")


def _default(parameter: Mapping[str, Any]) -> str:
    if "Default" not in parameter:
        return "(required)"
    default = _value(parameter["Default"])
    return _code(default) if default else "(empty)"


def _allowed(parameter: Mapping[str, Any]) -> str:
    found = []
    if "AllowedValues" in parameter:
        found.append(", ".join(_code(_value(v)) for v in parameter["AllowedValues"]))
    low, high = parameter.get("MinValue"), parameter.get("MaxValue")
    if low is not None and high is not None:
        found.append(f"{low} to {high}")
    elif low is not None:
        found.append(f"at least {low}")
    elif high is not None:
        found.append(f"at most {high}")
    if "AllowedPattern" in parameter:
        found.append(_code(str(parameter["AllowedPattern"])))
    return "; ".join(found) or "any " + str(parameter.get("Type", "String"))


def _headings(page: Path) -> dict[str, str]:
    """A page's headings by the anchor GitHub makes of each (as tests/unit/test_docs_links)."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {
        re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"): heading
        for heading in re.findall(r"^#+ (.+)$", text, re.M)
    }


def _link(target: str) -> str:
    """A link to the doc section, named by its page and heading."""
    path, _, anchor = target.partition("#")
    page = REPO / path
    if not page.is_file():
        raise ParametersUndocumented(f"EXPLAINED_IN names {target}: no {path}")
    name = page.name
    if anchor:
        heading = _headings(page).get(anchor)
        if heading is None:
            raise ParametersUndocumented(f"EXPLAINED_IN names {target}: no such heading")
        name = f"{name}, {heading}"
    return f"[{name}]({target})"


def table(template: Mapping[str, Any]) -> str:
    """The Markdown table of the template's parameters (ParametersUndocumented if any lacks
    a Description or a doc section)."""
    parameters: Mapping[str, Mapping[str, Any]] = template.get("Parameters") or {}
    undocumented = [
        f"{name} has no Description"
        for name, parameter in parameters.items()
        if not str(parameter.get("Description") or "").strip()
    ] + [
        f"{name} has no doc section (add it to EXPLAINED_IN in tools/parameters.py)"
        for name in parameters
        if explained_in(name) is None
    ]
    if undocumented:
        raise ParametersUndocumented("; ".join(undocumented))
    lines = [
        "| Parameter | Default | Allowed | What it does | Explained in |",
        "|---|---|---|---|---|",
    ]
    for name, parameter in parameters.items():
        lines.append(
            f"| `{name}` | {_default(parameter)} | {_allowed(parameter)} | "
            f"{_prose(str(parameter['Description']))} | {_link(str(explained_in(name)))} |"
        )
    return "\n".join(lines) + "\n"


def shown(readme: str) -> str:
    """The table README.md holds between its markers."""
    if BEGIN not in readme or END not in readme.split(BEGIN, 1)[1]:
        raise ValueError(f"README.md has no {BEGIN} ... {END}")
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def with_table(readme: str, rows: str) -> str:
    """README.md's text with the table between its markers replaced."""
    shown(readme)  # the markers are there
    before, rest = readme.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{BEGIN}\n{rows}{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.parameters", description=__doc__.split("\n", 1)[0]
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="put the table into README.md")
    action.add_argument("--check", action="store_true", help="change nothing; 1 if it differs")
    args = parser.parse_args(argv)
    try:
        rows = table(load_template(TEMPLATE))
    except ParametersUndocumented as exc:
        print(f"template.yaml: {exc}", file=sys.stderr)
        return 1
    if not (args.write or args.check):
        print(rows, end="")
        return 0
    readme = README.read_text(encoding="utf-8")
    if args.check:
        if shown(readme) != rows:
            print(f"README.md's Parameters table differs from template.yaml (run {COMMAND})")
            return 1
        return 0
    updated = with_table(readme, rows)
    if updated != readme:
        README.write_text(updated, encoding="utf-8")
        print("README.md's Parameters table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
