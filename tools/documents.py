"""The SSM documents' PowerShell lives in documents/*.ps1; template.yaml carries a copy of each.

CloudFormation (and so `sam build`, `sam deploy`, the simulator and `make local-invoke`) reads
the script from the document's `runCommand` in template.yaml; people read and edit the .ps1
file, which any PowerShell tool can open. `python -m tools.documents` writes each file into
its document's single `runCommand` entry (a YAML literal block); `--check` changes nothing
and exits 1 when a document's copy is not exactly its file's text (`make test` runs it).
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
# Document logical ID -> its script, relative to the repository.
SCRIPTS = {
    "BackupDocument": "documents/backup.ps1",
    "DiskToolDocument": "documents/disk-tool.ps1",
}
# Where template.yaml writes a runCommand entry: "- |" under "runCommand:", the text below.
ENTRY_INDENT = 16
TEXT_INDENT = ENTRY_INDENT + 2


class DocumentNotFound(Exception):
    """The template has no such document, or its runCommand is not one literal block."""


def _block(lines: list[str], document: str) -> tuple[int, int]:
    """The first and past-the-last line of the document's runCommand text."""
    try:
        start = lines.index(f"  {document}:")
    except ValueError:
        raise DocumentNotFound(f"template.yaml has no resource {document}") from None
    header = next(
        (i for i in range(start + 1, len(lines)) if lines[i].strip() == "runCommand:"), None
    )
    if header is None or lines[header + 1] != " " * ENTRY_INDENT + "- |":
        raise DocumentNotFound(f"{document}: runCommand is not one `- |` literal block")
    end = header + 2
    while end < len(lines) and (lines[end] == "" or lines[end].startswith(" " * TEXT_INDENT)):
        end += 1
    while lines[end - 1] == "":  # blank lines before the next key separate, not belong
        end -= 1
    return header + 2, end


def embedded(template: str, document: str) -> str:
    """The script as the template holds it (what YAML's literal block gives)."""
    lines = template.split("\n")
    first, end = _block(lines, document)
    return "\n".join(line[TEXT_INDENT:] for line in lines[first:end]) + "\n"


def embed(template: str, document: str, script: str) -> str:
    """The template with the document's runCommand text replaced by the script."""
    if not script.endswith("\n") or script.endswith("\n\n"):
        raise ValueError(f"{document}: the script must end with exactly one newline")
    lines = template.split("\n")
    first, end = _block(lines, document)
    body = [(" " * TEXT_INDENT + line) if line else "" for line in script[:-1].split("\n")]
    return "\n".join([*lines[:first], *body, *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.documents", description=__doc__)
    parser.add_argument("--check", action="store_true", help="change nothing; 1 if they differ")
    args = parser.parse_args(argv)
    template = TEMPLATE.read_text(encoding="utf-8")
    updated = template
    differ = []
    for document, relative in SCRIPTS.items():
        script = (REPO / relative).read_text(encoding="utf-8")
        if embedded(updated, document) != script:
            differ.append(f"{document} <- {relative}")
            updated = embed(updated, document, script)
    if args.check:
        for line in differ:
            print(f"template.yaml's copy differs: {line} (run python -m tools.documents)")
        return 1 if differ else 0
    if updated != template:
        TEMPLATE.write_text(updated, encoding="utf-8")
        for line in differ:
            print(f"template.yaml updated: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
