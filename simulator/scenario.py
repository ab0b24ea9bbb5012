"""Scenario files: loaded, checked against scenarios/schema.json, turned into typed objects."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from simulator.clock import DEFAULT_START
from simulator.windows import ValidationScript

SCHEMA_PATH = Path(__file__).parent / "scenarios" / "schema.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"


class ScenarioError(Exception):
    """The scenario does not follow the documented schema, or refers to what it lacks."""


# What README asks of each backed-up instance: the module the nightly backup imports.
DEFAULT_POWERSHELL_MODULES = {"AWS.Tools.EC2": "4.1.700"}


@dataclass(frozen=True)
class VolumeSpec:
    alias: str
    device: str
    size: int
    drive_letters: tuple[str, ...]
    partition_style: str
    system: bool
    live_shadow_copies: int
    identity: str
    # "none", "aws-managed" (the account's aws/ebs key) or "customer-key" (a key of its own)
    encryption: str = "none"
    # Its drives are on a dynamic disk (striped, spanned): no partition Get-Partition finds.
    dynamic: bool = False
    # Mounted in this folder of another drive, with no drive letter (e.g. C:\Data).
    mount_folder: str = ""
    # NTFS volumes without a drive letter after the lettered ones: the backup never shadows them.
    unlettered_volumes: int = 0


@dataclass(frozen=True)
class InstanceSpec:
    alias: str
    platform: str
    helper: bool
    availability_zone: str
    state: str
    ping_status: str | None  # None: not managed by SSM
    tags: Mapping[str, str]
    volumes: tuple[VolumeSpec, ...]
    validation_scripts: Mapping[str, ValidationScript] = field(default_factory=dict)
    launched_before: float = 0.0  # seconds before the run's start (EC2's LaunchTime)
    read_only_scan: str = "refused"  # Repair-Volume -Scan on a read-only disk (WindowsHost)
    # PowerShell modules installed for all users, by name: their version (WindowsHost).
    powershell_modules: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_POWERSHELL_MODULES)
    )

    def volume(self, alias: str) -> VolumeSpec:
        for volume in self.volumes:
            if volume.alias == alias:
                return volume
        raise ScenarioError(f"instance {self.alias} has no volume {alias}")


@dataclass(frozen=True)
class SnapshotSpec:
    alias: str
    volume: str  # INSTANCE.VOLUME
    kind: str
    older_shadow_copies: int
    record_shadow_ids: bool
    state: str
    tags: Mapping[str, str]
    # Drives whose backup shadow copy is gone from the snapshot (VSS deletes shadow copies
    # when their storage area fills up), whatever the backup recorded.
    lost_shadow_copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: datetime
    region: str
    template: Path
    parameters: Mapping[str, str]
    timing: Mapping[str, float]
    instances: Mapping[str, InstanceSpec]
    snapshots: Mapping[str, SnapshotSpec]
    steps: tuple[Mapping[str, Any], ...]
    faults: tuple[Mapping[str, Any], ...]
    expect: Mapping[str, Any]
    execution_real_seconds: float = 120.0
    max_executions: int = 1000
    source: Path | None = field(default=None, compare=False)
    # HelperMode=fleet: "zones" (one subnet each, the operator's HelperSubnetIds), the
    # "zones_without_capacity" for helpers, how many helpers "never_online".
    fleet: Mapping[str, Any] = field(default_factory=dict)
    # The account's quotas (simulator/quotas.py): "on_demand_standard_vcpus".
    quotas: Mapping[str, Any] = field(default_factory=dict)


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def validate(document: Any) -> None:
    """Raise ScenarioError naming every place the document breaks the schema."""
    validator = jsonschema.Draft202012Validator(_schema())
    problems = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [f"  at {_where(p.absolute_path)}: {_message(p)}" for p in problems[:20]]
        raise ScenarioError("the scenario does not follow the schema:\n" + "\n".join(lines))


def _where(path: Any) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    return text.lstrip(".") or "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "oneOf" and error.context:
        # Say what is wrong with the alternative meant (the one whose keys are present),
        # not "is not valid under any of the given schemas".
        by_alternative: dict[Any, list[jsonschema.ValidationError]] = {}
        for problem in error.context:
            by_alternative.setdefault(problem.relative_schema_path[0], []).append(problem)
        meant = min(
            by_alternative.values(),
            key=lambda problems: (sum(p.validator == "required" for p in problems), len(problems)),
        )
        best = jsonschema.exceptions.best_match(meant)
        inner = _where(list(best.absolute_path)[len(error.absolute_path) :])
        return best.message if inner == "(top level)" else f"{inner}: {best.message}"
    return str(error.message)


def load(source: str | Path | Mapping[str, Any]) -> Scenario:
    if isinstance(source, Mapping):
        document: Any = dict(source)
        path = None
    else:
        path = Path(source)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise ScenarioError(f"{path}: no such scenario file") from None
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path}: not JSON: {exc}") from None
    validate(document)
    return _build(document, path)


def _build(document: Mapping[str, Any], path: Path | None) -> Scenario:
    region = document.get("region", "us-east-1")
    instances = {
        alias: _instance(alias, spec, region) for alias, spec in document["instances"].items()
    }
    snapshots = {
        alias: _snapshot(alias, spec, instances)
        for alias, spec in (document.get("snapshots") or {}).items()
    }
    _check_references(document, instances)
    template = document.get("template")
    template_path = (
        DEFAULT_TEMPLATE
        if not template
        else Path(template)
        if Path(template).is_absolute()
        else REPO_ROOT / template
    )
    limits = document.get("limits") or {}
    return Scenario(
        name=document["name"],
        description=document.get("description", ""),
        start=_start(document.get("start")),
        region=region,
        template=template_path,
        parameters={k: _text(v) for k, v in (document.get("parameters") or {}).items()},
        timing=dict(document.get("timing") or {}),
        instances=instances,
        snapshots=snapshots,
        steps=tuple(document["steps"]),
        faults=tuple(document.get("faults") or ()),
        expect=dict(document.get("expect") or {}),
        execution_real_seconds=float(limits.get("execution_real_seconds", 120.0)),
        max_executions=int(limits.get("max_executions", 1000)),
        source=path,
        fleet=dict(document.get("fleet") or {}),
        quotas=dict(document.get("quotas") or {}),
    )


def _check_references(document: Mapping[str, Any], instances: Mapping[str, InstanceSpec]) -> None:
    """Aliases the steps name must exist; snapshot aliases are checked when the step runs."""
    for index, step in enumerate(document["steps"], 1):
        named = [
            step.get("backup"),
            (step.get("set_ping_status") or {}).get("instance"),
            step.get("reboot"),
            step.get("stop_instance"),
            step.get("terminate_instance"),
            (step.get("nights") or {}).get("instance"),
        ]
        start = step.get("start") or {}
        named.append(start.get("helper"))
        for alias in filter(None, named):
            if alias not in instances:
                raise ScenarioError(f"step {index}: no instance {alias!r}")
        for volume in step.get("volumes") or []:
            instances[step["backup"]].volume(volume)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _start(text: str | None) -> datetime:
    if not text:
        return DEFAULT_START
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ScenarioError(f"start {text!r} needs a timezone (use Z for UTC)")
    return moment


_DEFAULT_VOLUMES = ({"alias": "C", "system": True, "drive_letters": ["C"]},)


def _instance(alias: str, spec: Mapping[str, Any], region: str) -> InstanceSpec:
    volumes = tuple(
        _volume(alias, index, v) for index, v in enumerate(spec.get("volumes") or _DEFAULT_VOLUMES)
    )
    aliases = [v.alias for v in volumes]
    if len(set(aliases)) != len(aliases):
        raise ScenarioError(f"instance {alias}: volume aliases repeat: {aliases}")
    systems = [v.alias for v in volumes if v.system]
    if len(systems) != 1:
        raise ScenarioError(f"instance {alias}: needs exactly one system volume, has {systems}")
    platform = spec.get("platform", "windows")
    ssm = spec.get("ssm", {})
    return InstanceSpec(
        alias=alias,
        platform=platform,
        helper=bool(spec.get("helper", False)),
        availability_zone=spec.get("availability_zone", f"{region}a"),
        state=spec.get("state", "running"),
        ping_status=None if ssm is False else ssm.get("ping_status", "Online"),
        tags=dict(spec.get("tags") or {}),
        volumes=volumes,
        validation_scripts={
            path: ValidationScript(
                int(script.get("exit_code", 0)),
                str(script.get("output", "")),
                tuple(script.get("writable_by", ())),
            )
            for path, script in (spec.get("validation_scripts") or {}).items()
        },
        read_only_scan=str(spec.get("read_only_scan", "refused")),
        powershell_modules=dict(spec.get("powershell_modules", DEFAULT_POWERSHELL_MODULES)),
        launched_before=float(spec.get("launched_before", 0)),
    )


def _volume(instance: str, index: int, spec: Mapping[str, Any]) -> VolumeSpec:
    system = bool(spec.get("system", False))
    default_device = "/dev/sda1" if system else "xvd" + "bcdefghijklmnopqrstuvwxyz"[index]
    return VolumeSpec(
        alias=spec["alias"],
        device=spec.get("device", default_device),
        size=int(spec.get("size", 30 if system else 50)),
        drive_letters=tuple(letter.upper() for letter in spec.get("drive_letters", [])),
        partition_style=spec.get("partition_style", "GPT"),
        system=system,
        live_shadow_copies=int(spec.get("live_shadow_copies", 0)),
        identity=spec.get("identity", ""),
        encryption=spec.get("encryption", "none"),
        dynamic=bool(spec.get("dynamic", False)),
        mount_folder=spec.get("mount_folder", ""),
        unlettered_volumes=int(spec.get("unlettered_volumes", 0)),
    )


def _snapshot(
    alias: str, spec: Mapping[str, Any], instances: Mapping[str, InstanceSpec]
) -> SnapshotSpec:
    instance_alias, volume_alias = spec["volume"].split(".", 1)
    if instance_alias not in instances:
        raise ScenarioError(f"snapshot {alias}: no instance {instance_alias}")
    instances[instance_alias].volume(volume_alias)
    return SnapshotSpec(
        alias=alias,
        volume=spec["volume"],
        kind=spec.get("kind", "vss-backup"),
        older_shadow_copies=int(spec.get("older_shadow_copies", 0)),
        record_shadow_ids=bool(spec.get("record_shadow_ids", True)),
        state=spec.get("state", "completed"),
        tags=dict(spec.get("tags") or {}),
        lost_shadow_copies=tuple(d.upper() for d in spec.get("lost_shadow_copies", [])),
    )
