"""Read template.yaml: the functions, the disk tool document, the event patterns, the
schedules, the ASL."""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from simulator import schedules
from simulator.clock import DEFAULT_START
from tools.cfn_template import load_yaml

PSEUDO_PARAMETERS = ("AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition")
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_EVENT_SOURCE_TYPES = ("EventBridgeRule", "CloudWatchEvent")
_SCHEDULE_TYPES = ("Schedule", "ScheduleV2")
STATE_MACHINE = "state_machine"
FUNCTION = "function"


class TemplateError(Exception):
    """template.yaml is missing something the simulator needs, or uses what it cannot model."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: Path
    environment: Mapping[str, Any]
    timeout: int
    memory: int


@dataclass(frozen=True)
class DocumentSpec:
    logical_id: str
    name: Any
    content: Any
    document_type: str


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule that starts a state machine or invokes a function."""

    name: str
    target: str  # logical ID
    pattern: Any
    input_path: str | None = None
    constant_input: Any = None
    target_kind: str = STATE_MACHINE


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule that invokes a function: an EventBridge rule (Schedule) or EventBridge
    Scheduler (ScheduleV2)."""

    name: str
    function: str  # logical ID
    expression: Any  # may hold intrinsic functions until deployed
    timezone: str = "UTC"
    constant_input: Any = None
    enabled: Any = True  # may hold intrinsic functions (State: !If ...) until deployed
    scheduler: bool = False  # EventBridge Scheduler: source aws.scheduler


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition: Callable[[], str]
    substitutions: Mapping[str, Any]
    name: Any = None


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    documents: dict[str, DocumentSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    rules: list[RuleSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body.get("Resources") or {}
        return resources

    def parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        unknown = sorted(set(overrides) - set(self.parameters))
        if unknown:
            raise TemplateError(f"template.yaml has no parameter(s) {', '.join(unknown)}")
        values = {}
        for name, definition in self.parameters.items():
            if name in overrides:
                values[name] = str(overrides[name])
                _check_parameter(name, definition, values[name])
            elif "Default" in definition:
                values[name] = _parameter_text(definition["Default"])
        return values


def _check_parameter(name: str, definition: Mapping[str, Any], value: str) -> None:
    """CloudFormation refuses a parameter value its AllowedValues or AllowedPattern rule out."""
    allowed = definition.get("AllowedValues")
    if allowed is not None and value not in [_parameter_text(a) for a in allowed]:
        raise TemplateError(
            f"Parameter '{name}' must be one of AllowedValues {allowed}, not {value!r}"
        )
    pattern = definition.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        raise TemplateError(
            f"Parameter '{name}' failed to satisfy constraint: Must match pattern {pattern} "
            f"(value {value!r})"
        )


def _parameter_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def load_template(path: Path) -> Template:
    if not path.is_file():
        raise TemplateError(f"{path} does not exist")
    body = load_yaml(path.read_text())
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    template = Template(path=path, body=body, parameters=dict(body.get("Parameters") or {}))
    globals_function: dict[str, Any] = (body.get("Globals") or {}).get("Function") or {}
    for logical_id, resource in template.resources.items():
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function":
            template.functions[logical_id] = _function(
                path.parent, logical_id, globals_function, properties
            )
            template.rules.extend(_serverless_rules(logical_id, properties, FUNCTION))
            template.schedules.extend(_serverless_schedules(logical_id, properties))
        elif kind == "AWS::SSM::Document":
            template.documents[logical_id] = DocumentSpec(
                logical_id=logical_id,
                name=properties.get("Name"),
                content=_document_content(logical_id, properties.get("Content")),
                document_type=properties.get("DocumentType", "Command"),
            )
        elif kind == "AWS::Serverless::StateMachine":
            template.state_machines[logical_id] = _state_machine(
                path.parent, logical_id, properties
            )
            template.rules.extend(_serverless_rules(logical_id, properties, STATE_MACHINE))
    template.rules.extend(_standalone_rules(template))
    template.schedules.extend(_standalone_schedules(template))
    for schedule in template.schedules:
        if isinstance(schedule.expression, str):
            check_schedule(schedule)
    return template


def check_schedule(
    schedule: ScheduleSpec, expression: Any = None, origin: datetime = DEFAULT_START
) -> schedules.Schedule:
    """The schedule as the simulator fires it; TemplateError for what it cannot fire."""
    text = schedule.expression if expression is None else expression
    try:
        return schedules.parse(str(text), origin, schedule.timezone)
    except schedules.ScheduleError as exc:
        raise TemplateError(f"{schedule.name}: {exc}") from None


def _function(
    root: Path, logical_id: str, globals_function: Mapping[str, Any], properties: Mapping[str, Any]
) -> FunctionSpec:
    merged = {**globals_function, **properties}
    handler = merged.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id}: Handler must be 'module.function', got {handler!r}")
    environment = {
        **((globals_function.get("Environment") or {}).get("Variables") or {}),
        **((properties.get("Environment") or {}).get("Variables") or {}),
    }
    code_uri = merged.get("CodeUri", ".")
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        code_uri=(root / code_uri) if isinstance(code_uri, str) else root,
        environment=environment,
        timeout=int(merged.get("Timeout", 3)),
        memory=int(merged.get("MemorySize", 128)),
    )


def _document_content(logical_id: str, content: Any) -> Any:
    # CloudFormation accepts the document as an object or as JSON/YAML text.
    if isinstance(content, str):
        return load_yaml(content)
    if content is None:
        raise TemplateError(f"{logical_id}: AWS::SSM::Document without Content")
    return content


def _state_machine(root: Path, logical_id: str, properties: Mapping[str, Any]) -> StateMachineSpec:
    definition: Callable[[], str]
    if "DefinitionUri" in properties:
        uri = properties["DefinitionUri"]
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}: only a local DefinitionUri file is supported")
        asl_path = root / uri

        def definition() -> str:
            if not asl_path.is_file():
                raise TemplateError(f"{logical_id}: {asl_path} does not exist")
            return asl_path.read_text()

    elif "Definition" in properties:
        inline = json.dumps(properties["Definition"])

        def definition() -> str:
            return inline

    else:
        raise TemplateError(f"{logical_id}: neither DefinitionUri nor Definition")
    return StateMachineSpec(
        logical_id=logical_id,
        definition=definition,
        substitutions=properties.get("DefinitionSubstitutions") or {},
        name=properties.get("Name"),
    )


def _serverless_rules(logical_id: str, properties: Mapping[str, Any], kind: str) -> list[RuleSpec]:
    rules = []
    for name, source in (properties.get("Events") or {}).items():
        if source.get("Type") not in _EVENT_SOURCE_TYPES:
            continue
        event_properties = source.get("Properties") or {}
        if "InputTransformer" in event_properties:
            raise TemplateError(f"{logical_id}.{name}: InputTransformer is not simulated")
        rules.append(
            RuleSpec(
                name=name,
                target=logical_id,
                pattern=event_properties.get("Pattern") or {},
                input_path=event_properties.get("InputPath"),
                constant_input=event_properties.get("Input"),
                target_kind=kind,
            )
        )
    return rules


def _serverless_schedules(logical_id: str, properties: Mapping[str, Any]) -> list[ScheduleSpec]:
    found = []
    for name, source in (properties.get("Events") or {}).items():
        kind = source.get("Type")
        if kind not in _SCHEDULE_TYPES:
            continue
        event_properties = source.get("Properties") or {}
        scheduler = kind == "ScheduleV2"
        expression = event_properties.get("ScheduleExpression" if scheduler else "Schedule")
        if expression is None:
            raise TemplateError(f"{logical_id}.{name}: {kind} without a schedule expression")
        found.append(
            ScheduleSpec(
                name=name,
                function=logical_id,
                expression=expression,
                timezone=str(event_properties.get("ScheduleExpressionTimezone") or "UTC"),
                constant_input=event_properties.get("Input"),
                enabled=_enabled(event_properties),
                scheduler=scheduler,
            )
        )
    return found


def _enabled(properties: Mapping[str, Any]) -> Any:
    """False, True, or the intrinsic that decides it at deployment (State: !If ...)."""
    if properties.get("Enabled") is False:
        return False
    state = properties.get("State", "ENABLED")
    return state if isinstance(state, Mapping) else is_enabled(state)


def is_enabled(state: Any) -> bool:
    """A schedule's State (or Enabled), resolved."""
    return state if isinstance(state, bool) else str(state).upper() == "ENABLED"


def _standalone_rules(template: Template) -> list[RuleSpec]:
    rules = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        properties = resource.get("Properties") or {}
        if "EventPattern" not in properties:
            continue
        for target in properties.get("Targets") or []:
            target_id = _referenced_logical_id(target.get("Arn"))
            if target_id in template.state_machines:
                kind = STATE_MACHINE
            elif target_id in template.functions:
                kind = FUNCTION
            else:
                continue
            if "InputTransformer" in target:
                raise TemplateError(f"{logical_id}: InputTransformer is not simulated")
            rules.append(
                RuleSpec(
                    name=logical_id,
                    target=target_id,
                    pattern=properties.get("EventPattern") or {},
                    input_path=target.get("InputPath"),
                    constant_input=target.get("Input"),
                    target_kind=kind,
                )
            )
    return rules


def _standalone_schedules(template: Template) -> list[ScheduleSpec]:
    """AWS::Events::Rule with a ScheduleExpression, AWS::Scheduler::Schedule: to functions."""
    found = []
    for logical_id, resource in template.resources.items():
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind == "AWS::Events::Rule" and "ScheduleExpression" in properties:
            targets = properties.get("Targets") or []
            scheduler = False
        elif kind == "AWS::Scheduler::Schedule":
            targets = [properties.get("Target") or {}]
            scheduler = True
        else:
            continue
        for target in targets:
            function = _referenced_logical_id(target.get("Arn"))
            if function not in template.functions:
                continue
            found.append(
                ScheduleSpec(
                    name=logical_id,
                    function=function,
                    expression=properties["ScheduleExpression"],
                    timezone=str(properties.get("ScheduleExpressionTimezone") or "UTC"),
                    constant_input=target.get("Input"),
                    enabled=_enabled(properties),
                    scheduler=scheduler,
                )
            )
    return found


def _referenced_logical_id(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


@dataclass
class Resolver:
    """Evaluates CloudFormation intrinsic functions against the simulated stack."""

    parameters: Mapping[str, str]
    pseudo: Mapping[str, str]
    refs: Mapping[str, str]
    attributes: Mapping[tuple[str, str], str]
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value if not _is_no_value(item)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            function = self._functions().get(key)
            if function is not None:
                return function(argument)
        return {k: self.resolve(v) for k, v in value.items() if not _is_no_value(v)}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::If": self._if,
            "Fn::Join": lambda a: str(a[0]).join(str(x) for x in self.resolve(a[1])),
            "Fn::Select": lambda a: self.resolve(a[1])[int(self.resolve(a[0]))],
            "Fn::Split": lambda a: str(self.resolve(a[1])).split(str(a[0])),
            "Fn::Equals": lambda a: str(self.resolve(a[0])) == str(self.resolve(a[1])),
            "Fn::Not": lambda a: not self.resolve(a[0]),
            "Fn::And": lambda a: all(self.resolve(x) for x in a),
            "Fn::Or": lambda a: any(self.resolve(x) for x in a),
            "Condition": self.condition,
        }

    def _ref(self, name: Any) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"!Ref {name}: no such parameter or simulated resource")

    def _get_att(self, argument: Any) -> str:
        logical_id, attribute = (
            argument.split(".", 1) if isinstance(argument, str) else [str(a) for a in argument]
        )
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: not simulated") from None

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)
            return self._ref(name)

        return _SUB_VARIABLE.sub(replace, str(text))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def condition(self, name: Any) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"condition {name} is not defined")
        return bool(self.resolve(self.conditions[name]))


def _is_no_value(value: Any) -> bool:
    return isinstance(value, dict) and value == {"Ref": "AWS::NoValue"}
