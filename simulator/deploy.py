"""Deploy template.yaml into moto: functions, the disk tool document, state machines, tables,
topics, rules and schedules."""

import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3

from simulator.events import DeployedSchedule, Rule
from simulator.lambdas import DeployedFunction, Functions
from simulator.ssm import Agents, CommandDocument
from simulator.template import (
    FUNCTION,
    Resolver,
    Template,
    TemplateError,
    check_schedule,
    is_enabled,
)
from simulator.world import World

STACK_NAME = "vss-restore"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")
_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class Stack:
    """What the simulated deployment created, by logical ID."""

    state_machines: dict[str, str] = field(default_factory=dict)  # logical ID -> ARN
    rules: list[Rule] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)  # logical ID -> name
    parameters: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)  # logical ID -> ASL as run
    tables: dict[str, str] = field(default_factory=dict)  # logical ID -> table name
    topics: dict[str, str] = field(default_factory=dict)  # logical ID -> topic ARN
    schedules: list[DeployedSchedule] = field(default_factory=list)
    # logical ID -> the physical name IAM's ARNs use (table, topic, queue, machine, document)
    names: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)  # the template's Outputs, resolved


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "# the simulator runs the handlers in process\n")
    return buffer.getvalue()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def deploy(
    template: Template,
    parameter_overrides: Mapping[str, str],
    world: World,
    functions: Functions,
    agents: Agents,
) -> Stack:
    region, account = world.region, world.account_id
    stack = Stack(parameters=template.parameter_values(parameter_overrides))
    refs: dict[str, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    resolver = Resolver(
        parameters=stack.parameters,
        pseudo={
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
        refs=refs,
        attributes=attributes,
        conditions=template.body.get("Conditions") or {},
    )
    iam = boto3.client("iam", region_name=region)
    role_arn = iam.create_role(RoleName=f"{STACK_NAME}-sim", AssumeRolePolicyDocument=_TRUST)[
        "Role"
    ]["Arn"]

    # Keys first: a topic names its key wherever the template declares it.
    ordered = sorted(
        template.resources.items(), key=lambda item: item[1].get("Type") != "AWS::KMS::Key"
    )
    for logical_id, resource in ordered:
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        _name_resource(logical_id, resource, resolver, refs, attributes, region, account)
        stack.names[logical_id] = (
            attributes.get((logical_id, "QueueName"))
            or refs.get(f"{logical_id}#name")
            or refs[logical_id]
        )
        if resource.get("Type") in {"AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"}:
            stack.tables[logical_id] = refs[logical_id]
        elif resource.get("Type") == "AWS::SNS::Topic":
            stack.topics[logical_id] = refs[logical_id]

    ssm: Any = boto3.client("ssm", region_name=region)
    for logical_id, document in template.documents.items():
        name = refs[logical_id]
        content = resolver.resolve(document.content)
        ssm.create_document(
            Content=json.dumps(content),
            Name=name,
            DocumentType=document.document_type,
            DocumentFormat="JSON",
        )
        parameters = content.get("parameters") or {}
        agents.documents[name] = CommandDocument.from_content(
            name, content, is_disk_tool={"Action", "VolumeId"} <= set(parameters)
        )
        stack.documents[logical_id] = name

    lambda_client = boto3.client("lambda", region_name=region)
    code = _code_zip()
    for logical_id, spec in template.functions.items():
        environment = {k: _text(resolver.resolve(v)) for k, v in spec.environment.items()}
        environment.update(_lambda_runtime_environment(logical_id, spec.memory, region))
        created = lambda_client.create_function(
            FunctionName=logical_id,
            Runtime="python3.12",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": code},
            Timeout=spec.timeout,
            MemorySize=spec.memory,
        )
        functions.add(DeployedFunction(spec, logical_id, created["FunctionArn"], environment))

    sfn = boto3.client("stepfunctions", region_name=region)
    for logical_id, machine in template.state_machines.items():
        substitutions = {k: _text(resolver.resolve(v)) for k, v in machine.substitutions.items()}
        definition = _substitute(logical_id, machine.definition(), substitutions)
        created_machine = sfn.create_state_machine(
            name=refs[f"{logical_id}#name"],
            definition=definition,
            roleArn=role_arn,
            type="STANDARD",
        )
        stack.state_machines[logical_id] = created_machine["stateMachineArn"]
        stack.definitions[logical_id] = definition

    patterns: dict[str, Any] = {}
    for rule in template.rules:
        function = rule.target_kind == FUNCTION
        patterns[rule.name] = resolver.resolve(rule.pattern)
        stack.rules.append(
            Rule.build(
                rule.name,
                rule.target if function else stack.state_machines[rule.target],
                patterns[rule.name],
                rule.input_path,
                resolver.resolve(rule.constant_input),
                invokes_function=function,
            )
        )
    now = world.clock.now()
    for planned in template.schedules:
        schedule = check_schedule(planned, resolver.resolve(planned.expression), origin=now)
        service = "scheduler" if planned.scheduler else "events"
        path = f"schedule/default/{planned.name}" if planned.scheduler else f"rule/{planned.name}"
        stack.schedules.append(
            DeployedSchedule(
                name=planned.name,
                function=planned.function,
                schedule=schedule,
                constant_input=resolver.resolve(planned.constant_input),
                enabled=is_enabled(resolver.resolve(planned.enabled)),
                scheduler=planned.scheduler,
                arn=f"arn:aws:{service}:{region}:{account}:{path}",
                next_fire=schedule.next_after(now),
            )
        )
    for key, output in (template.body.get("Outputs") or {}).items():
        if "Condition" not in output or resolver.condition(output["Condition"]):
            stack.outputs[key] = _text(resolver.resolve(output["Value"]))
    _record(stack, patterns, region)
    return stack


def _record(stack: Stack, patterns: Mapping[str, Any], region: str) -> None:
    """What the operator's tools read of a deployment: the stack with its parameters and
    outputs (in CloudFormation, whose moto cannot run SAM: a record of it with no resource),
    and the rules that start restores (in EventBridge, targets included). The
    simulator's rules only fire while EventBridge has them enabled."""
    events: Any = boto3.client("events", region_name=region)
    for rule in stack.rules:
        if rule.invokes_function:
            continue
        events.put_rule(
            Name=rule_name(rule.name),
            EventPattern=json.dumps(patterns[rule.name]),
            State="ENABLED",
        )
        events.put_targets(Rule=rule_name(rule.name), Targets=[{"Id": "1", "Arn": rule.target}])
    record = {
        "Parameters": {name: {"Type": "String"} for name in stack.parameters},
        "Resources": {},
        "Outputs": {key: {"Value": value} for key, value in stack.outputs.items() if value},
    }
    boto3.client("cloudformation", region_name=region).create_stack(
        StackName=STACK_NAME,
        TemplateBody=json.dumps(record),
        Parameters=[
            {"ParameterKey": name, "ParameterValue": value}
            for name, value in stack.parameters.items()
        ],
    )


def rule_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


def _lambda_runtime_environment(name: str, memory: int, region: str) -> dict[str, str]:
    """What the Lambda service itself puts in a function's environment."""
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }


def _substitute(logical_id: str, definition: str, values: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(
                f"{logical_id}: the ASL uses ${{{name}}}, which "
                "DefinitionSubstitutions does not define"
            )
        return values[name]

    text = _PLACEHOLDER.sub(replace, definition)
    json.loads(text)  # a substitution must leave valid JSON
    return text


def _name_resource(
    logical_id: str,
    resource: Mapping[str, Any],
    resolver: Resolver,
    refs: dict[str, str],
    attributes: dict[tuple[str, str], str],
    region: str,
    account: str,
) -> None:
    """The names and ARNs !Ref and !GetAtt give, creating what handlers may call."""
    kind = resource.get("Type", "")
    properties = resource.get("Properties") or {}

    def named(key: str, default: str) -> str:
        value = properties.get(key)
        if value is None:
            return default
        try:
            return _text(resolver.resolve(value))
        except TemplateError:
            return default

    default = f"{STACK_NAME}-{logical_id}"
    if kind == "AWS::Serverless::Function":
        refs[logical_id] = logical_id
        attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{logical_id}"
    elif kind == "AWS::Serverless::StateMachine":
        name = named("Name", f"{logical_id}-sim")
        arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
        refs[logical_id] = arn
        refs[f"{logical_id}#name"] = name
        attributes[(logical_id, "Arn")] = arn
        attributes[(logical_id, "Name")] = name
    elif kind == "AWS::SSM::Document":
        refs[logical_id] = named("Name", default)
    elif kind == "AWS::IAM::ManagedPolicy":
        # Created in IAM, so that a role can attach it (the backed-up instances' roles do).
        name = named("ManagedPolicyName", default)
        document = resolver.resolve(properties["PolicyDocument"])
        created = boto3.client("iam", region_name=region).create_policy(
            PolicyName=name,
            PolicyDocument=document if isinstance(document, str) else json.dumps(document),
        )
        refs[logical_id] = created["Policy"]["Arn"]
        refs[f"{logical_id}#name"] = name
    elif kind == "AWS::SQS::Queue":
        name = named("QueueName", default)
        url = boto3.client("sqs", region_name=region).create_queue(QueueName=name)["QueueUrl"]
        refs[logical_id] = url
        attributes[(logical_id, "Arn")] = f"arn:aws:sqs:{region}:{account}:{name}"
        attributes[(logical_id, "QueueName")] = name
        attributes[(logical_id, "QueueUrl")] = url
    elif kind == "AWS::KMS::Key":
        made = boto3.client("kms", region_name=region).create_key(
            Description=named("Description", logical_id)
        )["KeyMetadata"]
        refs[logical_id] = made["KeyId"]
        attributes[(logical_id, "Arn")] = made["Arn"]
        attributes[(logical_id, "KeyId")] = made["KeyId"]
    elif kind == "AWS::SNS::Topic":
        name = named("TopicName", default)
        # Encrypted under the template's key, when it names one (keys are made first).
        key_ref = properties.get("KmsMasterKeyId")
        attributes_of_topic = (
            {"KmsMasterKeyId": _text(resolver.resolve(key_ref))} if key_ref else {}
        )
        arn = boto3.client("sns", region_name=region).create_topic(
            Name=name, Attributes=attributes_of_topic
        )["TopicArn"]
        refs[logical_id] = arn
        attributes[(logical_id, "TopicArn")] = arn
        attributes[(logical_id, "TopicName")] = name
    elif kind in {"AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"}:
        name = named("TableName", default)
        _create_table(name, resolver.resolve(properties), kind, region)
        refs[logical_id] = name
        attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    elif kind == "AWS::EC2::SecurityGroup":
        ec2: Any = boto3.client("ec2", region_name=region)
        vpc = resolver.resolve(properties.get("VpcId", ""))
        group = ec2.create_security_group(
            GroupName=default, Description=named("GroupDescription", default), VpcId=vpc
        )["GroupId"]
        egress = resolver.resolve(properties.get("SecurityGroupEgress", []))
        if egress:
            # EC2's default egress (all to anywhere) stays unless egress rules are given
            # (CloudFormation, AWS::EC2::SecurityGroup, SecurityGroupEgress).
            ec2.revoke_security_group_egress(
                GroupId=group,
                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
            )
            ec2.authorize_security_group_egress(
                GroupId=group, IpPermissions=[_ip_permission(rule) for rule in egress]
            )
        refs[logical_id] = group
        attributes[(logical_id, "GroupId")] = group
    elif kind == "AWS::IAM::Role":
        iam: Any = boto3.client("iam", region_name=region)
        trust = resolver.resolve(properties["AssumeRolePolicyDocument"])
        role = iam.create_role(RoleName=default, AssumeRolePolicyDocument=json.dumps(trust))
        for managed in resolver.resolve(properties.get("ManagedPolicyArns", [])):
            # AWS-managed policies are not loaded in moto (the IAM judge reads the template).
            if ":iam::aws:policy/" not in managed:
                iam.attach_role_policy(RoleName=default, PolicyArn=managed)
        refs[logical_id] = default
        attributes[(logical_id, "Arn")] = role["Role"]["Arn"]
    elif kind == "AWS::IAM::InstanceProfile":
        iam = boto3.client("iam", region_name=region)
        profile = iam.create_instance_profile(InstanceProfileName=default)["InstanceProfile"]
        for role_name in resolver.resolve(properties.get("Roles", [])):
            iam.add_role_to_instance_profile(InstanceProfileName=default, RoleName=role_name)
        refs[logical_id] = default
        attributes[(logical_id, "Arn")] = profile["Arn"]
    elif kind == "AWS::Logs::LogGroup":
        name = named("LogGroupName", f"/aws/{default}")
        boto3.client("logs", region_name=region).create_log_group(logGroupName=name)
        refs[logical_id] = name
        attributes[(logical_id, "Arn")] = f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
    else:
        refs[logical_id] = default
        service = kind.split("::")[1].lower() if "::" in kind else "unknown"
        attributes[(logical_id, "Arn")] = f"arn:aws:{service}:{region}:{account}:{default}"


_TABLE_KEYS = (
    "KeySchema",
    "AttributeDefinitions",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
    "StreamSpecification",
)


def _create_table(name: str, properties: Mapping[str, Any], kind: str, region: str) -> None:
    """The table with its keys and indexes (TTL, encryption and backups do not matter here)."""
    client: Any = boto3.client("dynamodb", region_name=region)
    if kind == "AWS::Serverless::SimpleTable":
        key = properties.get("PrimaryKey") or {"Name": "id", "Type": "String"}
        short = {"String": "S", "Number": "N", "Binary": "B"}[key["Type"]]
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key["Name"], "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key["Name"], "AttributeType": short}],
            BillingMode="PAY_PER_REQUEST",
        )
        return
    if "KeySchema" not in properties or "AttributeDefinitions" not in properties:
        raise TemplateError(
            f"{name}: AWS::DynamoDB::Table needs KeySchema and AttributeDefinitions"
        )
    client.create_table(
        TableName=name,
        BillingMode=properties.get(
            "BillingMode",
            "PROVISIONED" if "ProvisionedThroughput" in properties else "PAY_PER_REQUEST",
        ),
        **{key: properties[key] for key in _TABLE_KEYS if key in properties},
    )


def _ip_permission(rule: dict[str, Any]) -> dict[str, Any]:
    """A SecurityGroupEgress rule of the template as EC2's IpPermissions entry."""
    permission: dict[str, Any] = {"IpProtocol": str(rule["IpProtocol"])}
    if "FromPort" in rule:
        permission["FromPort"] = int(rule["FromPort"])
        permission["ToPort"] = int(rule["ToPort"])
    if "CidrIp" in rule:
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"]}]
    if "DestinationSecurityGroupId" in rule:
        permission["UserIdGroupPairs"] = [{"GroupId": rule["DestinationSecurityGroupId"]}]
    return permission
