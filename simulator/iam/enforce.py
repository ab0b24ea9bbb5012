"""Every AWS call the simulated stack makes is authorized as AWS would, before moto sees it.

Who calls: a Lambda handler calls with its function's role (the Role the synthesized template
gives it), the state machine invokes its tasks with its own role, an EventBridge rule starts
executions with the role SAM made for it, and the nightly backup on an instance calls with
the instance policy (BackupInstancePolicy). Each call becomes the requests IAM authorizes
(simulator/iam/requests.py), judged by the one evaluator (simulator/iam/evaluate.py) against
that principal's statements; a refused call fails as AWS fails it (EC2 UnauthorizedOperation,
SNS AuthorizationError, the JSON services AccessDeniedException, with AWS's message shape).
What the scenario's own operator and the simulator's set-up do is not judged: they stand for
an administrator.

Every judged call is recorded (`calls`): the whole-template audit reads them.
"""

import functools
import hashlib
import html
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import determine_request_protocol
from moto.core.responses import BaseResponse
from moto.core.utils import get_service_model

from simulator.iam.evaluate import Decision, Request, decide
from simulator.iam.requests import Account, Requests
from simulator.iam.stack import Principal, Stack
from simulator.patching import Patches

# What a refusal looks like per service: error code and HTTP status (each API reference's
# "Common errors"; EC2's UnauthorizedOperation, SNS's AuthorizationError).
_REFUSALS = {
    "ec2": ("UnauthorizedOperation", 403),
    "sns": ("AuthorizationError", 403),
}
_ACCESS_DENIED = ("AccessDeniedException", 400)
_RULE_TYPES = {"AWS::Events::Rule", "AWS::Scheduler::Schedule"}


@dataclass(frozen=True)
class Call:
    """One judged call: who, which action on which resources, and IAM's answer."""

    principal: str
    action: str
    resources: tuple[str, ...]
    allowed: bool
    operation: str = ""  # the API operation that asked (a KMS check is asked by EC2's)

    def __str__(self) -> str:
        return f"{self.principal} {self.action} on {', '.join(self.resources)}"


@dataclass
class Authorizer:
    """The stack's principals, and who is calling on each thread."""

    stack: Stack
    account: Account
    function_roles: Mapping[str, str]  # function logical ID -> role logical ID
    machine_roles: Mapping[str, str]  # state machine ARN -> role logical ID
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.principals: dict[str, Principal] = self.stack.principals()
        self.requests = Requests(self.account)
        self._acting = threading.local()

    @classmethod
    def for_stack(cls, stack: Stack, account: Account, machines: Mapping[str, str]) -> "Authorizer":
        """`machines`: state machine logical ID -> ARN, as deployed."""
        resources = stack.resources
        function_roles = {
            logical: _role_of(logical, body)
            for logical, body in resources.items()
            if body["Type"] == "AWS::Lambda::Function"
        }
        machine_roles = {
            arn: _role_of(logical, resources[logical]) for logical, arn in machines.items()
        }
        return cls(stack, account, function_roles, machine_roles)

    @property
    def denied(self) -> list[Call]:
        return [call for call in self.calls if not call.allowed]

    # -- who is calling ---------------------------------------------------------------------
    @contextmanager
    def acting(self, principal: str) -> Iterator[None]:
        """Calls made by this thread in the block are the principal's (a role or policy)."""
        if principal not in self.principals:
            raise KeyError(f"the stack has no principal {principal}")
        before = getattr(self._acting, "principal", None)
        self._acting.principal = principal
        try:
            yield
        finally:
            self._acting.principal = before

    def caller(self) -> str | None:
        from simulator.lambdas import current_function

        acting: str | None = getattr(self._acting, "principal", None)
        if acting is not None:
            return acting
        function = current_function()
        if function is None:
            return None
        if function not in self.function_roles:
            raise KeyError(f"function {function} has no role in the synthesized template")
        return self.function_roles[function]

    # -- judging --------------------------------------------------------------------------
    def authorize(self, principal: str, action: str, params: Mapping[str, Any]) -> None:
        """Raise AWS's refusal unless the principal may make this call."""
        service, _, operation = action.partition(":")
        for request in self.requests.of(action, params):
            decision = decide(self.principals[principal].statements, request)
            self.calls.append(
                Call(
                    principal,
                    request.action,
                    tuple(r.arn for r in request.resources),
                    decision.allowed,
                    operation,
                )
            )
            if not decision.allowed:
                raise refusal(service, operation, self._identity(principal), request, decision)

    def authorize_invoke(self, machine_arn: str, function_arn: str) -> None:
        """The state machine's role invokes a task's function (lambda:InvokeFunction)."""
        role = self.machine_roles.get(machine_arn)
        if role is None:
            raise KeyError(f"no role for state machine {machine_arn}")
        self.authorize(role, "lambda:InvokeFunction", {"FunctionName": function_arn})

    def rule_named(self, name: str, target: str) -> str:
        """The synthesized rule or schedule: its own logical ID, or SAM's `<target><event>`
        for an event source of a function or state machine."""
        for logical in (name, f"{target}{name}"):
            body = self.stack.resources.get(logical)
            if body is not None and body["Type"] in _RULE_TYPES:
                return logical
        raise KeyError(f"no rule or schedule {name} for {target} in the synthesized template")

    def rule_role(self, rule: str) -> str:
        """The role an EventBridge rule starts its state machine with."""
        body = self.stack.resources[rule]
        roles = [
            _role_of(rule, target)
            for target in body["Properties"].get("Targets", [])
            if "RoleArn" in target
        ]
        if len(roles) != 1:
            raise NotImplementedError(f"{rule}: {len(roles)} target roles")
        return roles[0]

    def rule_may_invoke(self, rule: str, function: str) -> bool:
        """Lambda's resource-based policy: an AWS::Lambda::Permission lets this rule (its ARN,
        events.amazonaws.com) invoke the function; a Scheduler schedule invokes with its role."""
        function_arn = self.stack.get_att(function, "Arn")
        body = self.stack.resources[rule]
        if body["Type"] == "AWS::Scheduler::Schedule":
            role = _role_of(rule, body["Properties"]["Target"])
            try:
                self.authorize(role, "lambda:InvokeFunction", {"FunctionName": function_arn})
            except ClientError:
                return False
            return True
        rule_arn = self.stack.get_att(rule, "Arn")
        allowed = False
        for permission in self.stack.resources.values():
            if permission["Type"] != "AWS::Lambda::Permission":
                continue
            if "Condition" in permission and not self.stack.condition(permission["Condition"]):
                continue
            granted = self.stack.resolve(permission["Properties"])
            target = str(granted["FunctionName"])
            allowed = allowed or (
                granted["Action"] == "lambda:InvokeFunction"
                and granted["Principal"] == "events.amazonaws.com"
                and granted.get("SourceArn") == rule_arn
                and target in {function, function_arn}
            )
        self.calls.append(
            Call("events.amazonaws.com", "lambda:InvokeFunction", (function_arn,), allowed, rule)
        )
        return allowed

    def _identity(self, principal: str) -> str:
        if principal.endswith("Policy"):  # an instance profile's role with our policy
            return f"arn:aws:sts::{self.account.account}:assumed-role/{principal}Role/i-instance"
        return f"arn:aws:sts::{self.account.account}:assumed-role/{principal}/{principal}"

    def install(self, patches: Patches) -> None:
        """Judge every call any boto3 client makes while the simulation runs."""
        authorizer = self

        def wrapper(original: Any) -> Any:
            def make_api_call(client: Any, operation: str, params: Any) -> Any:
                principal = authorizer.caller()
                if principal is not None:
                    model = client.meta.service_model
                    prefix = model.signing_name or model.endpoint_prefix
                    authorizer.authorize(principal, f"{prefix}:{operation}", params)
                return original(client, operation, params)

            return make_api_call

        patches.wrap(botocore.client.BaseClient, "_make_api_call", wrapper)

    def install_server(self, patches: Patches) -> None:
        """Judge the requests moto's server takes from elsewhere (`make local-invoke`'s Lambda
        containers): the request's access key names the role it is signed with, as a role's
        temporary credentials do on AWS (see `credentials_for`). Requests signed with any
        other key (the simulator's own, in process, already judged) pass."""
        authorizer = self

        def setup_class(original: Any) -> Any:
            def keep_request(response: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
                response._iam_request = request
                return original(response, request, *args, **kwargs)

            return keep_request

        def call_action(original: Any) -> Any:
            def judged(response: Any) -> Any:
                principal = authorizer.principal_for_key(response.get_access_key())
                if principal is not None:
                    refused = authorizer._judge_request(principal, response)
                    if refused is not None:
                        return refused
                return original(response)

            return judged

        patches.wrap(BaseResponse, "setup_class", setup_class)
        patches.wrap(BaseResponse, "call_action", call_action)

    def credentials_for(self, function: str) -> str:
        """The access key a function's container signs with, one per role: shaped as AWS's
        temporary keys are (ASIA + 16 characters), which is what moto reads from a request."""
        role = self.function_roles[function]
        return next(key for key, principal in self._role_keys.items() if principal == role)

    @functools.cached_property
    def _role_keys(self) -> dict[str, str]:
        return {
            "ASIA" + hashlib.sha256(role.encode()).hexdigest()[:16].upper(): role
            for role in self.principals
        }

    def principal_for_key(self, access_key: str | None) -> str | None:
        return self._role_keys.get(access_key or "")

    def _judge_request(
        self, principal: str, response: Any
    ) -> tuple[int, dict[str, str], str] | None:
        model = get_service_model(response.boto3_service_name)
        operation = response._get_action()
        if (model.signing_name or model.endpoint_prefix) == "sts":
            return None  # GetCallerIdentity needs no permission (STS API reference)
        request = response._iam_request
        parser = PROTOCOL_PARSERS[determine_request_protocol(model, request.content_type)](
            model.operation_model(operation), map_type=dict
        )
        params = parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": request.data,
                "url_path": request.path,
                "url_params": response.uri_match,
            }
        )
        prefix = model.signing_name or model.endpoint_prefix
        try:
            self.authorize(principal, f"{prefix}:{operation}", params)
        except ClientError as exc:
            error = exc.response["Error"]
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            return _error_response(
                model.protocol, str(error["Code"]), str(error["Message"]), status
            )
        return None


def _error_response(
    protocol: str, code: str, message: str, status: int
) -> tuple[int, dict[str, str], str]:
    """An error as each protocol's services send it (the SDKs' parsers read these shapes)."""
    request_id = str(uuid.uuid4())
    text = html.escape(message)
    if protocol == "ec2":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{text}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            "</Response>"
        )
        return status, {"Content-Type": "text/xml"}, body
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{text}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml"}, body
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return status, headers, json.dumps({"__type": code, "message": message})


def _role_of(logical: str, body: Mapping[str, Any]) -> str:
    """The role logical ID of a resource (its Properties) or of a rule's target (itself)."""
    properties = body.get("Properties", body)
    role = properties.get("Role") or properties.get("RoleArn")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    raise NotImplementedError(f"{logical}: a role that is not one of the stack's ({role!r})")


def refusal(
    service: str, operation: str, identity: str, request: Request, decision: Decision
) -> ClientError:
    """The error AWS returns for a refused request, as botocore raises it."""
    code, status = _REFUSALS.get(service, _ACCESS_DENIED)
    action = request.action if service != "sns" else f"SNS:{request.action.split(':', 1)[1]}"
    message = (
        f"User: {identity} is not authorized to perform: {action} on resource: "
        f"{decision.resource} {decision.reason.replace('the action', f'the {action} action')}"
    )
    if code == "UnauthorizedOperation":
        message = f"You are not authorized to perform this operation. {message}"
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "HostId": "",
                "RequestId": "",
                "RetryAttempts": 0,
            },
        },
        operation,
    )
