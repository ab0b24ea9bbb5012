"""The disk tool's PowerShell (DiskToolDocument in template.yaml) keeps the rules that make it
safe to run on a helper (docs/disk-tool.md).

No PowerShell runs here, so these are static checks of the script's text and of its syntax tree
(tree-sitter-powershell). Each check is a function returning the problems it finds, and each is
shown to find the problem in a small script that breaks its rule.
"""

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
import tree_sitter_powershell
from cfnlint.decode import cfn_yaml

from vss_restore.logic import disk_tool
from vss_restore.logic.disk_tool import PARAMETER_PATTERNS

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))

# SSM pastes `{{ Name }}` (spaces optional) into the script as text.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PARAMETER_ASSIGNMENT = re.compile(r"^\$(?P<var>[A-Za-z]\w*) = '\{\{ (?P<name>[A-Za-z]\w*) \}\}'$")
# Verbs of cmdlets that change something; none may run on what Get-Disk lists.
CHANGING = re.compile(
    r"^(Set|Initialize|Clear|Remove|New|Update|Resize|Format|Repair|Reset|Enable|Disable"
    r"|Add|Mount|Dismount|Optimize)-",
    re.IGNORECASE,
)
# The report nests three levels (report -> shadow_copies -> one shadow copy): Windows
# PowerShell's default depth of 2 would turn the innermost objects into strings.
MIN_JSON_DEPTH = 4


# --- reading the script ----------------------------------------------------------------------


def _tree(script: str) -> tree_sitter.Tree:
    return _PARSER.parse(script.encode("utf-8"))


def _nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _nodes(child)


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def _top_statements(script: str) -> list[tree_sitter.Node]:
    """The script's top-level statements, comments left out."""
    lists = [c for c in _tree(script).root_node.children if c.type == "statement_list"]
    return [s for s in (lists[0].children if lists else []) if s.type not in ("comment", ";")]


def _command_name(command: tree_sitter.Node) -> str:
    """`Get-Disk` for `Get-Disk ...`, `diskshadow.exe` for `& diskshadow.exe ...`."""
    for child in command.children:
        if child.type == "command_name":
            return _text(child)
        if child.type == "command_name_expr":
            names = [c for c in child.children if c.type == "command_name"]
            return _text(names[0]) if names else ""
    return ""


def _commands(node: tree_sitter.Node, name: str = "") -> list[tree_sitter.Node]:
    """The commands in node (itself included), only those called name if given."""
    return [
        n
        for n in _nodes(node)
        if n.type == "command" and (not name or _command_name(n).lower() == name.lower())
    ]


def _changing_commands(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [c for c in _commands(node) if CHANGING.match(_command_name(c))]


def _parameters(command: tree_sitter.Node) -> set[str]:
    return {
        _text(p).split(":")[0].lower()
        for p in _nodes(command)
        if p.type == "command_parameter" and _enclosing_command(p) == command
    }


def _enclosing_command(node: tree_sitter.Node) -> tree_sitter.Node | None:
    parent = node.parent
    while parent is not None and parent.type != "command":
        parent = parent.parent
    return parent


def _in_own_scope(node: tree_sitter.Node) -> bool:
    """Inside a function or script block, which has its own variable scope."""
    parent = node.parent
    while parent is not None:
        if parent.type in ("function_statement", "script_block_expression"):
            return True
        parent = parent.parent
    return False


# --- the checks --------------------------------------------------------------------------------


def syntax_problems(script: str) -> list[str]:
    problems = []
    pending = [_tree(script).root_node]
    while pending:
        node = pending.pop()
        if node.is_missing:
            problems.append(f"line {_line(node)}: missing {node.type!r}")
        elif node.is_error:
            problems.append(f"line {_line(node)}: syntax error at {_text(node)[:40]!r}")
        elif node.has_error:
            pending.extend(node.children)
    return problems


def encoding_problems(script: str) -> list[str]:
    """ASCII only: Windows PowerShell reads a script file without a BOM as ANSI."""
    return [
        f"line {number}: not ASCII: {line.strip()[:40]!r}"
        for number, line in enumerate(script.split("\n"), 1)
        if not line.isascii()
    ]


def placeholder_problems(script: str, declared: Collection[str]) -> list[str]:
    """Each parameter is pasted exactly once, into `$Name = '{{ Name }}'` at the very top."""
    problems = []
    head = []
    for line in script.split("\n"):
        match = PARAMETER_ASSIGNMENT.match(line)
        if match is None:
            break
        head.append(match)
        if match["var"] != match["name"]:
            problems.append(f"${match['var']} holds {match['name']}: call it ${match['name']}")
    used = [m.group(1) for m in PLACEHOLDER.finditer(script)]
    for name in sorted(set(used) - set(declared)):
        problems.append(f"{{{{ {name} }}}} is not a declared parameter")
    for name in sorted(declared):
        if used.count(name) != 1:
            problems.append(f"parameter {name} is pasted {used.count(name)} times, not once")
    for name in sorted(set(used) - {m["name"] for m in head}):
        problems.append(f"parameter {name} is pasted outside the quoted assignments at the top")
    if "{{" in PLACEHOLDER.sub("", script):
        problems.append("'{{' outside a placeholder: SSM may read it as one")
    return problems


def pattern_problems(parameters: Mapping[str, Any]) -> list[str]:
    """Every parameter is a String whose allowedPattern is the one Python checks values with."""
    problems = []
    for name in sorted(set(parameters) | set(PARAMETER_PATTERNS)):
        if name not in parameters:
            problems.append(f"{name} is in disk_tool.PARAMETER_PATTERNS but not declared")
            continue
        if name not in PARAMETER_PATTERNS:
            problems.append(f"{name} is declared but not in disk_tool.PARAMETER_PATTERNS")
            continue
        parameter = parameters[name]
        pattern = parameter.get("allowedPattern")
        if parameter.get("type") != "String":
            problems.append(f"{name} is a {parameter.get('type')}, not a String")
        if pattern is None:
            problems.append(f"{name} has no allowedPattern")
        elif pattern != PARAMETER_PATTERNS[name]:
            problems.append(f"{name}: allowedPattern {pattern!r} != {PARAMETER_PATTERNS[name]!r}")
        elif "default" in parameter and not re.fullmatch(pattern, str(parameter["default"])):
            problems.append(f"{name}: default {parameter['default']!r} breaks its pattern")
    return problems


def error_action_problems(script: str) -> list[str]:
    """`$ErrorActionPreference = 'Stop'` before anything runs, never weakened in script scope."""
    problems = []
    stop = re.compile(r"\$ErrorActionPreference\s*=\s*'Stop'", re.IGNORECASE)
    for statement in _top_statements(script):
        if stop.fullmatch(_text(statement)):
            break
        if not PARAMETER_ASSIGNMENT.match(_text(statement)):
            problems.append(
                f"line {_line(statement)}: {_text(statement).splitlines()[0][:40]!r} runs "
                "before $ErrorActionPreference = 'Stop'"
            )
            break
    else:
        problems.append("$ErrorActionPreference = 'Stop' is never set at the top")
    for node in _nodes(_tree(script).root_node):
        if (
            node.type == "assignment_expression"
            and _text(node.children[0]).lower() == "$erroractionpreference"
            and not stop.fullmatch(_text(node))
            and not _in_own_scope(node)
        ):
            problems.append(f"line {_line(node)}: {_text(node)!r} changes it for the whole script")
    return problems


def json_problems(script: str) -> list[str]:
    """The report goes through ConvertTo-Json, always compressed to one line and deep enough."""
    calls = _commands(_tree(script).root_node, "ConvertTo-Json")
    if not calls:
        return ["ConvertTo-Json is never called: there is no report"]
    problems = []
    for call in calls:
        depth = re.search(r"-Depth[:\s]\s*(\d+)", _text(call), re.IGNORECASE)
        if "-depth" not in _parameters(call) or depth is None:
            problems.append(f"line {_line(call)}: ConvertTo-Json without -Depth <number>")
        elif int(depth.group(1)) < MIN_JSON_DEPTH:
            problems.append(f"line {_line(call)}: -Depth {depth.group(1)} is too shallow")
        if "-compress" not in _parameters(call):
            problems.append(f"line {_line(call)}: ConvertTo-Json without -Compress")
    return problems


def exit_problems(script: str) -> list[str]:
    """Only `exit 0` and `exit 1`, the last statement is one, and no child's exit code is read."""
    problems = []
    exits = re.compile(r"exit\s+[01]", re.IGNORECASE)
    for node in _nodes(_tree(script).root_node):
        if node.type == "flow_control_statement" and _text(node.children[0]).lower() == "exit":
            if not exits.fullmatch(_text(node)):
                problems.append(f"line {_line(node)}: {_text(node)!r}: only exit 0 or exit 1")
        elif node.type == "variable" and _text(node).lower() == "$lastexitcode":
            problems.append(f"line {_line(node)}: reads $LASTEXITCODE (3010 reboots the instance)")
        elif node.type == "member_name" and _text(node).lower() in ("exit", "setshouldexit"):
            problems.append(f"line {_line(node)}: exits through .{_text(node)}()")
    statements = _top_statements(script)
    if not statements or not exits.fullmatch(_text(statements[-1])):
        problems.append("the script does not end with exit 0 or exit 1")
    return problems


def disk_pipeline_problems(script: str) -> list[str]:
    """Nothing that changes disks runs on Get-Disk's list; Set-Disk names its one disk by number."""
    problems = []
    root = _tree(script).root_node
    for node in _nodes(root):
        if node.type == "pipeline_chain":
            stages = [c for c in node.children if c.type != "|"]
            listed = [i for i, stage in enumerate(stages) if _commands(stage, "Get-Disk")]
            for stage in stages[listed[0] + 1 :] if listed else []:
                problems += [
                    f"line {_line(c)}: Get-Disk piped into {_command_name(c)}"
                    for c in _changing_commands(stage)
                ]
        elif node.type == "foreach_statement":
            source = [c for c in node.children if c.type == "pipeline"]
            body = [c for c in node.children if c.type == "statement_block"]
            if source and body and _commands(source[0], "Get-Disk"):
                problems += [
                    f"line {_line(c)}: {_command_name(c)} in a loop over Get-Disk"
                    for c in _changing_commands(body[0])
                ]
    for command in _commands(root, "Set-Disk"):
        if "-number" not in _parameters(command):
            problems.append(f"line {_line(command)}: Set-Disk without -Number")
        chain = command.parent
        if chain is not None and chain.type == "pipeline_chain" and chain.children[0] != command:
            problems.append(f"line {_line(command)}: Set-Disk takes its disk from a pipeline")
    return problems


SCRIPT_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "syntax": syntax_problems,
    "encoding": encoding_problems,
    "error_action": error_action_problems,
    "json": json_problems,
    "exit": exit_problems,
    "disk_pipeline": disk_pipeline_problems,
}


# --- the disk tool in template.yaml ------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    resource = cfn_yaml.load(str(TEMPLATE))["Resources"]["DiskToolDocument"]
    assert resource["Type"] == "AWS::SSM::Document"
    content: dict[str, Any] = resource["Properties"]["Content"]
    return content


@pytest.fixture(scope="module")
def script(document: dict[str, Any]) -> str:
    steps = document["mainSteps"]
    assert [(s["action"], s["name"]) for s in steps] == [("aws:runPowerShellScript", "DiskTool")]
    commands = steps[0]["inputs"]["runCommand"]
    assert len(commands) == 1, "one block of script, so that line numbers mean something"
    return str(commands[0])


@pytest.mark.parametrize("check", sorted(SCRIPT_CHECKS))
def test_disk_tool_keeps_the_rule(script: str, check: str) -> None:
    assert SCRIPT_CHECKS[check](script) == []


def test_disk_tool_pastes_each_parameter_once_at_the_top(
    script: str, document: dict[str, Any]
) -> None:
    assert placeholder_problems(script, document["parameters"]) == []


def test_document_parameters_have_the_patterns_python_checks(document: dict[str, Any]) -> None:
    assert pattern_problems(document["parameters"]) == []


# Every field disk_tool.parse_report reads; a misspelt one would only show on a real instance.
REPORT_FIELDS = sorted(
    {"schema", "action", "volume_id", "ok", "error", "disk"}
    | set(disk_tool._DISK_FIELDS)
    | set(disk_tool._PARTITION_FIELDS)
    | set(disk_tool._SHADOW_FIELDS)
    | {field for fields in disk_tool._ACTION_FIELDS.values() for field in fields}
)


def report_field_problems(script: str) -> list[str]:
    """Each field of the report is set by name (`name = ...` or `$report.name = ...`)."""
    return [
        f"the script never sets report field {field}"
        for field in REPORT_FIELDS
        if not re.search(rf"(?<![\w$-]){field}\s*=[^=]", script)
    ]


def test_disk_tool_sets_every_report_field(script: str) -> None:
    assert report_field_problems(script) == []


def test_the_report_field_check_catches_a_misspelt_field(script: str) -> None:
    assert "was_read_only = " in script
    assert report_field_problems(script.replace("was_read_only = ", "was_readonly = ")) != []


# --- each check catches a script that breaks its rule -----------------------------------------

MINIMAL_PARAMETERS = ("Action", "VolumeId")
MINIMAL = """\
$Action = '{{ Action }}'
$VolumeId = '{{ VolumeId }}'
# A comment.
$ErrorActionPreference = 'Stop'
$report = [ordered]@{ ok = $false; error = $null }
try {
    $disk = Get-Disk -Number 1
    Set-Disk -Number $disk.Number -IsOffline $false
    $output = & { $ErrorActionPreference = 'Continue'; & diskshadow.exe /s x.dsh 2>&1 }
} catch {
    $report.error = $_.Exception.Message
}
$report.ok = ($null -eq $report.error)
Write-Output (ConvertTo-Json -InputObject $report -Compress -Depth 8)
if ($report.ok) { exit 0 }
exit 1
"""
SET_DISK = "Set-Disk -Number $disk.Number -IsOffline $false"
REPORT_LINE = "$report = [ordered]@{ ok = $false; error = $null }"
TO_JSON = "Write-Output (ConvertTo-Json -InputObject $report -Compress -Depth 8)"

BROKEN = [
    # (id, check, text in MINIMAL, replacement)
    ("unclosed-paren", "syntax", TO_JSON, TO_JSON[:-1]),
    ("unclosed-brace", "syntax", "if ($report.ok) { exit 0 }", "if ($report.ok) { exit 0"),
    ("non-ascii", "encoding", "# A comment.", "# A comment \u2014 with a dash."),
    ("double-quotes", "placeholders", "$Action = '{{ Action }}'", '$Action = "{{ Action }}"'),
    ("pasted-twice", "placeholders", REPORT_LINE, REPORT_LINE + "\n$a = '{{ Action }}'"),
    ("undeclared", "placeholders", REPORT_LINE, REPORT_LINE + "\n$Force = '{{ Force }}'"),
    ("unused", "placeholders", "$VolumeId = '{{ VolumeId }}'\n", ""),
    ("renamed", "placeholders", "$VolumeId = '{{", "$Volume = '{{"),
    (
        "not-at-top",
        "placeholders",
        "$VolumeId = '{{ VolumeId }}'\n# A comment.\n$ErrorActionPreference = 'Stop'\n",
        "# A comment.\n$ErrorActionPreference = 'Stop'\n$VolumeId = '{{ VolumeId }}'\n",
    ),
    ("stray-braces", "placeholders", REPORT_LINE, REPORT_LINE + "\n$f = '{{{0}}}' -f 1"),
    ("lone-braces", "placeholders", REPORT_LINE, REPORT_LINE + "\n$f = '{{'"),
    ("no-stop", "error_action", "$ErrorActionPreference = 'Stop'\n", ""),
    ("stop-too-late", "error_action", "# A comment.", "Import-Module Storage"),
    ("weakened", "error_action", "try {\n", "try {\n    $ErrorActionPreference = 'Continue'\n"),
    ("no-depth", "json", " -Depth 8)", ")"),
    ("shallow", "json", "-Depth 8", "-Depth 2"),
    ("not-compressed", "json", "-Compress ", ""),
    ("piped-no-depth", "json", TO_JSON, "$report | ConvertTo-Json -Compress"),
    ("no-report", "json", TO_JSON, "Write-Output $report"),
    ("passthrough", "exit", "\nexit 1\n", "\nexit $LastExitCode\n"),
    ("reboot-code", "exit", "{ exit 0 }", "{ exit 3010 }"),
    ("bare-exit", "exit", "{ exit 0 }", "{ exit }"),
    ("environment-exit", "exit", "\nexit 1\n", "\n[Environment]::Exit(1)\n"),
    ("reads-exit-code", "exit", "2>&1 }\n", "2>&1 }\n    if ($LASTEXITCODE) { throw 'failed' }\n"),
    ("falls-off-the-end", "exit", "\nexit 1\n", "\n"),
    ("piped", "disk_pipeline", SET_DISK, "Get-Disk | Set-Disk -IsOffline $false"),
    (
        "piped-loop",
        "disk_pipeline",
        SET_DISK,
        "Get-Disk | Where-Object IsOffline | ForEach-Object { Set-Disk -Number $_.Number }",
    ),
    (
        "foreach-loop",
        "disk_pipeline",
        SET_DISK,
        "foreach ($d in Get-Disk) { Set-Disk -Number $d.Number -IsOffline $false }",
    ),
    ("piped-initialize", "disk_pipeline", SET_DISK, "Get-Disk | Initialize-Disk"),
    ("no-number", "disk_pipeline", SET_DISK, "$disk | Set-Disk -IsOffline $false"),
]


def _run(check: str, script: str) -> list[str]:
    if check == "placeholders":
        return placeholder_problems(script, MINIMAL_PARAMETERS)
    return SCRIPT_CHECKS[check](script)


@pytest.mark.parametrize("check", [*sorted(SCRIPT_CHECKS), "placeholders"])
def test_the_minimal_script_passes(check: str) -> None:
    assert _run(check, MINIMAL) == []


@pytest.mark.parametrize(
    ("check", "old", "new"), [pytest.param(*case[1:], id=case[0]) for case in BROKEN]
)
def test_the_check_catches_a_broken_script(check: str, old: str, new: str) -> None:
    assert MINIMAL.count(old) == 1, f"{old!r} must occur once in MINIMAL"
    assert _run(check, MINIMAL.replace(old, new)) != []


def _parameters_with(name: str, **changes: Any) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        n: {"type": "String", "allowedPattern": p} for n, p in PARAMETER_PATTERNS.items()
    }
    parameters[name] = {**parameters[name], **changes}
    return {n: {k: v for k, v in p.items() if v is not None} for n, p in parameters.items()}


def test_the_pattern_check_passes_the_patterns_python_uses() -> None:
    assert pattern_problems(_parameters_with("Action")) == []


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param(_parameters_with("VolumeId", allowedPattern=None), id="no-pattern"),
        pytest.param(_parameters_with("VolumeId", allowedPattern="^vol-.*$"), id="other-pattern"),
        pytest.param(_parameters_with("DiskNumber", default="none"), id="bad-default"),
        pytest.param(_parameters_with("ShadowCopyIds", type="StringList"), id="string-list"),
        pytest.param(
            {**_parameters_with("Action"), "Force": {"type": "String", "allowedPattern": "^x$"}},
            id="undeclared-in-python",
        ),
        pytest.param(
            {n: p for n, p in _parameters_with("Action").items() if n != "DiskIdentity"},
            id="missing",
        ),
    ],
)
def test_the_pattern_check_catches_bad_parameters(parameters: dict[str, Any]) -> None:
    assert pattern_problems(parameters) != []


# --- the patterns keep the quotes closed -------------------------------------------------------

VALID = {
    "Action": ["Inspect", "Revert"],
    "VolumeId": ["vol-0a4064b3", "vol-0a4064b39e5f534a2"],
    "DiskNumber": ["", "2", "127"],
    "ShadowCopyIds": [
        "",
        "{6f1e0e7a-1111-4c5d-9e8f-000000000001}",
        "{6f1e0e7a-1111-4c5d-9e8f-000000000001},{6f1e0e7a-1111-4c5d-9e8f-000000000002}",
    ],
    "DiskIdentity": ["", "0x1A2B3C4D", "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"],
}
# PowerShell ends a single-quoted string at any of these quote characters.
QUOTES = ["'", "\u2018", "\u2019", "\u201a", "\u201b", "\n"]


@pytest.mark.parametrize("name", sorted(PARAMETER_PATTERNS))
def test_no_allowed_value_can_close_the_single_quotes(name: str) -> None:
    pattern = PARAMETER_PATTERNS[name]
    for value in VALID[name]:
        assert re.fullmatch(pattern, value), value
        for quote in QUOTES:
            for at in range(len(value) + 1):
                assert not re.fullmatch(pattern, value[:at] + quote + value[at:])
