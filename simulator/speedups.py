"""botocore and moto work that every call or run repeats identically, done once instead."""

import functools
from collections.abc import Callable
from typing import Any

from botocore.client import ClientCreator
from botocore.loaders import JSONFileLoader
from moto.core import responses

from simulator.patching import Patches

# Client classes by (service, API version): building one is a tenth of a second for EC2,
# and handlers build clients on every invocation.
_CLIENT_CLASSES: dict[tuple[str, str], type] = {}
# botocore's data files (service models, endpoints) by path: each new boto3 session parses
# them again, EC2's model alone in a quarter of a second.
_JSON_FILES: dict[str, Any] = {}


def install(patches: Patches) -> None:
    patches.wrap(ClientCreator, "_create_client_class", _cached_client_class)
    patches.wrap(JSONFileLoader, "load_file", _cached_json_file)
    # moto lists a response class's methods (inspect.getmembers) on every request.
    patches.replace(responses, "method_names_from_class", _method_names)


_method_names = functools.cache(responses.method_names_from_class)


def _cached_client_class(original: Callable[..., type]) -> Callable[..., type]:
    def create_client_class(creator: Any, service_name: str, service_model: Any) -> type:
        key = (service_name, str(service_model.api_version))
        if key not in _CLIENT_CLASSES:
            _CLIENT_CLASSES[key] = original(creator, service_name, service_model)
        return _CLIENT_CLASSES[key]

    return create_client_class


def _cached_json_file(original: Callable[..., Any]) -> Callable[..., Any]:
    def load_file(loader: Any, file_path: str) -> Any:
        # botocore only reads these (its merges of extras are idempotent): share them.
        if file_path not in _JSON_FILES:
            _JSON_FILES[file_path] = original(loader, file_path)
        return _JSON_FILES[file_path]

    return load_file
