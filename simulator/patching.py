"""Scoped replacement of moto internals: everything put in place is taken back on close."""

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock


class Patches:
    def __init__(self) -> None:
        self._stack = ExitStack()

    def replace(self, owner: Any, name: str, new: Any) -> None:
        create = not hasattr(owner, name)
        self._stack.enter_context(mock.patch.object(owner, name, new, create=create))

    def wrap(self, owner: Any, name: str, wrapper: Callable[[Callable[..., Any]], Any]) -> None:
        """Replace owner.name by wrapper(original)."""
        self.replace(owner, name, wrapper(getattr(owner, name)))

    def close(self) -> None:
        self._stack.close()
