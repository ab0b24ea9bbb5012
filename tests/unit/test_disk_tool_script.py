"""The disk tool's PowerShell (DiskToolDocument in template.yaml) keeps the rules that make it
safe to run on a helper (docs/disk-tool.md).

No PowerShell runs here, so these are static checks of the script's text and of its syntax tree
(tree-sitter-powershell). Each check is a function returning the problems it finds, and each is
shown to find the problem in a small script that breaks its rule.
"""

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.powershell_checks import (
    SCRIPT_CHECKS,
    collision_problems,
    pattern_problems,
    placeholder_problems,
)
from vss_restore.logic import disk_tool
from vss_restore.logic.disk_tool import PARAMETER_PATTERNS

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


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
    {"schema", "action", "volume_id", "ok", "error", "disk", "validation"}
    | set(disk_tool._DISK_FIELDS)
    | set(disk_tool._PARTITION_FIELDS)
    | set(disk_tool._COPY_FIELDS)
    | set(disk_tool._SCANNED_FIELDS)
    | set(disk_tool._VALIDATION_FIELDS)
    | {field for fields in disk_tool._ACTION_FIELDS.values() for field in fields}
)


def _setting(field: str) -> re.Pattern[str]:
    """`field = ...` or `$report.field = ...`, not `$field = ...` nor `field == ...`."""
    return re.compile(rf"(?<![\w$-]){field}(?=\s*=[^=])")


def report_field_problems(script: str) -> list[str]:
    """Each field of the report is set by name (`name = ...` or `$report.name = ...`)."""
    return [
        f"the script never sets report field {field}"
        for field in REPORT_FIELDS
        if not _setting(field).search(script)
    ]


def test_disk_tool_sets_every_report_field(script: str) -> None:
    assert report_field_problems(script) == []


@pytest.mark.parametrize("field", REPORT_FIELDS)
def test_the_report_field_check_catches_a_misspelt_field(script: str, field: str) -> None:
    misspelt, count = _setting(field).subn(field + "_x", script)
    assert count > 0
    assert report_field_problems(misspelt) == [f"the script never sets report field {field}"]


# --- each check catches a script that breaks its rule -----------------------------------------

MINIMAL_PARAMETERS = ("Action", "VolumeId")
MINIMAL = """\
$Action = '{{ Action }}'
$VolumeId = '{{ VolumeId }}'
# A comment.
$ErrorActionPreference = 'Stop'
function Invoke-ValidationScript([string]$Path) {
    $global:LASTEXITCODE = $null
    $exe = 'powershell.exe'
    & { $ErrorActionPreference = 'Continue'; & $exe -NoProfile -File $Path -VolumePath 'x' *>&1 }
    return [pscustomobject]@{ exit_code = [int]$global:LASTEXITCODE }
}
function Get-RequestedDisk { return Get-Disk -Number 1 }
function Get-OurDisk {
    $disk = @(Get-Disk -UniqueId $UniqueId)
    if ([string]$disk[0].SerialNumber -cne $Serial) { throw 'not ours' }
    return $disk[0]
}
function Set-OurDisk([string]$What, $Value) {
    $null = Get-OurDisk
    Set-Disk -UniqueId $UniqueId -IsOffline $Value
}
$report = [ordered]@{ ok = $false; error = $null }
$mutex = New-Object System.Threading.Mutex($false, 'Global\\vss-restore-disktool')
$held = $false
try {
    $held = $mutex.WaitOne(1000)
    $disk = Get-RequestedDisk
    $UniqueId = [string]$disk.UniqueId
    Set-OurDisk 'IsOffline' $false
    if ($Action -eq 'Revert') {
        $everyCopy = @(Get-CimInstance -ClassName Win32_ShadowCopy)
        $copies = @($everyCopy | Where-Object { [string]$_.ID -eq $id })
        if ($copies.Count -ne 1) { throw 'not once' }
        $accessPaths = @(Get-Partition | ForEach-Object { @($_.AccessPaths) })
        $owners = @($accessPaths | Where-Object { $_ -eq $path }).Count
        if ($owners -ne 1) { throw 'not one partition' }
    }
    $output = & { $ErrorActionPreference = 'Continue'; & diskshadow.exe /s x.dsh 2>&1 }
    $scan = Repair-Volume -Path $volume.volume_path -Scan
    if (Test-Path -LiteralPath $ValidationScript) {
        Assert-TrustedScript $ValidationScript
        $report.validation = Invoke-ValidationScript $ValidationScript
    }
} catch {
    $report.error = $_.Exception.Message
} finally {
    if ($held) { $mutex.ReleaseMutex() }
}
$report.ok = ($null -eq $report.error)
Write-Output (ConvertTo-Json -InputObject $report -Compress -Depth 8)
if ($report.ok) { exit 0 }
exit 1
"""
SET_DISK = "Set-Disk -UniqueId $UniqueId -IsOffline $Value"
REPORT_LINE = "$report = [ordered]@{ ok = $false; error = $null }"
TO_JSON = "Write-Output (ConvertTo-Json -InputObject $report -Compress -Depth 8)"
SCAN = "Repair-Volume -Path $volume.volume_path -Scan"
RUN = "& $exe -NoProfile -File $Path -VolumePath 'x' *>&1"
IN_CHILD_SCOPE = "& { $ErrorActionPreference = 'Continue'; " + RUN + " }"
VALIDATE = "$report.validation = Invoke-ValidationScript $ValidationScript"
CHANGE = "    Set-OurDisk 'IsOffline' $false"
SERIAL_CHECK = "if ([string]$disk[0].SerialNumber -cne $Serial) { throw 'not ours' }"
TAKE = "    $held = $mutex.WaitOne(1000)"
RELEASE = "if ($held) { $mutex.ReleaseMutex() }"
READ_CODE = "return [pscustomobject]@{ exit_code = [int]$global:LASTEXITCODE }"

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
    ("no-unique-id", "disk_pipeline", SET_DISK, "$disk | Set-Disk -IsOffline $false"),
    ("by-number", "disk_pipeline", SET_DISK, "Set-Disk -Number 1 -IsOffline $Value"),
    # Issue #14, finding 2: after the one look by number, the disk is named by its UniqueId
    # and its serial re-checked before every change (numbers are reused after a detach).
    ("set-by-number", "disk_identity", SET_DISK, "Set-Disk -Number 1 -IsOffline $Value"),
    (
        "set-outside-wrapper",
        "disk_identity",
        CHANGE,
        CHANGE.replace("Set-OurDisk 'IsOffline'", "Set-Disk -UniqueId $UniqueId -IsOffline"),
    ),
    ("no-recheck", "disk_identity", "    $null = Get-OurDisk\n", ""),
    ("looked-up-by-number", "disk_identity", "Get-Disk -UniqueId $UniqueId", "Get-Disk -Number 1"),
    ("serial-not-checked", "disk_identity", SERIAL_CHECK, "$null = 1"),
    ("number-later", "disk_identity", CHANGE, CHANGE + "\n    $again = Get-Disk -Number 1"),
    (
        "partitions-by-number",
        "disk_identity",
        CHANGE,
        CHANGE + "\n    $p = Get-Partition -DiskNumber 1",
    ),
    # Issue #14, finding 1: each requested ID once on the instance, each volume one partition's.
    ("shadow-not-counted", "unique_shadow", "if ($copies.Count -ne 1) { throw 'not once' }", ""),
    ("shadow-found-once", "unique_shadow", "$copies.Count -ne 1", "$copies.Count -lt 1"),
    ("paths-not-counted", "unique_shadow", "if ($owners -ne 1) { throw 'not one partition' }", ""),
    (
        "checked-after",
        "unique_shadow",
        "    if ($Action -eq 'Revert') {",
        "    $first = 1\n    if ($Action -eq 'Revert') {\n    $output = & diskshadow.exe /s y.dsh",
    ),
    # Issue #14, finding 3: one action at a time on a helper, under a global named mutex.
    ("no-wait", "mutex", TAKE, ""),
    (
        "mutex-too-late",
        "mutex",
        TAKE + "\n    $disk = Get-RequestedDisk",
        "    $disk = Get-RequestedDisk\n" + TAKE,
    ),
    ("not-released", "mutex", RELEASE, "$null = 1"),
    ("released-early", "mutex", CHANGE, CHANGE + "\n    $mutex.ReleaseMutex()"),
    ("not-global", "mutex", "'Global\\vss-restore-disktool'", "'vss-restore-disktool'"),
    ("disk-before-try", "mutex", "$held = $false\n", "$held = $false\n$first = Get-Disk\n"),
    # The validation script's exit code is data: it never reaches exit.
    ("code-passed-on", "exit", "\nexit 1\n", "\nexit $report.validation.exit_code\n"),
    ("code-as-reboot", "exit", "{ exit 0 }", "{ exit $report.validation.exit_code }"),
    ("exit-in-function", "exit", READ_CODE, "exit 1"),
    ("exit-in-block", "exit", "'Continue'; & $exe", "'Continue'; exit 0; & $exe"),
    ("code-read-outside", "exit", VALIDATE, VALIDATE + "; $code = $global:LASTEXITCODE"),
    ("braced-code", "exit", VALIDATE, VALIDATE + "; $code = ${global:LASTEXITCODE}"),
    ("code-by-name", "exit", VALIDATE, VALIDATE + "; Get-Variable LASTEXITCODE -ValueOnly"),
    ("runner-renamed", "exit", "function Invoke-ValidationScript(", "function Test-Volume("),
    # A check changes nothing: Repair-Volume only ever scans.
    ("spot-fix", "repair", SCAN, SCAN.replace("-Scan", "-SpotFix")),
    ("offline-fix", "repair", SCAN, SCAN.replace("-Scan", "-OfflineScanAndFix")),
    ("scan-and-fix", "repair", SCAN, SCAN + " -SpotFix"),
    ("abbreviated-fix", "repair", SCAN, SCAN + " -Spot"),
    ("scan-switched-off", "repair", SCAN, SCAN + ":$false -OfflineScanAndFix"),
    ("no-scan", "repair", SCAN, SCAN.replace(" -Scan", "")),
    ("by-drive-letter", "repair", SCAN, "Repair-Volume D -Scan"),
    ("splatted", "repair", SCAN, "Repair-Volume @how"),
    ("no-scan-at-all", "repair", SCAN, "$scan = $null"),
    ("chkdsk", "repair", SCAN, SCAN + "; & chkdsk.exe $volume.volume_path /f"),
    # Issue #14, finding 5: chkdsk only in its read-only mode, and only its exit code is read.
    ("chkdsk-scan", "repair", SCAN, SCAN + "; & chkdsk.exe $path /scan"),
    ("chkdsk-two-args", "repair", SCAN, SCAN + "; & chkdsk.exe $path $how"),
    ("chkdsk-splatted", "repair", SCAN, SCAN + "; & chkdsk.exe @how"),
    ("chkdsk-literal", "repair", SCAN, SCAN + "; chkdsk C: /x"),
    ("cim-repair", "repair", SCAN, SCAN + "; Invoke-CimMethod -InputObject $v -MethodName Repair"),
    ("method-repair", "repair", SCAN, SCAN + "; $v.Repair($false, $true, $true)"),
    # The operator's script runs in a child scope, all its output captured, and must exist.
    ("dot-sourced", "validation", RUN, RUN.replace("&", ".", 1)),
    ("same-scope", "validation", IN_CHILD_SCOPE, RUN),
    ("not-captured", "validation", RUN, RUN.replace(" *>&1", "")),
    ("errors-only", "validation", RUN, RUN.replace("*>&1", "2>&1")),
    ("not-run", "validation", VALIDATE, "$report.validation = $null"),
    ("no-runner", "validation", "function Invoke-ValidationScript(", "function Test-Volume("),
    ("wildcard-path", "validation", "Test-Path -LiteralPath", "Test-Path -Path"),
    ("not-checked", "validation", "(Test-Path -LiteralPath $ValidationScript)", "($true)"),
    # Issue #14, finding 11: a child powershell.exe -File, and a script only admins can change.
    ("in-process", "validation", RUN, "& $Path -VolumePath 'x' *>&1"),
    ("no-child", "validation", "$exe = 'powershell.exe'", "$exe = 'pwsh'"),
    ("acl-unchecked", "validation", "        Assert-TrustedScript $ValidationScript\n", ""),
    (
        "acl-after",
        "validation",
        "        Assert-TrustedScript $ValidationScript\n" + "        " + VALIDATE + "\n",
        "        " + VALIDATE + "\n" + "        Assert-TrustedScript $ValidationScript\n",
    ),
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
    "Action": ["Inspect", "Revert", "Check"],
    "VolumeId": ["vol-0a4064b3", "vol-0a4064b39e5f534a2"],
    "DiskNumber": ["", "2", "127"],
    "ShadowCopyIds": [
        "",
        "{6f1e0e7a-1111-4c5d-9e8f-000000000001}",
        "{6f1e0e7a-1111-4c5d-9e8f-000000000001},{6f1e0e7a-1111-4c5d-9e8f-000000000002}",
    ],
    "DiskIdentity": ["", "0x1A2B3C4D", "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"],
    "ValidationScript": ["", "C:\\vss-restore\\validate.ps1", "D:\\Tools\\check disk_2.ps1"],
    "LastAction": ["", "true", "false"],
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


def test_the_revert_session_sets_the_persistent_context_first(script: str) -> None:
    # #14 finding 12: a DiskShadow session starts in the default context; Microsoft's revert
    # sample sets it first, and the backup made persistent shadow copies.
    [line] = [line for line in script.splitlines() if '"revert $_"' in line]
    assert "@('set context persistent') + @($ids" in line
    assert line.index("set context persistent") < line.index('"revert $_"')


# --- issue #14, findings 6 and 7: a clone whose identity an online disk has ---------------------

CLEAR_THEN_ONLINE = (
    "        if ($Disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }\n"
    "        Set-OurDisk 'IsOffline' $false"
)
COLLISION_BREAKS = [
    # (id, text in the real script, replacement)
    (
        "online-while-read-only",
        CLEAR_THEN_ONLINE,
        "        Set-OurDisk 'IsOffline' $false\n"
        "        if ($Disk.IsReadOnly) { Set-OurDisk 'IsReadOnly' $false }",
    ),
    ("put-back-at-once", "$Action -eq 'Inspect' -or $LastAction -eq 'false'", "$false"),
    ("not-looked-for", "$colliding = @(Get-CollidingDisk $Identity)", "$colliding = @()"),
    (
        "written-online",
        "        if (-not (Get-OurDisk).IsOffline) { Set-OurDisk 'IsOffline' $true }\n",
        "",
    ),
    ("no-recheck", "if ([int](Get-OurDisk).Number -ne $number)", "if ($false)"),
    ("no-read-back", "$now = Get-RawIdentity (Get-OurDisk)", "$now = $Identity"),
]


def test_a_colliding_clone_is_opened_and_given_back_its_identity_in_the_safe_order(
    script: str,
) -> None:
    assert collision_problems(script) == []


@pytest.mark.parametrize(
    ("old", "new"), [b[1:] for b in COLLISION_BREAKS], ids=[b[0] for b in COLLISION_BREAKS]
)
def test_the_collision_check_catches_each_unsafe_order(script: str, old: str, new: str) -> None:
    assert script.count(old) == 1, f"{old!r} must occur once in the script"
    assert collision_problems(script.replace(old, new)) != []
