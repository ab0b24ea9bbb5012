"""Static checks of the PowerShell in our SSM documents: each returns the problems it finds.

No PowerShell runs here, so these read the script's text and its syntax tree
(tree-sitter-powershell). The disk tool's and the backup's tests share them.
"""

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import tree_sitter
import tree_sitter_powershell

from vss_restore.logic.disk_tool import PARAMETER_PATTERNS

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
# $LASTEXITCODE however written: $LastExitCode, $global:LASTEXITCODE, ${global:LASTEXITCODE}.
EXIT_CODE_VARIABLE = re.compile(
    r"(\$\{?)?((global|script|local|private):)?lastexitcode\}?", re.IGNORECASE
)
# The one function that runs the operator's validation script (a child powershell.exe -File).
VALIDATION_RUNNER = "Invoke-ValidationScript"
# Its refusal of a script non-administrators could change (issue #14, finding 11).
TRUSTED_SCRIPT_CHECK = "Assert-TrustedScript"
# The only places where a child's exit code is read, each into data (the report, a comparison):
# the validation script's, chkdsk's (the read-only scan), vssadmin query reverts'.
EXIT_CODE_READERS = {VALIDATION_RUNNER.lower(), "invoke-volumescan", "get-revertlisting"}
# Repair-Volume's only allowed form: -Path <volume> -Scan. -SpotFix and -OfflineScanAndFix
# repair (write to) the volume, and a check must not change the disk.
REPAIR_PARAMETERS = {"-path", "-scan"}
# The disk is found once (by serial, or by the number Inspect gave, in NUMBER_LOOKUP); from
# then on it is named by its UniqueId, through these two functions only.
GET_OUR_DISK = "Get-OurDisk"
SET_OUR_DISK = "Set-OurDisk"
NUMBER_LOOKUP = "Get-RequestedDisk"
# Held around every action: the SSM agent runs up to 5 commands at once on a helper.
MUTEX_NAME = "Global\\vss-restore-disktool"
# What looks at or changes disks and shadow copies: only under the mutex.
DISK_COMMANDS = {
    "get-disk",
    "set-disk",
    "get-partition",
    "get-volume",
    "get-ciminstance",
    "repair-volume",
    "diskshadow.exe",
    "diskshadow",
    "update-hoststoragecache",
}


# --- reading the script ----------------------------------------------------------------------


def parse_tree(script: str) -> tree_sitter.Tree:
    return _PARSER.parse(script.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def node_text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def _line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def _top_statements(script: str) -> list[tree_sitter.Node]:
    """The script's top-level statements, comments left out."""
    lists = [c for c in parse_tree(script).root_node.children if c.type == "statement_list"]
    return [s for s in (lists[0].children if lists else []) if s.type not in ("comment", ";")]


def _command_name(command: tree_sitter.Node) -> str:
    """`Get-Disk` for `Get-Disk ...`, `diskshadow.exe` for `& diskshadow.exe ...`."""
    for child in command.children:
        if child.type == "command_name":
            return node_text(child)
        if child.type == "command_name_expr":
            names = [c for c in child.children if c.type == "command_name"]
            return node_text(names[0]) if names else ""
    return ""


def commands_named(node: tree_sitter.Node, name: str = "") -> list[tree_sitter.Node]:
    """The commands in node (itself included), only those called name if given."""
    return [
        n
        for n in walk(node)
        if n.type == "command" and (not name or _command_name(n).lower() == name.lower())
    ]


def command_names(script: str) -> list[str]:
    """Every command the script calls, in order (`Get-Module`, `Write-Output`, ...)."""
    return [_command_name(c) for c in commands_named(parse_tree(script).root_node)]


def _changing_commands(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [c for c in commands_named(node) if CHANGING.match(_command_name(c))]


def _parameters(command: tree_sitter.Node) -> set[str]:
    return {
        node_text(p).split(":")[0].lower()
        for p in walk(command)
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


def _function_name(node: tree_sitter.Node) -> str:
    """The name of the function node is in, "" at script level."""
    parent = node.parent
    while parent is not None and parent.type != "function_statement":
        parent = parent.parent
    names = [c for c in parent.children if c.type == "function_name"] if parent else []
    return node_text(names[0]) if names else ""


def _functions(node: tree_sitter.Node, name: str) -> list[tree_sitter.Node]:
    return [
        n
        for n in walk(node)
        if n.type == "function_statement"
        and any(
            c.type == "function_name" and node_text(c).lower() == name.lower() for c in n.children
        )
    ]


def _ancestors(node: tree_sitter.Node, top: tree_sitter.Node) -> list[tree_sitter.Node]:
    """node's parents up to (not including) top."""
    found = []
    parent = node.parent
    while parent is not None and parent != top:
        found.append(parent)
        parent = parent.parent
    return found


def _assigned_to(node: tree_sitter.Node) -> bool:
    """node is (in) the left side of an assignment: written, not read."""
    parent = node.parent
    while parent is not None and parent.type != "assignment_expression":
        if parent.type == "left_assignment_expression":
            return True
        parent = parent.parent
    return False


def _invocation_operator(command: tree_sitter.Node) -> str:
    """`&` or `.` for `& x` / `. x`, "" for a plain command."""
    operators = [c for c in command.children if c.type == "command_invokation_operator"]
    return node_text(operators[0]) if operators else ""


def _elements(command: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The command's parameters, arguments and non-blank separators (`:` of `-Scan:$false`)."""
    found = []
    for elements in (c for c in command.children if c.type == "command_elements"):
        found += [e for e in elements.children if node_text(e).strip()]
    return found


# --- the checks --------------------------------------------------------------------------------


def syntax_problems(script: str) -> list[str]:
    problems = []
    pending = [parse_tree(script).root_node]
    while pending:
        node = pending.pop()
        if node.is_missing:
            problems.append(f"line {_line(node)}: missing {node.type!r}")
        elif node.is_error:
            problems.append(f"line {_line(node)}: syntax error at {node_text(node)[:40]!r}")
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
        if stop.fullmatch(node_text(statement)):
            break
        if not PARAMETER_ASSIGNMENT.match(node_text(statement)):
            problems.append(
                f"line {_line(statement)}: {node_text(statement).splitlines()[0][:40]!r} runs "
                "before $ErrorActionPreference = 'Stop'"
            )
            break
    else:
        problems.append("$ErrorActionPreference = 'Stop' is never set at the top")
    for node in walk(parse_tree(script).root_node):
        if (
            node.type == "assignment_expression"
            and node_text(node.children[0]).lower() == "$erroractionpreference"
            and not stop.fullmatch(node_text(node))
            and not _in_own_scope(node)
        ):
            problems.append(
                f"line {_line(node)}: {node_text(node)!r} changes it for the whole script"
            )
    return problems


def json_problems(script: str) -> list[str]:
    """The report goes through ConvertTo-Json, always compressed to one line and deep enough."""
    calls = commands_named(parse_tree(script).root_node, "ConvertTo-Json")
    if not calls:
        return ["ConvertTo-Json is never called: there is no report"]
    problems = []
    for call in calls:
        depth = re.search(r"-Depth[:\s]\s*(\d+)", node_text(call), re.IGNORECASE)
        if "-depth" not in _parameters(call) or depth is None:
            problems.append(f"line {_line(call)}: ConvertTo-Json without -Depth <number>")
        elif int(depth.group(1)) < MIN_JSON_DEPTH:
            problems.append(f"line {_line(call)}: -Depth {depth.group(1)} is too shallow")
        if "-compress" not in _parameters(call):
            problems.append(f"line {_line(call)}: ConvertTo-Json without -Compress")
    return problems


def exit_problems(script: str) -> list[str]:
    """Only `exit 0` and `exit 1`, in the script's own scope, the last statement is one, and a
    child's exit code is read only where the validation script's goes into the report.

    With every exit a literal 0 or 1, no exit code read from a child (DiskShadow, the
    operator's validation script) can reach `exit`: 3010 would make the SSM agent reboot the
    helper and run the script again.
    """
    problems = []
    exits = re.compile(r"exit\s+[01]", re.IGNORECASE)
    for node in walk(parse_tree(script).root_node):
        if node.type == "flow_control_statement" and node_text(node.children[0]).lower() == "exit":
            if not exits.fullmatch(node_text(node)):
                problems.append(f"line {_line(node)}: {node_text(node)!r}: only exit 0 or exit 1")
            elif _in_own_scope(node):
                problems.append(
                    f"line {_line(node)}: exit inside a function or script block ends the "
                    "script before the report"
                )
        elif (
            node.type in ("variable", "generic_token")
            and EXIT_CODE_VARIABLE.fullmatch(node_text(node))
            and not _assigned_to(node)
            and _function_name(node).lower() not in EXIT_CODE_READERS
        ):
            problems.append(
                f"line {_line(node)}: reads {node_text(node)} outside {VALIDATION_RUNNER} "
                "and the other readers of exit codes (3010 reboots the instance)"
            )
        elif node.type == "member_name" and node_text(node).lower() in ("exit", "setshouldexit"):
            problems.append(f"line {_line(node)}: exits through .{node_text(node)}()")
    statements = _top_statements(script)
    if not statements or not exits.fullmatch(node_text(statements[-1])):
        problems.append("the script does not end with exit 0 or exit 1")
    return problems


def disk_pipeline_problems(script: str) -> list[str]:
    """Nothing that changes disks runs on Get-Disk's list; Set-Disk names one disk by UniqueId."""
    problems = []
    root = parse_tree(script).root_node
    for node in walk(root):
        if node.type == "pipeline_chain":
            stages = [c for c in node.children if c.type != "|"]
            listed = [i for i, stage in enumerate(stages) if commands_named(stage, "Get-Disk")]
            for stage in stages[listed[0] + 1 :] if listed else []:
                problems += [
                    f"line {_line(c)}: Get-Disk piped into {_command_name(c)}"
                    for c in _changing_commands(stage)
                ]
        elif node.type == "foreach_statement":
            source = [c for c in node.children if c.type == "pipeline"]
            body = [c for c in node.children if c.type == "statement_block"]
            if source and body and commands_named(source[0], "Get-Disk"):
                problems += [
                    f"line {_line(c)}: {_command_name(c)} in a loop over Get-Disk"
                    for c in _changing_commands(body[0])
                ]
    for command in commands_named(root, "Set-Disk"):
        if "-uniqueid" not in _parameters(command) or "-number" in _parameters(command):
            problems.append(f"line {_line(command)}: Set-Disk not by -UniqueId")
        chain = command.parent
        if chain is not None and chain.type == "pipeline_chain" and chain.children[0] != command:
            problems.append(f"line {_line(command)}: Set-Disk takes its disk from a pipeline")
    return problems


def repair_problems(script: str) -> list[str]:
    """The scan is `Repair-Volume -Path <volume> -Scan` and nothing that repairs.

    -SpotFix and -OfflineScanAndFix (and abbreviations such as -Spot, which PowerShell accepts)
    write to the volume, and chkdsk or MSFT_Volume.Repair called directly can. Parameters are
    checked against an allowlist and may not be splatted, so that no other spelling slips by.
    """
    problems = []
    root = parse_tree(script).root_node
    calls = commands_named(root, "Repair-Volume")
    if not calls:
        problems.append("Repair-Volume is never called: Check scans nothing")
    for call in calls:
        where = f"line {_line(call)}: {node_text(call)!r}"
        elements = _elements(call)
        names = [node_text(e).lower() for e in elements if e.type == "command_parameter"]
        if "-scan" not in names:
            problems.append(f"{where}: without -Scan")
        for name in sorted(set(names) - REPAIR_PARAMETERS):
            problems.append(f"{where}: {name} (only -Path and -Scan: a check changes nothing)")
        for before, element in zip([None, *elements], elements, strict=False):
            if element.type == "command_argument_sep":
                problems.append(f"{where}: a parameter given a value with ':'")
            elif any(n.type == "variable" and node_text(n).startswith("@") for n in walk(element)):
                problems.append(f"{where}: splatted parameters cannot be checked")
            elif element.type != "command_parameter" and (
                before is None or node_text(before).lower() != "-path"
            ):
                problems.append(f"{where}: {node_text(element)!r} is not the value of -Path")
    for command in commands_named(root):
        name = _command_name(command).lower()
        if name in ("chkdsk", "chkdsk.exe"):
            # Only its read-only mode: one argument, the volume, and no switch (/f, /r, /x,
            # /scan, /spotfix... all may write). Issue #14, finding 5.
            arguments = [
                e
                for e in _elements(command)
                if e.type != "command_argument_sep" and "redirection" not in e.type
            ]
            texts = [node_text(e) for e in arguments]
            if (
                len(arguments) != 1
                or any("/" in t or t.startswith("-") or t.startswith("@") for t in texts)
                or not texts[0].startswith("$")
            ):
                problems.append(
                    f"line {_line(command)}: {node_text(command)!r}: chkdsk only as "
                    "`chkdsk.exe $volume` (read-only mode, no switch)"
                )
        elif (
            name in ("invoke-cimmethod", "invoke-wmimethod")
            and "repair" in node_text(command).lower()
        ):
            problems.append(f"line {_line(command)}: MSFT_Volume.Repair called directly")
    for node in walk(root):
        if node.type == "member_name" and node_text(node).lower() == "repair":
            problems.append(f"line {_line(node)}: .Repair() called directly")
    return problems


def validation_problems(script: str) -> list[str]:
    """The operator's script must exist, and runs in a child scope with all its output captured.

    Never dot-sourced (nothing is): in our scope it could overwrite $report and what finally
    needs to put the disk back. Its exit code is read only in VALIDATION_RUNNER (exit_problems).
    """
    problems = []
    root = parse_tree(script).root_node
    for command in commands_named(root):
        if _invocation_operator(command) == ".":
            problems.append(f"line {_line(command)}: {node_text(command)!r} is dot-sourced")
    runners = _functions(root, VALIDATION_RUNNER)
    if len(runners) != 1:
        problems.append(f"{len(runners)} functions {VALIDATION_RUNNER}, expected one")
    for runner in runners:
        # A child process (issue #14, finding 11): in our own, its [Environment]::Exit(3010)
        # would end the disk tool with 3010, and the SSM agent would reboot the helper.
        calls = [
            c
            for c in commands_named(runner)
            if _invocation_operator(c) == "&"
            and any(n.type == "script_block_expression" for n in _ancestors(c, runner))
        ]
        if not calls:
            problems.append(
                f"{VALIDATION_RUNNER} does not run the script with & inside a script block"
            )
        for call in calls:
            text = node_text(call)
            if not re.search(r"\*>&1\s*$", text):
                problems.append(f"line {_line(call)}: {text!r} does not capture *>&1")
            if not re.search(r"-File\s+\$Path\b", text, re.IGNORECASE):
                problems.append(
                    f"line {_line(call)}: {text!r} does not run the script as a child "
                    "powershell.exe -File $Path"
                )
        if "powershell.exe" not in node_text(runner).lower():
            problems.append(f"{VALIDATION_RUNNER} does not start powershell.exe")
    if not commands_named(root, VALIDATION_RUNNER):
        problems.append(f"{VALIDATION_RUNNER} is never called")
    checked = [
        c
        for c in commands_named(root, "Test-Path")
        if "-literalpath" in _parameters(c) and "$validationscript" in node_text(c).lower()
    ]
    if not checked:
        problems.append("Test-Path -LiteralPath $ValidationScript is never called")
    trusted = [
        c
        for c in commands_named(root, TRUSTED_SCRIPT_CHECK)
        if "$validationscript" in node_text(c).lower()
    ]
    runs = commands_named(root, VALIDATION_RUNNER)
    if not trusted:
        problems.append(f"{TRUSTED_SCRIPT_CHECK} $ValidationScript is never called")
    elif runs and trusted[0].start_byte > runs[0].start_byte:
        problems.append(f"{TRUSTED_SCRIPT_CHECK} comes after the script runs")
    return problems


def disk_identity_problems(script: str) -> list[str]:
    """After the one look by number, a disk is named by its UniqueId and re-checked by serial.

    Disk numbers are reused once a disk is detached, and the cleanup may force-detach ours
    while the script runs (issue #14, finding 2): every Set-Disk lives in SET_OUR_DISK, which
    calls GET_OUR_DISK (Get-Disk -UniqueId, the serial number compared, a throw) first.
    """
    problems = []
    root = parse_tree(script).root_node
    for command in commands_named(root, "Set-Disk"):
        if _function_name(command).lower() != SET_OUR_DISK.lower():
            problems.append(f"line {_line(command)}: Set-Disk outside {SET_OUR_DISK}")
        if "-uniqueid" not in _parameters(command):
            problems.append(f"line {_line(command)}: Set-Disk not by -UniqueId")
    for command in commands_named(root, "Get-Disk"):
        if "-number" in _parameters(command) and _function_name(command).lower() != (
            NUMBER_LOOKUP.lower()
        ):
            problems.append(f"line {_line(command)}: Get-Disk -Number outside {NUMBER_LOOKUP}")
    for command in commands_named(root):
        if "-disknumber" in _parameters(command):
            problems.append(f"line {_line(command)}: {_command_name(command)} -DiskNumber")
    setters = _functions(root, SET_OUR_DISK)
    getters = _functions(root, GET_OUR_DISK)
    if len(setters) != 1 or len(getters) != 1:
        return [*problems, f"expected one {SET_OUR_DISK} and one {GET_OUR_DISK}"]
    calls = commands_named(setters[0])
    names = [_command_name(c).lower() for c in calls]
    first_set = names.index("set-disk") if "set-disk" in names else len(names)
    if GET_OUR_DISK.lower() not in names[:first_set]:
        problems.append(f"{SET_OUR_DISK} does not call {GET_OUR_DISK} before Set-Disk")
    lookups = commands_named(getters[0], "Get-Disk")
    text = node_text(getters[0]).lower()
    if not lookups or any("-uniqueid" not in _parameters(c) for c in lookups):
        problems.append(f"{GET_OUR_DISK} does not look the disk up by -UniqueId")
    if "serialnumber" not in text or "throw" not in text:
        problems.append(f"{GET_OUR_DISK} does not check the serial number and throw")
    return problems


def mutex_problems(script: str) -> list[str]:
    """One action at a time on a helper (issue #14, finding 3): the SSM agent runs up to 5
    commands at once. The script's main try takes the global mutex first, before any disk is
    looked at, and its finally releases it; nothing touches a disk outside that try."""
    problems = []
    root = parse_tree(script).root_node
    named = [
        n
        for n in commands_named(root, "New-Object")
        if "system.threading.mutex" in node_text(n).lower() and MUTEX_NAME in node_text(n)
    ]
    if len(named) != 1:
        problems.append(f"expected one New-Object System.Threading.Mutex named {MUTEX_NAME!r}")
    statements = _top_statements(script)
    tries = [s for s in statements if s.type == "try_statement"]
    if len(tries) != 1:
        return [*problems, f"{len(tries)} top-level try statements, expected the one main try"]
    main = tries[0]
    block = next(c for c in main.children if c.type == "statement_block")
    text = node_text(block)
    acquire = text.find(".WaitOne(")
    touching = [
        node_text(c)
        for c in commands_named(block)
        if _command_name(c).lower() in DISK_COMMANDS
        or _command_name(c).lower()
        in {f.lower() for f in (GET_OUR_DISK, SET_OUR_DISK, NUMBER_LOOKUP)}
    ]
    first_touch = min((text.find(t) for t in touching), default=len(text))
    if acquire < 0 or acquire > first_touch:
        problems.append("the main try does not take the mutex (.WaitOne) before touching a disk")
    finally_clause = [c for c in main.children if c.type == "finally_clause"]
    released = node_text(finally_clause[0]).count(".ReleaseMutex()") if finally_clause else 0
    if not released:
        problems.append("the main try's finally does not release the mutex")
    if script.count(".ReleaseMutex()") != released:
        problems.append("the mutex is released outside the main try's finally")
    for statement in statements:
        if statement == main or statement.type == "function_statement":
            continue
        for command in commands_named(statement):
            if _command_name(command).lower() in DISK_COMMANDS:
                problems.append(
                    f"line {_line(command)}: {_command_name(command)} outside the main try"
                )
    return problems


def unique_shadow_problems(script: str) -> list[str]:
    """Before DiskShadow reverts, each ID is counted among all Win32_ShadowCopy objects and must
    occur once, and each volume of the disk must belong to one partition (issue #14, finding 1):
    `revert {ID}` takes only an ID, and a clone of an attached disk holds the same ones."""
    calls = commands_named(parse_tree(script).root_node, "diskshadow.exe")
    if len(calls) != 1:
        return [f"{len(calls)} DiskShadow calls, expected one"]
    before = script[: calls[0].start_byte]
    revert_branch = before[before.rfind("$Action -eq 'Revert'") :]
    needed = {
        "every shadow copy listed": r"Get-CimInstance -ClassName Win32_ShadowCopy",
        "a requested ID matched by ID": r"\.ID\s+-eq\s+\$id",
        "its count must be one": r"\$copies\.Count\s+-ne\s+1\)\s*\{\s*throw",
        "every partition's access paths": (
            r"Get-Partition\s*\|\s*ForEach-Object\s*\{\s*@\(\$_\.AccessPaths\)"
        ),
        "each volume in one partition": r"\$owners\s+-ne\s+1\)\s*\{\s*throw",
    }
    return [
        f"the Revert does not check, before DiskShadow runs: {what}"
        for what, pattern in needed.items()
        if not re.search(pattern, revert_branch)
    ]


def collision_problems(script: str) -> list[str]:
    """A clone whose identity an online disk has (issue #14, findings 6 and 7).

    Onlining it needs read-only cleared first (Windows writes it a new identity); the original
    goes back only in the last action, offline, through the disk's sectors, each write to the
    disk's number preceded by Get-OurDisk and the whole read back; Set-Disk never gives it the
    colliding identity. Checked on the functions that do each part.
    """
    root = parse_tree(script).root_node
    problems = []

    def body(name: str) -> str:
        found = _functions(root, name)
        if len(found) != 1:
            problems.append(f"{len(found)} functions {name}, expected one")
            return ""
        return node_text(found[0])

    opening, restoring, writing = (
        body("Open-Disk"),
        body("Restore-DiskIdentity"),
        body("Write-OfflineIdentity"),
    )
    if opening and not re.search(
        r"Get-CollidingDisk[^\n]*\n(.*\n)*?\s*if \(\$colliding\.Count -gt 0\) \{\s*"
        r"if \(\$Disk\.IsReadOnly\) \{ Set-OurDisk 'IsReadOnly' \$false \}\s*"
        r"Set-OurDisk 'IsOffline' \$false",
        opening,
    ):
        problems.append("Open-Disk does not clear read-only before onlining a colliding disk")
    if restoring:
        if "Get-CollidingDisk $Identity" not in restoring:
            problems.append(
                "Restore-DiskIdentity does not look for a disk the identity collides with"
            )
        if "$LastAction -eq 'false'" not in restoring:
            problems.append(
                "Restore-DiskIdentity puts a colliding identity back before the last action"
            )
        raw = restoring[restoring.find("} else {", restoring.find("$LastAction")) :]
        if not re.search(r"Set-OurDisk 'IsOffline' \$true \}\s*\$now = Write-OfflineIdentity", raw):
            problems.append("Restore-DiskIdentity does not take the disk offline before writing it")
    if writing:
        if not re.search(
            r"Get-OurDisk\)\.Number -ne \$number\)[^\n]*\n\s*\[VssRestoreRawDisk\]::Write", writing
        ):
            problems.append("Write-OfflineIdentity writes without checking the disk is still ours")
        if "Get-RawIdentity (Get-OurDisk)" not in writing or "reads back identity" not in writing:
            problems.append("Write-OfflineIdentity does not read the identity back")
    return problems


SCRIPT_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "syntax": syntax_problems,
    "encoding": encoding_problems,
    "error_action": error_action_problems,
    "json": json_problems,
    "exit": exit_problems,
    "disk_pipeline": disk_pipeline_problems,
    "repair": repair_problems,
    "validation": validation_problems,
    "disk_identity": disk_identity_problems,
    "mutex": mutex_problems,
    "unique_shadow": unique_shadow_problems,
}
