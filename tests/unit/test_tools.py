"""The repository's check tools catch what they are meant to catch."""

import json
import textwrap
from pathlib import Path

import pytest

from tools import asl_substituted, parse_powershell

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  RevertFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/
      Handler: app.handler
      Runtime: python3.12
  Restore:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine/restore.asl.json
      DefinitionSubstitutions:
        RevertFunctionArn: !GetAtt RevertFunction.Arn
        DocumentName: !Ref DiskTool
  DiskTool:
    Type: AWS::SSM::Document
    Properties:
      DocumentType: Command
      Content:
        schemaVersion: "2.2"
        mainSteps:
          - action: aws:runPowerShellScript
            name: DiskTool
            inputs:
              runCommand:
                - |
{script}
"""
GOOD_SCRIPT = """\
$ErrorActionPreference = 'Stop'
$disk = Get-Disk | Where-Object { $_.SerialNumber -like 'vol*' }
if ($disk.IsOffline) {
    Set-Disk -Number $disk.Number -IsOffline $false
}
@{ ok = $true } | ConvertTo-Json -Compress
"""
UNCLOSED_BRACE = """\
$ErrorActionPreference = 'Stop'
if ($true) {
    Write-Output 'never closed'
"""


def write_template(directory: Path, script: str) -> Path:
    template = directory / "template.yaml"
    indented = textwrap.indent(script, " " * 18)
    template.write_text(TEMPLATE.format(script=indented), encoding="utf-8")
    return template


def write_asl(directory: Path, definition: dict[str, object]) -> Path:
    asl = directory / "statemachine" / "restore.asl.json"
    asl.parent.mkdir(exist_ok=True)
    asl.write_text(json.dumps(definition, indent=2), encoding="utf-8")
    return asl


def invoke_state(resource_placeholder: str) -> dict[str, object]:
    return {
        "StartAt": "Revert the volume",
        "States": {
            "Revert the volume": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": resource_placeholder, "Payload.$": "$"},
                "End": True,
            }
        },
    }


def test_parse_powershell_accepts_a_well_formed_script(tmp_path: Path) -> None:
    template = write_template(tmp_path, GOOD_SCRIPT)

    scripts = parse_powershell.template_scripts(template)

    assert [script.label for script in scripts] == ["DiskTool step DiskTool"]
    assert parse_powershell.syntax_problems(scripts[0]) == []
    assert parse_powershell.main(["--template", str(template), "--root", str(tmp_path)]) == 0


def test_parse_powershell_flags_an_unclosed_brace_at_its_template_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = write_template(tmp_path, UNCLOSED_BRACE)

    exit_code = parse_powershell.main(["--template", str(template), "--root", str(tmp_path)])

    assert exit_code == 1
    errors = capsys.readouterr().err
    assert "missing '}'" in errors
    script_start = TEMPLATE.splitlines().index("{script}") + 1
    reported_line = int(errors.split(":")[1])
    assert script_start <= reported_line <= script_start + UNCLOSED_BRACE.count("\n")


def test_parse_powershell_checks_ps1_files_too(tmp_path: Path) -> None:
    template = write_template(tmp_path, GOOD_SCRIPT)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "broken.ps1").write_text("function f( { }\n", encoding="utf-8")

    assert parse_powershell.main(["--template", str(template), "--root", str(tmp_path)]) == 1


def test_parse_powershell_fails_when_it_finds_no_script(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources: {}\n", encoding="utf-8")

    assert parse_powershell.main(["--template", str(template), "--root", str(tmp_path)]) == 1


def test_asl_substituted_fills_placeholders_with_fake_arns(tmp_path: Path) -> None:
    template = write_template(tmp_path, GOOD_SCRIPT)
    asl = write_asl(tmp_path, invoke_state("${RevertFunctionArn}"))

    (written,) = asl_substituted.write_substituted(template, [asl], tmp_path / "out")

    definition = json.loads(written.read_text(encoding="utf-8"))
    function_name = definition["States"]["Revert the volume"]["Parameters"]["FunctionName"]
    assert function_name == "arn:aws:lambda:us-east-1:123456789012:function:RevertFunction"


def test_asl_substituted_fails_on_a_placeholder_without_substitution(tmp_path: Path) -> None:
    template = write_template(tmp_path, GOOD_SCRIPT)
    asl = write_asl(tmp_path, invoke_state("${CleanupFunctionArn}"))

    with pytest.raises(asl_substituted.SubstitutionError, match=r"\$\{CleanupFunctionArn\}"):
        asl_substituted.write_substituted(template, [asl], tmp_path / "out")
    exit_code = asl_substituted.main(
        ["--template", str(template), "--out-dir", str(tmp_path / "out"), str(asl)]
    )
    assert exit_code == 1


# --- tools.documents: the SSM documents' scripts in documents/*.ps1 -----------------------

DOCUMENT_TEMPLATE = """Resources:
  Doc:
    Type: AWS::SSM::Document
    Properties:
      Content:
        mainSteps:
          - action: aws:runPowerShellScript
            name: Step
            inputs:
              runCommand:
                - |
                  $a = 1

                  exit $a

  Next:
    Type: AWS::SNS::Topic
"""


def test_a_documents_script_is_read_as_yaml_reads_it_and_written_back_in_place() -> None:
    from tools.documents import embed, embedded

    assert embedded(DOCUMENT_TEMPLATE, "Doc") == "$a = 1\n\nexit $a\n"
    changed = embed(DOCUMENT_TEMPLATE, "Doc", "exit 0\n")
    assert embedded(changed, "Doc") == "exit 0\n"
    assert changed.endswith("                  exit 0\n\n  Next:\n    Type: AWS::SNS::Topic\n")
    assert embed(changed, "Doc", "$a = 1\n\nexit $a\n") == DOCUMENT_TEMPLATE
    with pytest.raises(ValueError, match="one newline"):
        embed(DOCUMENT_TEMPLATE, "Doc", "exit 0")


def test_template_yaml_holds_exactly_each_documents_script() -> None:
    from tools.cfn_template import load_template
    from tools.documents import REPO, SCRIPTS, TEMPLATE

    resources = load_template(TEMPLATE)["Resources"]
    for document, relative in SCRIPTS.items():
        [command] = resources[document]["Properties"]["Content"]["mainSteps"][0]["inputs"][
            "runCommand"
        ]
        assert str(command) == (REPO / relative).read_text(encoding="utf-8"), document
