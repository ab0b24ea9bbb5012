"""Enforce a role's synthesized policy on the calls a handler makes through given clients.

For unit tests that call a handler directly against moto (no simulation): the clients the
handler uses are hooked (botocore's provide-client-params event, before anything is sent),
each call becomes the requests IAM authorizes (simulator/iam/requests.py, the simulator's
own), judged by the one evaluator (simulator/iam/evaluate.py); a refused call raises the
error AWS would return. Every call is recorded with the verdict.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from simulator.iam.enforce import Call, refusal
from simulator.iam.evaluate import decide
from simulator.iam.requests import Account, Requests
from simulator.iam.stack import ACCOUNT, REGION, Principal

__all__ = ["Call", "Enforcer"]


@dataclass
class Enforcer:
    principal: Principal
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._requests = Requests(Account(ACCOUNT, REGION))

    @property
    def denied(self) -> list[Call]:
        return [call for call in self.calls if not call.allowed]

    @contextmanager
    def on(self, *clients: Any) -> Iterator["Enforcer"]:
        """Judge every call made through these clients while the block runs."""
        hooks = []
        for client in clients:
            service = client.meta.service_model.endpoint_prefix
            event = f"provide-client-params.{service}"
            client.meta.events.register(event, self._judge)
            hooks.append((client, event))
        try:
            yield self
        finally:
            for client, event in hooks:
                client.meta.events.unregister(event, self._judge)

    def _judge(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        identity = f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.principal.name}/test"
        for request in self._requests.of(f"{service}:{model.name}", params):
            decision = decide(self.principal.statements, request)
            resources = tuple(r.arn for r in request.resources)
            self.calls.append(
                Call(self.principal.name, request.action, resources, decision.allowed)
            )
            if not decision.allowed:
                raise refusal(service, model.name, identity, request, decision)
