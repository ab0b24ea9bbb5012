"""Reports syntax errors in the template's SSM PowerShell and *.ps1 files (tree-sitter)."""

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_powershell
import yaml

from tools.cfn_template import SourceStr, load_template, resources

POWERSHELL_ACTION = "aws:runPowerShellScript"
# Folders that hold other people's code or build output, never ours.
SKIPPED_DIRS = {"node_modules", "out", "__pycache__"}


@dataclass(frozen=True)
class Script:
    """One PowerShell script and where its lines come from."""

    source: Path
    label: str
    text: str
    # The file line of each script line (1-based), None where it cannot be known.
    file_lines: tuple[int | None, ...]


@dataclass(frozen=True)
class SyntaxProblem:
    script: Script
    line: int  # 1-based, within the script
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        file_line = self.script.file_lines[self.line - 1]
        where = f"{self.script.source}:{file_line}" if file_line else f"{self.script.source}"
        return (
            f"{where}: {self.script.label}, script line {self.line} col {self.column}: "
            f"{self.message}"
        )


class ScriptNotReadable(Exception):
    """A runCommand the checker cannot turn into script text (e.g. an unsupported intrinsic)."""


_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def syntax_problems(script: Script) -> list[SyntaxProblem]:
    """The ERROR and MISSING nodes of the script's syntax tree, in source order."""
    tree = _PARSER.parse(script.text.encode("utf-8"))
    problems: list[SyntaxProblem] = []
    pending = [tree.root_node]
    while pending:
        node = pending.pop()
        if node.is_missing or node.is_error:
            row, column = node.start_point
            line_text = (node.text or b"").decode("utf-8", "replace").splitlines() or [""]
            message = (
                f"missing {node.type!r}"
                if node.is_missing
                else f"syntax error at {line_text[0].strip()[:60]!r}"
            )
            problems.append(SyntaxProblem(script, row + 1, column + 1, message))
        elif node.has_error:
            pending.extend(reversed(node.children))
    return problems


def _command_text(command: Any) -> SourceStr:
    if isinstance(command, dict) and set(command) == {"Fn::Sub"}:
        argument = command["Fn::Sub"]
        command = argument if isinstance(argument, str) else argument[0]
    if not isinstance(command, str):
        raise ScriptNotReadable(f"runCommand entry is not a string: {command!r}")
    return command if isinstance(command, SourceStr) else SourceStr(command)


def _script_from_commands(source: Path, label: str, commands: Any) -> Script:
    """SSM writes the runCommand entries one after the other, a newline between each."""
    if not isinstance(commands, list):
        commands = [commands]
    texts: list[str] = []
    file_lines: list[int | None] = []
    for command in commands:
        text = _command_text(command)
        count = len(text.split("\n"))
        first = text.line
        file_lines.extend(range(first, first + count) if first else [None] * count)
        texts.append(text)
    return Script(source, label, "\n".join(texts), tuple(file_lines))


def _document_content(content: Any) -> Any:
    # Content may also be given as a JSON or YAML string.
    return yaml.safe_load(content) if isinstance(content, str) else content


def template_scripts(template_path: Path) -> list[Script]:
    """The scripts of the aws:runPowerShellScript steps of every SSM document."""
    scripts = []
    for name, body in resources(load_template(template_path)).items():
        if body.get("Type") != "AWS::SSM::Document":
            continue
        content = _document_content((body.get("Properties") or {}).get("Content"))
        for index, step in enumerate((content or {}).get("mainSteps") or []):
            if step.get("action") != POWERSHELL_ACTION:
                continue
            label = f"{name} step {step.get('name', index)}"
            commands = (step.get("inputs") or {}).get("runCommand")
            if commands is None:
                raise ScriptNotReadable(f"{template_path}: {label} has no inputs.runCommand")
            scripts.append(_script_from_commands(template_path, label, commands))
    return scripts


def ps1_files(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(
            d for d in subdirectories if not d.startswith(".") and d not in SKIPPED_DIRS
        )
        for file_name in sorted(files):
            if file_name.lower().endswith(".ps1"):
                yield Path(directory) / file_name


def file_script(path: Path) -> Script:
    text = path.read_text(encoding="utf-8-sig")
    lines = tuple(range(1, len(text.split("\n")) + 1))
    return Script(path, path.name, text, lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--root", type=Path, default=Path("."), help="where to look for *.ps1")
    args = parser.parse_args(argv)
    try:
        scripts = template_scripts(args.template)
        scripts += [file_script(path) for path in ps1_files(args.root)]
    except (OSError, ValueError, ScriptNotReadable) as exc:
        print(f"parse_powershell: {exc}", file=sys.stderr)
        return 1
    if not scripts:
        print(
            f"parse_powershell: no PowerShell found ({POWERSHELL_ACTION} steps in "
            f"{args.template} or *.ps1 under {args.root})",
            file=sys.stderr,
        )
        return 1
    problems = [problem for script in scripts for problem in syntax_problems(script)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"parse_powershell: {len(scripts)} script(s), {len(problems)} syntax error(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
