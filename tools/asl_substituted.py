"""Writes ASL copies with each ${Placeholder} filled with a fake value, for asl-validator."""

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.cfn_template import load_template, resources

ACCOUNT = "123456789012"
REGION = "us-east-1"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "vss-restore",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/vss-restore/fake",
}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


# The ARN `!GetAtt X.Arn` gives, by resource type; other types get a generic ARN.
ARN_BY_TYPE: dict[str, Callable[[str], str]] = {
    "AWS::Serverless::Function": lambda name: _arn("lambda", f"function:{name}"),
    "AWS::Lambda::Function": lambda name: _arn("lambda", f"function:{name}"),
    "AWS::Serverless::StateMachine": lambda name: _arn("states", f"stateMachine:{name}"),
    "AWS::StepFunctions::StateMachine": lambda name: _arn("states", f"stateMachine:{name}"),
    "AWS::SNS::Topic": lambda name: _arn("sns", name),
    "AWS::SQS::Queue": lambda name: _arn("sqs", name),
    "AWS::DynamoDB::Table": lambda name: _arn("dynamodb", f"table/{name}"),
    "AWS::Serverless::SimpleTable": lambda name: _arn("dynamodb", f"table/{name}"),
    "AWS::Events::EventBus": lambda name: _arn("events", f"event-bus/{name}"),
    "AWS::SSM::Document": lambda name: _arn("ssm", f"document/{name}"),
    "AWS::Logs::LogGroup": lambda name: _arn("logs", f"log-group:{name}"),
    "AWS::IAM::Role": lambda name: f"arn:aws:iam::{ACCOUNT}:role/{name}",
    "AWS::S3::Bucket": lambda name: f"arn:aws:s3:::{name.lower()}",
}
# Resource types whose `!Ref` is an ARN or URL rather than a name.
REF_BY_TYPE: dict[str, Callable[[str], str]] = {
    "AWS::SNS::Topic": ARN_BY_TYPE["AWS::SNS::Topic"],
    "AWS::Serverless::StateMachine": ARN_BY_TYPE["AWS::Serverless::StateMachine"],
    "AWS::StepFunctions::StateMachine": ARN_BY_TYPE["AWS::StepFunctions::StateMachine"],
    "AWS::SQS::Queue": lambda name: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
}


class SubstitutionError(Exception):
    """A placeholder or substitution value that cannot be filled in."""


class FakeValues:
    """Resolves substitution values (plain values and intrinsics) against one template."""

    def __init__(self, template: dict[str, Any]) -> None:
        self._resources = resources(template)
        self._parameters: dict[str, Any] = template.get("Parameters") or {}

    def resolve(self, value: Any) -> str:
        if isinstance(value, bool):
            return json.dumps(value)
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(str(argument))
            if function == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else (argument, "")
                return self._get_att(str(name), str(attribute))
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
                delimiter, parts = argument
                return str(delimiter).join(self.resolve(part) for part in parts)
        raise SubstitutionError(f"cannot fake a value for {value!r}")

    def _ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self._parameters:
            default = (self._parameters[name] or {}).get("Default")
            return f"fake-{name}" if default is None else self.resolve(default)
        ref = REF_BY_TYPE.get(self._type_of(name))
        return ref(name) if ref else name

    def _get_att(self, name: str, attribute: str) -> str:
        resource_type = self._type_of(name)
        if attribute == "Arn":
            arn = ARN_BY_TYPE.get(resource_type)
            return arn(name) if arn else _generic_arn(resource_type, name)
        if attribute.endswith("Arn"):
            return _generic_arn(resource_type, f"{name}-{attribute}")
        return f"fake-{name}-{attribute}"

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def fill(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return self.resolve(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                name, attribute = expression.split(".", 1)
                return self._get_att(name, attribute)
            return self._ref(expression)

        return re.sub(r"\$\{([^}]+)\}", fill, str(text))

    def _type_of(self, name: str) -> str:
        if name not in self._resources:
            raise SubstitutionError(f"no resource or parameter named {name!r} in the template")
        return str(self._resources[name].get("Type", ""))


def _generic_arn(resource_type: str, name: str) -> str:
    parts = resource_type.split("::")  # AWS::Service::Kind
    service, kind = (parts[1], parts[2]) if len(parts) == 3 else ("fake", "resource")
    return _arn(service.lower(), f"{kind.lower()}/{name}")


def substitutions_for(
    template: dict[str, Any], template_dir: Path, asl_file: Path
) -> dict[str, Any] | None:
    """The DefinitionSubstitutions of the state machine whose DefinitionUri is `asl_file`,
    or None when no state machine uses that file."""
    for body in resources(template).values():
        properties = body.get("Properties") or {}
        uri = properties.get("DefinitionUri")
        if (
            body.get("Type") in STATE_MACHINE_TYPES
            and isinstance(uri, str)
            and (template_dir / uri).resolve() == asl_file.resolve()
        ):
            return dict(properties.get("DefinitionSubstitutions") or {})
    return None


def substitute(asl_text: str, substitutions: dict[str, Any], fakes: FakeValues) -> str:
    """The ASL text with every ${Name} filled; raises if any has no substitution."""
    missing = sorted(set(PLACEHOLDER.findall(asl_text)) - substitutions.keys())
    if missing:
        names = ", ".join("${" + name + "}" for name in missing)
        raise SubstitutionError(f"no DefinitionSubstitutions entry for {names}")
    values = {name: fakes.resolve(value) for name, value in substitutions.items()}
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], asl_text)


def write_substituted(template_path: Path, asl_files: Sequence[Path], out_dir: Path) -> list[Path]:
    """Writes one substituted copy per ASL file into `out_dir` and returns their paths."""
    template = load_template(template_path)
    fakes = FakeValues(template)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for asl_file in asl_files:
        substitutions = substitutions_for(template, template_path.parent, asl_file)
        if substitutions is None:
            raise SubstitutionError(
                f"{asl_file}: no state machine in {template_path} has it as DefinitionUri"
            )
        try:
            text = substitute(asl_file.read_text(encoding="utf-8"), substitutions, fakes)
            json.loads(text)
        except SubstitutionError as exc:
            raise SubstitutionError(f"{asl_file}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise SubstitutionError(f"{asl_file}: not JSON once substituted: {exc}") from exc
        target = out_dir / asl_file.name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("asl_files", nargs="+", type=Path, metavar="ASL_FILE")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--out-dir", type=Path, default=Path("out/asl"))
    args = parser.parse_args(argv)
    try:
        written = write_substituted(args.template, args.asl_files, args.out_dir)
    except (OSError, ValueError, SubstitutionError) as exc:
        print(f"asl_substituted: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
