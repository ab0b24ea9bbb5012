"""IAM's wildcards: `*` any run of characters (`:` and `/` included), `?` one character, and
nothing else (a `[` is a `[`, unlike fnmatch). One definition for statements and evaluator."""

import functools
import re


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, literal: frozenset[int], ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for index, char in enumerate(pattern):
        if char == "*" and index not in literal:
            parts.append(".*")
        elif char == "?" and index not in literal:
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def matches(
    value: str, pattern: str, *, ignore_case: bool = False, literal: frozenset[int] = frozenset()
) -> bool:
    """Whether the value matches the pattern; `literal`: positions of `*`/`?` that are plain
    characters (they came from a policy variable such as `${*}`)."""
    return bool(_compiled(pattern, literal, ignore_case).fullmatch(value))
