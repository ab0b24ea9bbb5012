"""The nightly backup in template.yaml (BackupDocument, its schedule and instance policy) writes
exactly the tags the restore reads, keeps the disk tool's PowerShell rules and always deletes its
shadow copies.

No PowerShell runs here: as for the disk tool, these are static checks of the script's text and
syntax tree, reusing the disk tool's checks (tests/unit/test_disk_tool_script.py). Each check
written here is shown to catch a small script or template that breaks its rule.
"""

import copy
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from simulator import Simulation, backup_retry, load
from tests.powershell_checks import (
    commands_named,
    encoding_problems,
    error_action_problems,
    exit_problems,
    json_problems,
    node_text,
    parse_tree,
    placeholder_problems,
    syntax_problems,
    walk,
)
from tools.cfn_template import load_template
from vss_restore import tags
from vss_restore.aws.ec2 import BACKUP_DESCRIPTION_PREFIX
from vss_restore.logic.resolve import RESTORE, decide
from vss_restore.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

# The tags.py names of the keys the nightly backup writes besides the VSS marker.
BACKUP_TAGS = tags.BACKUP_KEYS
BACKUP_TAG_NAMES = tuple(BACKUP_TAGS)
# The DiskShadow script, in this order (FIELD-NOTES section 1), as quoted lines of the script.
DISKSHADOW_ORDER = (
    "'set context persistent'",
    "'set option differential'",
    "'begin backup'",
    "'add volume ",
    "'create'",
    "'exec ",
    "'end backup'",
)
SUMMARY_FIELDS = {"schema", "action", "instance_id", "shadow_set_id", "snapshots"}
SUMMARY_FIELDS |= {"shadows_deleted", "ok"}
SNAPSHOT_FIELDS = {"volume_id", "drive_letters", "shadow_copy_ids", "snapshot_id", "retries"}
SNAPSHOT_FIELDS |= {"error"}
# The refusals worth waiting out (EC2 API Reference, "Error codes for the Amazon EC2 API"):
# the account's request rate, the volume's snapshot rate, its concurrent snapshots.
RETRY_CODES = {
    "RequestLimitExceeded",
    "SnapshotCreationPerVolumeRateExceeded",
    "ConcurrentSnapshotLimitExceeded",
}
RETRY_HANDOVER = (
    "retry = [ordered]@{ codes = $RetryCodes base_seconds = $RetryBaseSeconds "
    "cap_seconds = $RetryCapSeconds budget_seconds = $RetrySeconds }"
)
# What New-SnapshotWithRetry must hold: full jitter under an exponential, capped ceiling,
# a sleep, the budget's end, and a rethrow of every other refusal.
RETRY_PARTS = (
    "Get-Random -Minimum 0",
    "[Math]::Min(",
    "[Math]::Pow(2,",
    "Start-Sleep",
    "-gt $deadline",
    "$plan.retry.codes -notcontains $code",
    "{ throw }",
)
# Windows PowerShell 5.1's Get-Verb, group by group.
VERB_GROUPS = (
    "Add Clear Close Copy Enter Exit Find Format Get Hide Join Lock Move New Open Optimize Pop "
    "Push Redo Remove Rename Reset Resize Search Select Set Show Skip Split Step Switch Undo "
    "Unlock Watch",
    "Connect Disconnect Read Receive Send Write",
    "Backup Checkpoint Compare Compress Convert ConvertFrom ConvertTo Dismount Edit Expand Export "
    "Group Import Initialize Limit Merge Mount Out Publish Restore Save Sync Unpublish Update",
    "Debug Measure Ping Repair Resolve Test Trace",
    "Approve Assert Complete Confirm Deny Disable Enable Install Invoke Register Request Restart "
    "Resume Start Stop Submit Suspend Uninstall Unregister Wait",
    "Block Grant Protect Revoke Unblock Unprotect",
    "Use",
)
APPROVED_VERBS = frozenset(verb for group in VERB_GROUPS for verb in group.split())
DAILY_AT_MIDNIGHT = "cron(0 0 * * ? *)"
SCHEDULE_RESOURCES = ("BackupWindow", "BackupTargets", "BackupTask")
INNER_SCRIPT = re.compile(r"^\$SnapshotScript = @'\n(?P<body>.*?)\n'@$", re.MULTILINE | re.DOTALL)


# --- reading the template ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def document(template: dict[str, Any]) -> dict[str, Any]:
    resource = template["Resources"]["BackupDocument"]
    assert resource["Type"] == "AWS::SSM::Document"
    assert resource["Properties"]["DocumentType"] == "Command"
    content: dict[str, Any] = resource["Properties"]["Content"]
    return content


@pytest.fixture(scope="module")
def script(document: dict[str, Any]) -> str:
    steps = document["mainSteps"]
    assert document["schemaVersion"] == "2.2"
    assert [(s["action"], s["name"]) for s in steps] == [("aws:runPowerShellScript", "Backup")]
    commands = steps[0]["inputs"]["runCommand"]
    assert len(commands) == 1, "one block of script, so that line numbers mean something"
    return str(commands[0])


def inner_script(script: str) -> str:
    """The script DiskShadow's exec runs: the here-string the backup writes to snapshot.ps1."""
    match = INNER_SCRIPT.search(script)
    return match["body"] if match else ""


@pytest.fixture(scope="module")
def snapshot_script(script: str) -> str:
    inner = inner_script(script)
    assert inner, "no $SnapshotScript = @' ... '@ here-string"
    return inner


def _hash_literal(node: Any) -> dict[str, str]:
    body = [c for c in node.children if c.type == "hash_literal_body"]
    entries = [e for e in (body[0].children if body else []) if e.type == "hash_entry"]
    table = {}
    for entry in entries:
        key, value = entry.children[0], entry.children[-1]
        table[node_text(key).strip("'\"")] = node_text(value)
    return table


def assigned_hashtable(script: str, variable: str) -> dict[str, str] | None:
    """Keys and value texts of the hashtable literal assigned to `variable` at the top level."""
    for node in walk(parse_tree(script).root_node):
        if node.type == "assignment_expression" and node_text(node.children[0]) == variable:
            literals = [n for n in walk(node.children[-1]) if n.type == "hash_literal_expression"]
            return _hash_literal(literals[0]) if literals else None
    return None


def _quoted(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else ""


# --- the checks --------------------------------------------------------------------------------


def verb_problems(script: str) -> list[str]:
    """Every function is Verb-Noun with an approved verb (Import-Module warns otherwise)."""
    problems = []
    for node in walk(parse_tree(script).root_node):
        if node.type == "function_name":
            verb = node_text(node).split("-")[0]
            if "-" not in node_text(node) or verb not in APPROVED_VERBS:
                problems.append(f"function {node_text(node)}: not an approved Verb-Noun")
    return problems


def diskshadow_order_problems(script: str) -> list[str]:
    """The DiskShadow backup session's commands, each once, in the origin's order (the text of
    the one `Invoke-DiskShadow 'backup'` call, when the script has one)."""
    root = parse_tree(script).root_node
    sessions = [
        node_text(c)
        for c in commands_named(root, "Invoke-DiskShadow")
        if "'backup'" in node_text(c)
    ]
    if len(sessions) == 1:
        script = sessions[0]
    problems = []
    found = []
    for command in DISKSHADOW_ORDER:
        count = script.count(command)
        if count != 1:
            problems.append(f"{command} occurs {count} times, not once")
        else:
            found.append((script.index(command), command))
    if [c for _, c in sorted(found)] != [c for _, c in found]:
        problems.append(f"DiskShadow commands out of order: {[c for _, c in sorted(found)]}")
    return problems


def _enclosing(node: Any, kind: str) -> Any:
    parent = node.parent
    while parent is not None and parent.type != kind:
        parent = parent.parent
    return parent


def cleanup_problems(script: str) -> list[str]:
    """`delete shadows` runs in a finally block, directly or through the function that holds it."""
    root = parse_tree(script).root_node
    deletes = [
        n
        for n in walk(root)
        if n.type in ("expandable_string_literal", "verbatim_string_characters")
        and "delete shadows" in node_text(n).lower()
    ]
    if not deletes:
        return ["no DiskShadow 'delete shadows' anywhere"]
    problems = []
    for delete in deletes:
        if not _runs_from_finally(root, delete, depth=4):
            function = _enclosing(delete, "function_statement")
            name = _function_name(function)
            problems.append(
                f"'delete shadows' (in {name or 'the script body'}) never runs from a finally block"
            )
    return problems


def _function_name(function: Any) -> str:
    return next(
        (
            node_text(c)
            for c in (function.children if function else [])
            if c.type == "function_name"
        ),
        "",
    )


def _runs_from_finally(root: Any, node: Any, depth: int) -> bool:
    """The node is in a finally block, or in a function called (through at most `depth`
    functions) from one."""
    if _enclosing(node, "finally_clause") is not None:
        return True
    name = _function_name(_enclosing(node, "function_statement"))
    if not name or depth == 0:
        return False
    return any(_runs_from_finally(root, call, depth - 1) for call in commands_named(root, name))


def tag_key_problems(script: str) -> list[str]:
    """The keys live once, in $TagKeys, equal tags.py's, and the snapshot script writes each."""
    table = assigned_hashtable(script, "$TagKeys")
    if table is None:
        return ["no $TagKeys = @{...} hashtable"]
    keys = {name: _quoted(value) for name, value in table.items()}
    problems = []
    if keys != BACKUP_TAGS:
        problems.append(f"$TagKeys {keys} != vss_restore.tags {BACKUP_TAGS}")
    for value in BACKUP_TAGS.values():
        if script.count(value) != 1:
            problems.append(f"{value!r} is written {script.count(value)} times, not once")
    inner = inner_script(script)
    if "tag_keys = $TagKeys" not in script:
        problems.append("$TagKeys is not handed to the snapshot script (tag_keys = $TagKeys)")
    for name in BACKUP_TAG_NAMES:
        if f"$plan.tag_keys.{name}]" not in inner:
            problems.append(f"the snapshot script never writes the tag $plan.tag_keys.{name}")
    return problems


def summary_problems(script: str) -> list[str]:
    """The summary has its documented fields, and every snapshot entry exactly its own."""
    problems = []
    summary = assigned_hashtable(script, "$summary") or {}
    if missing := SUMMARY_FIELDS - set(summary):
        problems.append(f"the summary lacks {sorted(missing)}")
    entries = [
        _hash_literal(n)
        for n in walk(parse_tree(script).root_node)
        if n.type == "hash_literal_expression"
        and {"volume_id", "drive_letters"} <= set(_hash_literal(n))
    ]
    if not entries:
        problems.append("no snapshot entry (a hashtable with volume_id and drive_letters)")
    for entry in entries:
        if set(entry) != SNAPSHOT_FIELDS:
            problems.append(f"snapshot entry {sorted(entry)} != {sorted(SNAPSHOT_FIELDS)}")
    return problems


def retry_problems(script: str) -> list[str]:
    """The retry settings at the top, handed to the snapshot script, and its one CreateSnapshot
    made through New-SnapshotWithRetry: backoff with full jitter within the budget."""
    try:
        settings = backup_retry.read(script)
    except backup_retry.RetrySettingsMissing as exc:
        return [str(exc)]
    problems = []
    if set(settings.codes) != RETRY_CODES:
        problems.append(f"$RetryCodes {sorted(settings.codes)} != {sorted(RETRY_CODES)}")
    if not 0 < settings.base_seconds <= settings.cap_seconds:
        problems.append("the backoff needs 0 < $RetryBaseSeconds <= $RetryCapSeconds")
    backup = re.search(r"^\$BackupSeconds = ([0-9]+)$", script, re.MULTILINE)
    if backup is None or settings.budget_seconds >= float(backup[1]):
        problems.append("$RetrySeconds must end before DiskShadow's $BackupSeconds")
    if RETRY_HANDOVER not in " ".join(script.replace("; ", "\n").split()):
        problems.append("the settings are not handed to the snapshot script (plan.retry)")
    if not settings.gap_seconds > 0 or "snapshot_gap_seconds = $SnapshotGapSeconds" not in script:
        problems.append("no paced start: $SnapshotGapSeconds is not handed to the snapshot script")
    inner = parse_tree(inner_script(script)).root_node
    if "[double]$plan.snapshot_gap_seconds) - [DateTime]::UtcNow" not in node_text(inner):
        problems.append("the snapshot script does not wait for its paced start")
    if "$deadline = (Get-Date).AddSeconds([double]$plan.retry.budget_seconds)" not in node_text(
        inner
    ):
        problems.append("the snapshot script sets no $deadline from the budget")
    for call in commands_named(inner, "New-EC2Snapshot"):
        if _function_name(_enclosing(call, "function_statement")) != "New-SnapshotWithRetry":
            problems.append("New-EC2Snapshot is called outside New-SnapshotWithRetry")
    retrying = [
        n
        for n in walk(inner)
        if n.type == "function_statement" and _function_name(n) == "New-SnapshotWithRetry"
    ]
    if len(retrying) != 1:
        return [*problems, "no single function New-SnapshotWithRetry in the snapshot script"]
    body = node_text(retrying[0])
    problems += [
        f"New-SnapshotWithRetry lacks {part!r}" for part in RETRY_PARTS if part not in body
    ]
    if not any(
        _enclosing(c, "function_statement") is None
        for c in commands_named(inner, "New-SnapshotWithRetry")
    ):
        problems.append("the snapshot script never calls New-SnapshotWithRetry")
    return problems


SCRIPT_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "syntax": syntax_problems,
    "encoding": encoding_problems,
    "error_action": error_action_problems,
    "json": json_problems,
    "exit": exit_problems,
    "verbs": verb_problems,
}


# --- the backup script in template.yaml --------------------------------------------------------


@pytest.mark.parametrize("check", sorted(SCRIPT_CHECKS))
def test_the_backup_script_keeps_the_rule(script: str, check: str) -> None:
    assert SCRIPT_CHECKS[check](script) == []


@pytest.mark.parametrize("check", sorted(SCRIPT_CHECKS))
def test_the_snapshot_script_it_writes_keeps_the_rule(snapshot_script: str, check: str) -> None:
    assert SCRIPT_CHECKS[check](snapshot_script) == []


def test_the_backup_pastes_each_parameter_once_at_the_top(
    script: str, document: dict[str, Any]
) -> None:
    assert placeholder_problems(script, document["parameters"]) == []


def test_diskshadow_runs_the_origins_backup_sequence(script: str) -> None:
    assert diskshadow_order_problems(script) == []


def test_the_shadow_copies_are_deleted_in_a_finally_block(script: str) -> None:
    assert cleanup_problems(script) == []


def test_the_backup_writes_exactly_the_tag_keys_the_restore_reads(script: str) -> None:
    assert tag_key_problems(script) == []


def test_a_throttled_snapshot_is_retried_with_backoff_and_full_jitter(script: str) -> None:
    assert retry_problems(script) == []


def test_the_summary_has_the_documented_fields(script: str) -> None:
    assert summary_problems(script) == []


def test_the_summary_is_the_last_stdout_line_and_the_exit_code_follows_ok(script: str) -> None:
    tail = [line for line in script.rstrip().splitlines() if not line.lstrip().startswith("#")]
    assert tail[-3:] == [
        "Write-Output (ConvertTo-Json -InputObject $summary -Compress -Depth 8)",
        "if ($summary.ok) { exit 0 }",
        "exit 1",
    ]


def test_the_snapshot_script_writes_the_tags_at_creation(snapshot_script: str) -> None:
    calls = commands_named(parse_tree(snapshot_script).root_node, "New-EC2Snapshot")
    assert len(calls) == 1
    assert "-TagSpecification" in node_text(calls[0])
    # The small module, never the monolithic AWSPowerShell whose cold import takes minutes.
    imported = [
        node_text(c) for c in commands_named(parse_tree(snapshot_script).root_node, "Import-Module")
    ]
    assert imported == ["Import-Module AWS.Tools.EC2"]


# --- document parameters -------------------------------------------------------------------------


def parameter_problems(parameters: Mapping[str, Any], stack: Mapping[str, Any]) -> list[str]:
    """VssTagKey/VssTagValue: Strings with the stack parameters' patterns and their defaults."""
    problems = []
    if set(parameters) != {"VssTagKey", "VssTagValue"}:
        problems.append(f"parameters {sorted(parameters)} != ['VssTagKey', 'VssTagValue']")
    for name in sorted(set(parameters) & {"VssTagKey", "VssTagValue"}):
        parameter = parameters[name]
        if parameter.get("type") != "String":
            problems.append(f"{name} is a {parameter.get('type')}, not a String")
        if parameter.get("allowedPattern") != stack[name]["AllowedPattern"]:
            problems.append(f"{name}: allowedPattern differs from the template parameter's")
        if parameter.get("default") != {"Ref": name}:
            problems.append(f"{name}: default is not the template parameter {name}")
    return problems


def test_the_document_parameters_follow_the_template_parameters(
    document: dict[str, Any], template: dict[str, Any]
) -> None:
    assert parameter_problems(document["parameters"], template["Parameters"]) == []


@pytest.mark.parametrize(
    ("name", "change"),
    [
        pytest.param("VssTagKey", {"allowedPattern": None}, id="no-pattern"),
        pytest.param("VssTagKey", {"allowedPattern": "^.*$"}, id="other-pattern"),
        pytest.param("VssTagValue", {"default": "WindowsVSS"}, id="literal-default"),
        pytest.param("VssTagValue", {"type": "StringList"}, id="string-list"),
    ],
)
def test_the_parameter_check_catches_a_drifting_parameter(
    document: dict[str, Any], template: dict[str, Any], name: str, change: dict[str, Any]
) -> None:
    parameters = copy.deepcopy(document["parameters"])
    parameters[name].update(change)
    parameters[name] = {k: v for k, v in parameters[name].items() if v is not None}
    assert parameter_problems(parameters, template["Parameters"]) != []


def test_the_quotes_stay_closed_for_any_allowed_value(document: dict[str, Any]) -> None:
    for name, parameter in document["parameters"].items():
        pattern = parameter["allowedPattern"]
        assert re.fullmatch(pattern, "Consistent Snapshot:x/y=z+@-_.")
        for quote in ("'", "\u2018", "\u2019", "\u201a", "\u201b", "\n", "`", "$"):
            assert not re.fullmatch(pattern, f"a{quote}b"), (name, quote)


# --- each check catches a script that breaks its rule -------------------------------------------

MINIMAL = """\
$VssTagKey = '{{ VssTagKey }}'
$ErrorActionPreference = 'Stop'
$BackupSeconds = 1200
$RetryCodes = CODES
$RetryBaseSeconds = 2
$RetryCapSeconds = 30
$RetrySeconds = 900
$SnapshotGapSeconds = 40
$Began = [DateTime]::UtcNow
$TagKeys = [ordered]@{
    INSTANCE_ID = 'vss-restore:instance-id'
    DRIVE_LETTERS = 'vss-restore:drive-letters'
    DEVICE = 'vss-restore:device'
    SHADOW_COPY_ID = 'vss-restore:shadow-copy-id'
    SHADOW_SET_ID = 'vss-restore:shadow-set-id'
}
$SnapshotScript = @'
$ErrorActionPreference = 'Stop'
function New-SnapshotWithRetry($Entry) {
    for ($attempt = 0; ; $attempt++) {
        try {
            return New-EC2Snapshot -VolumeId $Entry.volume_id -TagSpecification $null -Force
        } catch {
            $code = [string]$_.Exception.ErrorCode
            $ceiling = [Math]::Min(30.0, 2.0 * [Math]::Pow(2, $attempt))
            $wait = Get-Random -Minimum 0.0 -Maximum $ceiling
            $late = (Get-Date).AddSeconds($wait) -gt $deadline
            if ($plan.retry.codes -notcontains $code -or $late) { throw }
            Start-Sleep -Milliseconds ([int]($wait * 1000))
        }
    }
}
$plan = Get-Content -LiteralPath plan.json -Raw | ConvertFrom-Json
$deadline = (Get-Date).AddSeconds([double]$plan.retry.budget_seconds)
$began = New-Object DateTime ([long]$plan.began_ticks), ([DateTimeKind]::Utc)
$due = $began.AddSeconds(1 * [double]$plan.snapshot_gap_seconds) - [DateTime]::UtcNow
$pause = $due.TotalMilliseconds
if ($pause -gt 0) { Start-Sleep -Milliseconds ([int]$pause) }
$snapshot = New-SnapshotWithRetry @{ volume_id = 'vol-0a1b2c3d' }
$tags = @{}
$tags[$plan.tag_keys.INSTANCE_ID] = $plan.instance_id
$tags[$plan.tag_keys.DRIVE_LETTERS] = 'D'
$tags[$plan.tag_keys.DEVICE] = 'xvdf'
$tags[$plan.tag_keys.SHADOW_COPY_ID] = $env:VolumeD
$tags[$plan.tag_keys.SHADOW_SET_ID] = $env:VSS_SHADOW_SET
exit 0
'@

function Invoke-DiskShadow([string[]]$Lines) {
    return $Lines
}

function Remove-BackupShadowCopy([string]$SetId) {
    $null = Invoke-DiskShadow @("delete shadows set $SetId")
}

$summary = [ordered]@{
    schema = 1; action = 'Backup'; instance_id = ''; shadow_set_id = ''
    snapshots = @(); shadows_deleted = $false; ok = $false
}
$plan = @{
    tag_keys = $TagKeys
    retry = [ordered]@{
        codes = $RetryCodes; base_seconds = $RetryBaseSeconds
        cap_seconds = $RetryCapSeconds; budget_seconds = $RetrySeconds
    }
    snapshot_gap_seconds = $SnapshotGapSeconds
    began_ticks = $Began.Ticks
}
try {
    $run = Invoke-DiskShadow @(
        'set context persistent'
        'set option differential'
        'begin backup'
        'add volume D: alias VolumeD'
        'create'
        'exec C:\\x\\snapshot.cmd'
        'end backup'
    )
    $summary.snapshots += [pscustomobject]@{
        volume_id = 'vol-0a1b2c3d'
        drive_letters = 'D'
        shadow_copy_ids = ''
        snapshot_id = $null
        retries = 0
        error = $null
    }
} finally {
    Remove-BackupShadowCopy $setId
}
Write-Output (ConvertTo-Json -InputObject $summary -Compress -Depth 8)
exit 0
""".replace("CODES", "@(" + ", ".join(f"'{c}'" for c in sorted(RETRY_CODES)) + ")")
FINALLY_BLOCK = "} finally {\n    Remove-BackupShadowCopy $setId\n}\n"

BROKEN = [
    # (id, check, text in MINIMAL, replacement)
    ("unapproved-verb", "verbs", "function Invoke-DiskShadow", "function Run-DiskShadow"),
    ("no-verb", "verbs", "function Invoke-DiskShadow", "function DiskShadow"),
    ("no-differential", "order", "        'set option differential'\n", ""),
    ("no-begin", "order", "        'begin backup'\n", ""),
    ("exec-before-create", "order", "'create'\n        'exec C:", "'exec C:"),
    ("create-twice", "order", "        'create'\n", "        'create'\n        'create'\n"),
    (
        "after-the-try",
        "cleanup",
        FINALLY_BLOCK,
        "} catch {\n    throw\n}\nRemove-BackupShadowCopy $setId\n",
    ),
    (
        "only-on-failure",
        "cleanup",
        FINALLY_BLOCK,
        "} catch {\n    Remove-BackupShadowCopy $setId\n    throw\n}\n",
    ),
    ("never-deleted", "cleanup", '@("delete shadows set $SetId")', "@('list shadows all')"),
    ("renamed-key", "tags", "'vss-restore:device'", "'vss-restore:device-name'"),
    ("missing-key", "tags", "    SHADOW_SET_ID = 'vss-restore:shadow-set-id'\n", ""),
    ("extra-key", "tags", "    DEVICE =", "    NAME = 'Name'\n    DEVICE ="),
    (
        "hard-coded-elsewhere",
        "tags",
        "$tags[$plan.tag_keys.DEVICE] = 'xvdf'",
        "$tags['vss-restore:device'] = 'xvdf'",
    ),
    ("not-handed-over", "tags", "tag_keys = $TagKeys\n", "tag_keys = @{}\n"),
    ("no-summary-ok", "summary", "; ok = $false", ""),
    ("code-not-retried", "retry", "'RequestLimitExceeded', ", ""),
    ("no-budget", "retry", "$RetrySeconds = 900\n", ""),
    (
        "no-paced-start",
        "retry",
        "[double]$plan.snapshot_gap_seconds) - [DateTime]",
        "0) - [DateTime]",
    ),
    ("no-gap", "retry", "$SnapshotGapSeconds = 40\n", ""),
    ("budget-past-diskshadow", "retry", "$RetrySeconds = 900\n", "$RetrySeconds = 1500\n"),
    ("not-handed-over-retry", "retry", "    retry = [ordered]@{", "    other = [ordered]@{"),
    ("no-jitter", "retry", "Get-Random -Minimum 0.0 -Maximum ", ""),
    ("no-backoff", "retry", "2.0 * [Math]::Pow(2, $attempt)", "2.0"),
    ("no-deadline", "retry", " -gt $deadline", ""),
    ("retries-everything", "retry", "$plan.retry.codes -notcontains $code -or ", ""),
    (
        "snapshot-without-retry",
        "retry",
        "$snapshot = New-SnapshotWithRetry @{ volume_id = 'vol-0a1b2c3d' }",
        "$snapshot = New-EC2Snapshot -VolumeId 'vol-0a1b2c3d' -Force",
    ),
    ("entry-misspelt", "summary", "        snapshot_id = $null\n", "        snapshot = $null\n"),
    (
        "entry-extra",
        "summary",
        "        error = $null\n",
        "        error = $null\n        size = 1\n",
    ),
]
CHECKS = {
    **SCRIPT_CHECKS,
    "order": diskshadow_order_problems,
    "cleanup": cleanup_problems,
    "tags": tag_key_problems,
    "summary": summary_problems,
    "retry": retry_problems,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_minimal_backup_script_passes(check: str) -> None:
    assert CHECKS[check](MINIMAL) == []


def test_the_minimal_backup_script_pastes_its_parameter_once() -> None:
    assert placeholder_problems(MINIMAL, ["VssTagKey"]) == []


@pytest.mark.parametrize(
    ("check", "old", "new"), [pytest.param(*case[1:], id=case[0]) for case in BROKEN]
)
def test_the_check_catches_a_broken_backup_script(check: str, old: str, new: str) -> None:
    assert MINIMAL.count(old) == 1, f"{old!r} must occur once in MINIMAL"
    assert CHECKS[check](MINIMAL.replace(old, new)) != []


# --- the tags agree with the restore and the simulator -------------------------------------------


@pytest.fixture(scope="module")
def script_tag_keys(script: str) -> dict[str, str]:
    table = assigned_hashtable(script, "$TagKeys") or {}
    return {name: _quoted(value) for name, value in table.items()}


def test_the_restore_reads_what_the_backup_writes(script_tag_keys: dict[str, str]) -> None:
    settings = Settings()
    written = {
        settings.vss_tag_key: settings.vss_tag_value,
        script_tag_keys["INSTANCE_ID"]: "i-0abc1234def567890",
        script_tag_keys["DRIVE_LETTERS"]: "D,E",
        script_tag_keys["DEVICE"]: "xvdf",
        script_tag_keys["SHADOW_COPY_ID"]: "{6f1e0e7a-1111-4c5d-9e8f-000000000001},"
        "{6f1e0e7a-1111-4c5d-9e8f-000000000002}",
        script_tag_keys["SHADOW_SET_ID"]: "{0c9b8a7d-2222-4c5d-9e8f-000000000001}",
    }
    decision = decide(
        {
            "SnapshotId": "snap-0a1b2c3d4e5f60718",
            "State": "completed",
            "Tags": tags.as_list(written),
        },
        settings,
    )
    assert decision.action == RESTORE
    assert decision.shadow_copy_id == written[tags.SHADOW_COPY_ID]
    assert decision.shadow_set_id == written[tags.SHADOW_SET_ID]
    assert decision.instance_id == "i-0abc1234def567890"


@pytest.fixture(scope="module")
def simulated_backup_tags() -> list[dict[str, str]]:
    """The tags the simulator's nightly backup writes, on a disk with one drive and one with two."""
    scenario = {
        "name": "backup-tags",
        "instances": {
            "web1": {
                "volumes": [
                    {"alias": "C", "device": "/dev/sda1", "drive_letters": ["C"], "system": True},
                    {"alias": "data", "device": "xvdf", "drive_letters": ["D", "E"]},
                ]
            }
        },
        "steps": [{"backup": "web1", "name": "night1", "events": "none"}],
    }
    with Simulation(load(scenario)) as simulation:
        assert simulation.run().ok
        found = simulation.ec2_client().describe_snapshots(
            SnapshotIds=list(simulation.aliases.snapshots.values())
        )["Snapshots"]
    return [tags.as_dict(s.get("Tags")) for s in found]


def test_the_simulated_backup_writes_the_same_keys_in_the_same_formats(
    simulated_backup_tags: list[dict[str, str]],
    script_tag_keys: dict[str, str],
    script: str,
    template: dict[str, Any],
) -> None:
    marker = template["Parameters"]["VssTagKey"]["Default"]
    shadow_id = re.search(r"^\$ShadowIdPattern = '(.*)'$", script, re.MULTILINE)
    assert shadow_id is not None
    assert len(simulated_backup_tags) == 2
    for written in simulated_backup_tags:
        # The simulator also names its snapshots, which the real backup does not.
        assert set(written) - {"Name", marker} == set(script_tag_keys.values())
        letters = written[tags.DRIVE_LETTERS].split(",")
        assert all(re.fullmatch("[A-Z]", letter) for letter in letters)
        shadow_ids = written[tags.SHADOW_COPY_ID].split(",")
        assert len(shadow_ids) == len(letters)
        assert all(re.fullmatch(shadow_id[1], i) for i in shadow_ids)
        assert re.fullmatch(shadow_id[1], written[tags.SHADOW_SET_ID])
    assert {w[tags.DRIVE_LETTERS] for w in simulated_backup_tags} == {"C", "D,E"}


# --- the schedule ---------------------------------------------------------------------------------


def schedule_problems(template: Mapping[str, Any]) -> list[str]:
    """The window runs BackupDocument on the VSS-tagged instances, nightly, unless switched off."""
    problems = []
    parameters, resources = template["Parameters"], template["Resources"]
    window = resources["BackupWindow"]["Properties"]
    target = resources["BackupTargets"]["Properties"]
    task = resources["BackupTask"]["Properties"]
    run_command = task["TaskInvocationParameters"]["MaintenanceWindowRunCommandParameters"]
    expected = {
        "the schedule parameter's default": (
            parameters["BackupSchedule"]["Default"],
            DAILY_AT_MIDNIGHT,
        ),
        "the window's schedule": (window["Schedule"], {"Ref": "BackupSchedule"}),
        "the window's time zone": (window["ScheduleTimezone"], "UTC"),
        "the targeted tag key": (target["Targets"][0]["Key"], {"Fn::Sub": "tag:${VssTagKey}"}),
        "the targeted tag value": (target["Targets"][0]["Values"], [{"Ref": "VssTagValue"}]),
        "the task's document": (task["TaskArn"], {"Ref": "BackupDocument"}),
        "the task's targets": (
            task["Targets"],
            [{"Key": "WindowTargetIds", "Values": [{"Ref": "BackupTargets"}]}],
        ),
        "the task's parameters": (
            run_command.get("Parameters"),
            {"VssTagKey": [{"Ref": "VssTagKey"}], "VssTagValue": [{"Ref": "VssTagValue"}]},
        ),
        "the output log": (
            run_command.get("CloudWatchOutputConfig"),
            {"CloudWatchOutputEnabled": True, "CloudWatchLogGroupName": {"Ref": "BackupLogs"}},
        ),
        "the log retention": (
            resources["BackupLogs"]["Properties"].get("RetentionInDays"),
            {"Ref": "LogRetentionDays"},
        ),
        "the switch": (
            template.get("Conditions", {}).get("IsBackupEnabled"),
            {"Fn::Equals": [{"Ref": "BackupEnabled"}, "true"]},
        ),
        "the switch's default": (parameters["BackupEnabled"].get("Default"), "true"),
    }
    for what, (actual, wanted) in expected.items():
        if actual != wanted:
            problems.append(f"{what}: {actual!r} != {wanted!r}")
    for name in SCHEDULE_RESOURCES:
        if resources[name].get("Condition") != "IsBackupEnabled":
            problems.append(f"{name} is not switched by BackupEnabled")
    if "ServiceRoleArn" in task:
        problems.append("the task names a service role: SSM's service-linked role does")
    return problems


def test_the_window_backs_up_the_vss_tagged_instances_nightly(template: dict[str, Any]) -> None:
    assert schedule_problems(template) == []


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(template: dict[str, Any]) -> None:
        node = template
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


RUN_COMMAND = (
    "Resources",
    "BackupTask",
    "Properties",
    "TaskInvocationParameters",
    "MaintenanceWindowRunCommandParameters",
)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            _set(("Parameters", "BackupSchedule", "Default"), "cron(0 3 * * ? *)"), id="3am"
        ),
        pytest.param(
            _set(("Resources", "BackupWindow", "Properties", "ScheduleTimezone"), "Europe/Paris"),
            id="local-time",
        ),
        pytest.param(
            _set(
                ("Resources", "BackupTargets", "Properties", "Targets"),
                [{"Key": "tag:Backup", "Values": [{"Ref": "VssTagValue"}]}],
            ),
            id="other-tag",
        ),
        pytest.param(_set((*RUN_COMMAND, "Parameters"), None), id="no-parameters"),
        pytest.param(
            _set((*RUN_COMMAND, "CloudWatchOutputConfig", "CloudWatchOutputEnabled"), False),
            id="no-output-log",
        ),
        pytest.param(_set(("Resources", "BackupTask", "Condition"), None), id="not-switched"),
        pytest.param(
            _set(("Resources", "BackupTask", "Properties", "ServiceRoleArn"), "arn:aws:iam::1:x"),
            id="service-role",
        ),
        pytest.param(
            _set(("Resources", "BackupLogs", "Properties", "RetentionInDays"), None),
            id="logs-forever",
        ),
    ],
)
def test_the_schedule_check_catches_a_drifting_template(
    template: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(template)
    change(broken)
    assert schedule_problems(broken) != []


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        (DAILY_AT_MIDNIGHT, True),
        ("cron(30 22 ? * MON-FRI *)", True),
        ("rate(1 day)", True),
        ("rate(12 hours)", True),
        ("rate(5 minutes)", False),
        ("0 0 * * *", False),
        ("cron(0 0 * * ? *) ", False),
        ("cron(0 0 (* * ? *)", False),
    ],
)
def test_the_schedule_parameter_takes_cron_and_rate_expressions(
    template: dict[str, Any], expression: str, allowed: bool
) -> None:
    pattern = template["Parameters"]["BackupSchedule"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, expression)) is allowed


# --- the instance policy --------------------------------------------------------------------------

FAKE = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "VssTagKey": "ConsistentSnapshot",
    "VssTagValue": "WindowsVSS",
    "BackupLogs.Arn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/ssm/x/backup:*",
}


def instance_policy(template: Mapping[str, Any]) -> dict[str, Any]:
    """BackupInstancePolicy's document, its !Sub filled in with FAKE values."""
    text = template["Resources"]["BackupInstancePolicy"]["Properties"]["PolicyDocument"]["Fn::Sub"]
    policy: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: FAKE[m[1]], text))
    return policy


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_problems(policy: Mapping[str, Any]) -> list[str]:
    """Snapshots only with the VSS marker, tags only at creation and only the backup's keys."""
    problems = []
    snapshots = "arn:aws:ec2:us-east-1::snapshot/*"
    allowed_keys = {FAKE["VssTagKey"], *BACKUP_TAGS.values()}
    by_action: dict[str, list[dict[str, Any]]] = {}
    for statement in policy["Statement"]:
        if statement.get("Effect") != "Allow" or "NotAction" in statement:
            problems.append(f"{statement.get('Sid')}: only plain Allow statements")
        for action in _listed(statement["Action"]):
            by_action.setdefault(action, []).append(statement)
        # Reads without a resource type, which IAM authorizes on "*" only.
        if "*" in _listed(statement["Resource"]) and not set(_listed(statement["Action"])) <= {
            "ec2:DescribeVolumes",
            "logs:DescribeLogGroups",
        }:
            problems.append(f"{statement.get('Sid')}: Resource * for {statement['Action']}")
    expected_actions = {
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
        "ec2:DescribeVolumes",
        "logs:DescribeLogGroups",
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    }
    if set(by_action) != expected_actions:
        problems.append(f"actions {sorted(by_action)} != {sorted(expected_actions)}")
    for action, extra in (
        ("ec2:CreateSnapshot", {f"aws:RequestTag/{FAKE['VssTagKey']}": FAKE["VssTagValue"]}),
        ("ec2:CreateTags", {"ec2:CreateAction": "CreateSnapshot"}),
    ):
        on_snapshots = [s for s in by_action.get(action, []) if snapshots in _listed(s["Resource"])]
        if not on_snapshots:
            problems.append(f"{action} is not allowed on snapshots")
        for statement in on_snapshots:
            condition = statement.get("Condition", {})
            if condition.get("StringEquals") != extra:
                problems.append(f"{action} on snapshots: StringEquals is not {extra}")
            keys = condition.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
            if set(_listed(keys or [])) != allowed_keys:
                problems.append(f"{action} on snapshots: aws:TagKeys {keys} != {allowed_keys}")
    return problems


def test_the_instance_policy_allows_only_vss_tagged_snapshots(template: dict[str, Any]) -> None:
    assert policy_problems(instance_policy(template)) == []


def _statement(sid: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(policy: dict[str, Any]) -> None:
        statement = next(s for s in policy["Statement"] if s["Sid"] == sid)
        for key, value in changes.items():
            if value is None:
                statement.pop(key, None)
            else:
                statement[key] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_statement("CreateOnlyVssTaggedSnapshots", Condition=None), id="untagged"),
        pytest.param(
            _statement("TagOnlyAtCreation", Condition={"StringEquals": {"aws:ResourceTag/x": "y"}}),
            id="tags-any-time",
        ),
        pytest.param(_statement("SnapshotVolumes", Resource="*"), id="any-resource"),
        pytest.param(
            _statement(
                "CreateOnlyVssTaggedSnapshots",
                Condition={
                    "StringEquals": {"aws:RequestTag/ConsistentSnapshot": "WindowsVSS"},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["ConsistentSnapshot", "vss-restore:status"]
                    },
                },
            ),
            id="verdict-key",
        ),
        pytest.param(
            _statement("FindTheDevices", Action=["ec2:DescribeVolumes", "ec2:DeleteSnapshot"]),
            id="more-actions",
        ),
    ],
)
def test_the_policy_check_catches_a_wider_policy(
    template: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> None:
    policy = instance_policy(template)
    change(policy)
    assert policy_problems(policy) != []


def test_the_outputs_name_the_document_and_the_policy(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["BackupDocumentName"]["Value"] == {"Ref": "BackupDocument"}
    assert outputs["BackupInstancePolicyArn"]["Value"] == {"Ref": "BackupInstancePolicy"}
    assert outputs["BackupWindowId"].get("Condition") == "IsBackupEnabled"


# --- one drive's trouble costs no other drive its backup (#14, findings 9 and 10) ----------------


def _same(a: Any, b: Any) -> bool:
    return (
        a is not None and b is not None and (a.start_byte, a.end_byte) == (b.start_byte, b.end_byte)
    )


def drive_isolation_problems(script: str) -> list[str]:
    """Each drive's disk is looked up in a try inside the loop over the drives, whose catch
    reports that drive and goes on: a dynamic or striped volume has no partition of its own,
    and must not abort the others' backup."""
    root = parse_tree(script).root_node
    lookups = [c for c in commands_named(root, "Get-Partition") if "-DriveLetter" in node_text(c)]
    if not lookups:
        return ["no Get-Partition -DriveLetter"]
    problems = []
    for lookup in lookups:
        trying = _enclosing(lookup, "try_statement")
        loop = _enclosing(lookup, "foreach_statement")
        if (
            trying is None
            or loop is None
            or not _same(_enclosing(trying, "foreach_statement"), loop)
        ):
            problems.append("Get-Partition -DriveLetter is not in a try inside the drives' loop")
            continue
        catches = " ".join(node_text(n) for n in walk(trying) if n.type == "catch_clause")
        if "Add-SnapshotEntry" not in catches or "continue" not in catches:
            problems.append("the drive's catch does not report it (Add-SnapshotEntry) and go on")
    return problems


def folder_mount_problems(script: str) -> list[str]:
    """Partitions with no drive letter but a folder access path are reported, never left out
    silently."""
    root = parse_tree(script).root_node
    loops = [
        n for n in walk(root) if n.type == "foreach_statement" and "AccessPaths" in node_text(n)
    ]
    if not any("Add-SnapshotEntry" in node_text(loop) for loop in loops):
        return ["no loop over the partitions' AccessPaths reports a folder-mounted volume"]
    return []


def process_tree_problems(script: str) -> list[str]:
    """A DiskShadow run that overruns is stopped with its children (the exec'd snapshot
    script), found by ParentProcessId, children first."""
    root = parse_tree(script).root_node
    problems = []
    if "Stop-Process -Id $process.Id" in script:
        problems.append("DiskShadow alone is stopped: its exec'd child goes on")
    trees = [
        n
        for n in walk(root)
        if n.type == "function_statement" and "function Stop-ProcessTree" in node_text(n)
    ]
    if len(trees) != 1:
        return [*problems, "no function Stop-ProcessTree"]
    body = node_text(trees[0])
    if "ParentProcessId" not in body or len(commands_named(trees[0], "Stop-ProcessTree")) != 1:
        problems.append("Stop-ProcessTree does not stop the children it finds by ParentProcessId")
    shadow = [
        n
        for n in walk(root)
        if n.type == "function_statement" and "function Invoke-DiskShadow" in node_text(n)
    ]
    if not shadow or not commands_named(shadow[0], "Stop-ProcessTree"):
        problems.append("Invoke-DiskShadow does not stop a run that overran with its children")
    return problems


def shadowed_drive_problems(script: str) -> list[str]:
    """DiskShadow is asked to shadow exactly the drives whose EBS volume is snapshotted."""
    lines = [line for line in script.splitlines() if "'add volume" in line]
    if len(lines) != 1 or "$planned.Values" not in lines[0]:
        return [f"the add volume lines do not come from the planned volumes: {lines}"]
    return []


ISOLATION_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "drive_isolation": drive_isolation_problems,
    "folder_mount": folder_mount_problems,
    "process_tree": process_tree_problems,
    "shadowed_drives": shadowed_drive_problems,
}


@pytest.mark.parametrize("check", sorted(ISOLATION_CHECKS))
def test_the_backup_isolates_each_drives_trouble(script: str, check: str) -> None:
    assert ISOLATION_CHECKS[check](script) == []


@pytest.mark.parametrize(
    ("check", "old", "new"),
    [
        pytest.param(
            "drive_isolation",
            "$disk = @(Get-Partition -DriveLetter $letter | Get-Disk)",
            "}\n        $disk = @(Get-Partition -DriveLetter $letter | Get-Disk)\n        try {",
            id="lookup-outside-try",
        ),
        pytest.param(
            "drive_isolation",
            "            continue\n        }\n        $volumeId",
            "        }\n        $volumeId",
            id="catch-stops",
        ),
        pytest.param("folder_mount", "$partition.AccessPaths", "$partition.Size", id="no-mounts"),
        pytest.param(
            "process_tree",
            "Stop-ProcessTree $process.Id $process.StartTime",
            "Stop-Process -Id $process.Id -Force",
            id="diskshadow-alone",
        ),
        pytest.param(
            "shadowed_drives",
            "@($planned.Values | ForEach-Object { $_.drives }",
            "@($drives",
            id="all-drives",
        ),
    ],
)
def test_the_isolation_checks_catch_the_old_script(
    script: str, check: str, old: str, new: str
) -> None:
    assert script.count(old) == 1, f"{old!r} must occur once in the backup script"
    assert ISOLATION_CHECKS[check](script.replace(old, new)) != []


def test_the_shadow_set_is_deleted_in_its_context_and_what_is_left_with_vssadmin(
    script: str,
) -> None:
    # #14 finding 12: the delete session sets the persistent context first; what DiskShadow
    # leaves is deleted one by one with vssadmin (its exit code read, never passed on).
    root = parse_tree(script).root_node
    [remove] = [
        n
        for n in walk(root)
        if n.type == "function_statement" and "function Remove-BackupShadowCopy" in node_text(n)
    ]
    text = node_text(remove)
    assert "@('set context persistent', ('delete shadows set {0}'" in text
    assert commands_named(remove, "Remove-ShadowCopyWithVssadmin")
    [vssadmin] = [
        n
        for n in walk(root)
        if n.type == "function_statement"
        and "function Remove-ShadowCopyWithVssadmin" in node_text(n)
    ]
    body = node_text(vssadmin)
    for needed in ("'vssadmin.exe'", "'/quiet'", "Start-Process"):
        assert needed in body
    assert "$ShadowIdPattern" in body  # only a well-formed ID reaches the command line


def test_the_backup_describes_its_snapshots_as_the_retention_recognizes_them() -> None:
    """A snapshot's description cannot be changed after creation: the retention deletes a
    backup snapshot only when it reads BackupDocument's description (aws/ec2.py)."""
    script = (Path(__file__).resolve().parents[2] / "documents" / "backup.ps1").read_text()
    (written,) = re.findall(r"\$description = '([^{']*)\{0\}", script)
    assert written == BACKUP_DESCRIPTION_PREFIX


# --- the window's rate: BackupMaxConcurrency and BackupMaxErrors ---------------------------------
# SSM's own patterns for a maintenance window task (botocore's ssm service model, shapes
# MaxConcurrency and MaxErrors, at most 7 characters): the parameters must accept no less.
SSM_MAX_CONCURRENCY = r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
SSM_MAX_ERRORS = r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"


def test_the_backup_task_runs_at_the_rate_its_parameters_give(template: dict[str, Any]) -> None:
    task = template["Resources"]["BackupTask"]["Properties"]
    parameters = template["Parameters"]

    assert task["MaxConcurrency"] == {"Ref": "BackupMaxConcurrency"}
    assert task["MaxErrors"] == {"Ref": "BackupMaxErrors"}
    # A hundred at a time, each backup's CreateSnapshot paced at one per 40 s: at most 2.5 a
    # second (docs/performance.md, "Pacing our EC2 calls"; bench measurement 9: 10,000
    # instances start before a 4 h window's cutoff), every instance tried.
    assert parameters["BackupMaxConcurrency"]["Default"] == "100"
    assert parameters["BackupMaxErrors"]["Default"] == "100%"


def test_the_window_lasts_backup_window_hours_and_starts_nothing_in_its_last_hour(
    template: dict[str, Any],
) -> None:
    window = template["Resources"]["BackupWindow"]["Properties"]
    hours = template["Parameters"]["BackupWindowHours"]

    assert window["Duration"] == {"Ref": "BackupWindowHours"}
    assert window["Cutoff"] == 1
    assert hours["Type"] == "Number"
    assert hours["Default"] == 4
    # SSM's limits (CreateMaintenanceWindow: Duration 1 to 24 hours, Cutoff 0 to 23 and
    # less than Duration): the least, 2, leaves one hour to start backups in.
    assert (hours["MinValue"], hours["MaxValue"]) == (2, 24)
    assert hours["MinValue"] > window["Cutoff"]


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("BackupMaxConcurrency", "10", True),
        ("BackupMaxConcurrency", "2%", True),
        ("BackupMaxConcurrency", "100%", True),
        ("BackupMaxConcurrency", "250", True),
        ("BackupMaxConcurrency", "0", False),
        ("BackupMaxConcurrency", "0%", False),
        ("BackupMaxConcurrency", "101%", False),
        ("BackupMaxConcurrency", "05", False),
        ("BackupMaxConcurrency", "10 %", False),
        ("BackupMaxConcurrency", "12345678", False),
        ("BackupMaxErrors", "100%", True),
        ("BackupMaxErrors", "0", True),
        ("BackupMaxErrors", "0%", True),
        ("BackupMaxErrors", "5", True),
        ("BackupMaxErrors", "50%", True),
        ("BackupMaxErrors", "-1", False),
        ("BackupMaxErrors", "150%", False),
        ("BackupMaxErrors", "all", False),
    ],
)
def test_the_backup_rate_parameters_take_what_ssm_takes(
    template: dict[str, Any], name: str, value: str, allowed: bool
) -> None:
    pattern = template["Parameters"][name]["AllowedPattern"]
    ssm = SSM_MAX_CONCURRENCY if name == "BackupMaxConcurrency" else SSM_MAX_ERRORS

    assert bool(re.fullmatch(pattern, value)) is allowed
    # Nothing the parameter lets through would SSM refuse.
    assert not allowed or (re.fullmatch(ssm, value) and len(value) <= 7)
