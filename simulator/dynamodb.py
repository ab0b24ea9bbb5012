"""DynamoDB's global secondary indexes as AWS keeps them: behind their table.

moto updates a table's indexes with the table, at once. On AWS a global secondary index is
eventually consistent: "When you write an item to a table, DynamoDB ... propagates [it] to
any global secondary indexes ... typically within a fraction of a second" (DynamoDB
Developer Guide, "Using Global Secondary Indexes in DynamoDB", "Data synchronization between
tables and Global Secondary Indexes"), and a Query on a GSI cannot ask for a consistent read.
The model: a Query on a global index sees each item of the table as it was `lag_seconds`
ago, 0.5 s by default: a write made since is not there yet, an item deleted since still is.
Reads of the table itself (GetItem, a Query without IndexName) stay strongly consistent
when asked to be, as on AWS.
"""

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType

from simulator.patching import Patches

INDEX_LAG_SECONDS = 0.5


class LaggingIndexes:
    """Every write to a table with a global index is remembered for `lag_seconds`, with the
    item as it was before; a Query on a global index runs on the table as it was then."""

    def __init__(self, now: Callable[[], datetime], lag_seconds: float = INDEX_LAG_SECONDS):
        self.now = now
        self.lag = timedelta(seconds=lag_seconds)
        # (table, hash key) -> [(when written, the item before that write)], oldest first
        self._writes: dict[tuple[str, DynamoType], list[tuple[datetime, Any]]] = {}

    def install(self, patches: Patches) -> None:
        model = self

        def writing(original: Callable[..., Any], key_of: Callable[..., Any]) -> Any:
            def write(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
                table = backend.get_table(table_name)
                if not table.global_indexes:
                    return original(backend, table_name, *args, **kwargs)
                if table.has_range_key:
                    raise NotImplementedError("lagging indexes model hash-key tables only")
                key = DynamoType(key_of(*args, **kwargs)[table.hash_key_attr])
                before = copy.deepcopy(table.items.get(key))
                result = original(backend, table_name, *args, **kwargs)
                model._written(table_name, key, before)
                return result

            return write

        def item_of(item_attrs: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
            return item_attrs

        def key_of(key: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
            return key

        patches.wrap(DynamoDBBackend, "put_item", lambda o: writing(o, item_of))
        patches.wrap(DynamoDBBackend, "update_item", lambda o: writing(o, key_of))
        patches.wrap(DynamoDBBackend, "delete_item", lambda o: writing(o, key_of))

        def querying(original: Callable[..., Any]) -> Any:
            def query(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
                index = kwargs.get("index_name")
                table = backend.get_table(table_name)
                global_names = {i.name for i in table.global_indexes or []}
                if index not in global_names:
                    return original(backend, table_name, *args, **kwargs)
                with model._as_it_was(table_name, table):
                    return original(backend, table_name, *args, **kwargs)

            return query

        patches.wrap(DynamoDBBackend, "query", querying)

    def _written(self, table_name: str, key: DynamoType, before: Any) -> None:
        self._writes.setdefault((table_name, key), []).append((self.now(), before))

    @contextmanager
    def _as_it_was(self, table_name: str, table: Any) -> Iterator[None]:
        """The table's items as they were `lag` ago, for the length of one index query."""
        seen_until = self.now() - self.lag
        view = copy.copy(table.items)
        for (name, key), writes in list(self._writes.items()):
            if name != table_name:
                continue
            recent = [(when, before) for when, before in writes if when > seen_until]
            if not recent:
                del self._writes[(name, key)]  # the index has caught up with this item
                continue
            self._writes[(name, key)] = recent
            before = recent[0][1]  # the item before the first write the index has not seen
            if before is None:
                view.pop(key, None)
            else:
                view[key] = before
        current = table.items
        table.items = view
        try:
            yield
        finally:
            table.items = current
