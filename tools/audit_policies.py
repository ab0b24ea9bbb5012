"""Runs parliament, community auditors included, over every policy the stack's principals hold.

Each role's inline policies and each managed policy are audited as SAM synthesizes and
CloudFormation would resolve them (simulator.iam.stack.Stack), with the default parameters and
again with every conditional statement in. A finding passes only when template.yaml accepts it
beside the statement it is about, with a reason:

    - Sid: GrantEbsTheSnapshotsKey
      # parliament: PERMISSIONS_MANAGEMENT_ACTIONS accepted: EBS needs a grant on the
      #   snapshot's key to make the volume (a reason may go on over lines indented so).

The marker goes inside the statement or in the comment lines right above it. Statements written
as JSON text (no YAML comment can go inside) are named instead, anywhere in the resource or in
the comments above it: `# parliament: RESOURCE_MISMATCH in FindTheBackupLog accepted: ...`.
Elsewhere in a resource, a marker accepts what belongs to no statement with a Sid: a finding
on a whole policy, or on a policy SAM writes for that resource (e.g. an event rule's role).
A marker without a reason, or one that no longer matches a finding, fails the audit too.

    PYTHONPATH=functions:. .venv/bin/python -m tools.audit_policies [--template template.yaml]
"""

import argparse
import itertools
import json
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.iam.stack import TEMPLATE, Stack

with warnings.catch_warnings():
    # parliament reads its data files without closing them.
    warnings.simplefilter("ignore", ResourceWarning)
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config

    # What `parliament --include-community-auditors` does besides running them: their issue
    # codes' titles and severities, without which parliament cannot describe their findings.
    override_config(
        Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
    )

# The default parameters (HelperMode=fleet), named mode, and those that add the conditional
# statements (DeletesOrphanVolumes, DeletesExpiredSnapshots, BootTests).
PARAMETER_SETS: tuple[Mapping[str, str], ...] = (
    {},
    {"HelperMode": "named"},
    {"DeleteOrphanVolumes": "true"},
    {"DeleteExpiredSnapshots": "true"},
    {"BootTest": "Weekly", "BootTestEndpointSecurityGroupId": "sg-0123456789abcdef0"},
)

MARKER = re.compile(r"^\s*#\s*parliament:(?P<rest>.*)$")
MARKER_BODY = re.compile(
    r"^\s*(?P<issue>[A-Z][A-Z0-9_]*)(?:\s+in\s+(?P<sid>\w+))?\s+accepted:(?P<reason>.*)$"
)
CONTINUATION = re.compile(r"^\s*#\s{2,}(?P<text>\S.*)$")
RESOURCE_HEADER = re.compile(r"^  (?P<name>[A-Za-z0-9]+):\s*(?:#.*)?$")
SID = re.compile(r"""^(?P<indent>\s*)(?P<dash>-\s+)?Sid:\s*["']?(?P<sid>\w+)["']?\s*(?:#.*)?$""")


# --- parliament over one policy document ---------------------------------------------------


@dataclass(frozen=True)
class Finding:
    principal: str
    policy: str
    # The Sids of the statements the finding is about; empty for the policy as a whole.
    sids: tuple[str, ...]
    issue: str
    severity: str
    detail: str


def _text(document: Mapping[str, Any]) -> tuple[str, int]:
    """The document as JSON with one statement a line, and the line of the first statement."""
    head = [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in document.items() if k != "Statement"]
    statements = _statements(document)
    lines = ["{", *head, '"Statement": [', ",\n".join(json.dumps(s) for s in statements), "]}"]
    return "\n".join(lines), len(head) + 3


def _statements(document: Mapping[str, Any]) -> list[Any]:
    statements = document.get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def _detail(finding: Any) -> str:
    where = {
        key: value
        for key, value in finding.location.items()
        if key not in {"filepath", "line", "column"}
    }
    parts = [json.dumps(part, sort_keys=True) for part in (finding.detail, where) if part]
    return " ".join(parts)


def _analyze(document: Mapping[str, Any]) -> list[Any]:
    text, _ = _text(document)
    policy = analyze_policy_string(text, include_community_auditors=True, config=parliament.config)
    return [enhance_finding(finding) for finding in policy.findings]


def audit_document(principal: str, policy: str, document: Mapping[str, Any]) -> list[Finding]:
    """parliament's findings on one policy document, each tied to its statements' Sids."""
    statements = _statements(document)
    _, first = _text(document)
    found = []
    for finding in _analyze(document):
        index = finding.location.get("line", 0) - first
        if 0 <= index < len(statements):
            about = [statements[index]]
        else:
            # Community auditors judge the whole policy and name no line: the finding is about
            # the statements that make it on their own, else about the policy.
            about = [
                statement
                for statement in statements
                if finding.issue
                in {
                    alone.issue
                    for alone in _analyze({"Version": "2012-10-17", "Statement": [statement]})
                }
            ]
        sids = tuple(str(s["Sid"]) for s in about if isinstance(s, dict) and s.get("Sid"))
        found.append(
            Finding(principal, policy, sids, finding.issue, finding.severity, _detail(finding))
        )
    return found


# --- the markers in the template's text ----------------------------------------------------


@dataclass(frozen=True)
class Marker:
    resource: str
    sid: str | None  # None: the resource's findings that belong to no statement with a Sid
    issue: str
    reason: str
    line: int  # 1-based, in the template


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _blocks(lines: Sequence[str]) -> dict[str, range]:
    """Each resource's lines (0-based), with the comment lines right above its name."""
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "Resources:") + 1
    except StopIteration:
        return {}
    end = next(
        (i for i in range(start, len(lines)) if lines[i][:1] not in {"", " ", "#"}), len(lines)
    )
    heads = [(i, m["name"]) for i in range(start, end) if (m := RESOURCE_HEADER.match(lines[i]))]
    firsts = [_leading_comments(lines, i) for i, _ in heads]
    return {
        name: range(first, nxt)
        for (_, name), first, nxt in zip(heads, firsts, [*firsts[1:], end], strict=True)
    }


def _leading_comments(lines: Sequence[str], index: int) -> int:
    """The first of the comment lines that run up to lines[index]."""
    while index > 0 and _is_comment(lines[index - 1]):
        index -= 1
    return index


def _statement_blocks(lines: Sequence[str], block: range) -> list[tuple[str, range]]:
    """(Sid, lines) of each YAML statement in the resource: the item and the comments above."""
    found = []
    for i in block:
        match = SID.match(lines[i])
        if not match:
            continue
        item, dash = i, _indent(lines[i])
        if not match["dash"]:  # Sid is not the item's first key: find the item's dash above
            dash -= 2
            while item > block.start and not lines[item].startswith(" " * dash + "- "):
                item -= 1
        end = item + 1
        while end < block.stop and (
            not lines[end].strip() or _is_comment(lines[end]) or _indent(lines[end]) > dash
        ):
            end += 1
        while end > item + 1 and (not lines[end - 1].strip() or _is_comment(lines[end - 1])):
            end -= 1  # comments at the end lead the next item
        found.append((match["sid"], range(_leading_comments(lines, item), end)))
    return found


def _continued(line: str) -> str:
    """The text of a marker's continuation line (a comment indented past its `#`), else ''."""
    match = CONTINUATION.match(line)
    return match["text"].strip() if match else ""


def markers(text: str) -> tuple[list[Marker], list[str]]:
    """The template's markers, and what is wrong with those that cannot count."""
    lines = text.splitlines()
    blocks = _blocks(lines)
    found: list[Marker] = []
    problems: list[str] = []
    for index, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        where = f"template line {index + 1}"
        body = MARKER_BODY.match(marker["rest"])
        if not body:
            problems.append(
                f"{where}: not a marker: write `# parliament: ISSUE_CODE accepted: <reason>`"
            )
            continue
        continued = itertools.takewhile(bool, (_continued(line) for line in lines[index + 1 :]))
        reason = " ".join([body["reason"].strip(), *continued]).strip()
        if not reason:
            problems.append(f"{where}: {body['issue']} is accepted without a reason")
            continue
        resource = next((name for name, block in blocks.items() if index in block), None)
        if resource is None:
            problems.append(f"{where}: the marker is in no resource")
            continue
        sid = body["sid"] or next(
            (
                sid
                for sid, statement in _statement_blocks(lines, blocks[resource])
                if index in statement
            ),
            None,
        )
        found.append(Marker(resource, sid, body["issue"], reason, index + 1))
    return found, problems


# --- the audit -----------------------------------------------------------------------------


@dataclass
class Audit:
    # Each finding, with the parameter sets it appears under and the marker that accepts it.
    findings: dict[Finding, list[str]] = field(default_factory=dict)
    accepted: dict[Finding, Marker] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(f in self.accepted for f in self.findings)


def source(principal: str, resources: Iterable[str]) -> str:
    """The template resource a principal comes from: itself, or the one SAM named it after."""
    candidates = [name for name in resources if principal.startswith(name)]
    return max(candidates, key=len, default=principal)


def audit(
    documents: Mapping[str, Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]],
    template_text: str,
) -> Audit:
    """Audits the documents, by parameter set then principal, against the template's markers."""
    result = Audit()
    found, result.problems = markers(template_text)
    resources = _blocks(template_text.splitlines())
    used: set[Marker] = set()
    for label, principals in documents.items():
        for principal, policies in principals.items():
            for policy, document in policies:
                for finding in audit_document(principal, policy, document):
                    result.findings.setdefault(finding, []).append(label)
                    resource = source(principal, resources)
                    for marker in found:
                        if (
                            marker.resource == resource
                            and marker.issue == finding.issue
                            and (marker.sid in finding.sids if marker.sid else not finding.sids)
                        ):
                            result.accepted.setdefault(finding, marker)
                            used.add(marker)
    result.problems += [
        f"template line {m.line}: stale marker, {m.issue}"
        + (f" in {m.sid}" if m.sid else "")
        + f" of {m.resource} matches no finding"
        for m in found
        if m not in used
    ]
    return result


def _label(parameters: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items()) or "default parameters"


def report(result: Audit, labels: Sequence[str]) -> str:
    lines = []
    for finding, under in result.findings.items():
        marker = result.accepted.get(finding)
        verdict = f"accepted (line {marker.line}): {marker.reason}" if marker else "NOT ACCEPTED"
        only = "" if len(set(under)) == len(labels) else f" [{', '.join(under)} only]"
        lines.append(
            f"{finding.principal} {'/'.join(finding.sids) or '(policy ' + finding.policy + ')'}: "
            f"{finding.issue} ({finding.severity}) {finding.detail}{only}\n    {verdict}"
        )
    lines += result.problems
    unaccepted = sum(f not in result.accepted for f in result.findings)
    lines.append(
        f"parliament {parliament.__version__} with its community auditors, "
        f"{' and '.join(labels)}: {len(result.findings)} findings, "
        f"{len(result.accepted)} accepted, {unaccepted} not, "
        f"{len(result.problems)} marker problems"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    documents = {
        _label(parameters): Stack(parameters, path=args.template).policy_documents()
        for parameters in PARAMETER_SETS
    }
    result = audit(documents, args.template.read_text(encoding="utf-8"))
    print(report(result, list(documents)))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
