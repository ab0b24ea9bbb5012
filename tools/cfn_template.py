"""Loads a CloudFormation/SAM YAML template, keeping short-form tags and source line numbers."""

from pathlib import Path
from typing import Any

import yaml


class SourceStr(str):
    """A string from the template that knows the 1-based file line its first line is on.

    `line` is None when the text does not map line for line onto the file (folded or
    multi-line quoted scalars).
    """

    line: int | None = None


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> SourceStr:
    text = SourceStr(loader.construct_scalar(node))
    if node.style == "|":
        # The text of a literal block starts on the line after its `|` indicator.
        text.line = node.start_mark.line + 2
    elif node.start_mark.line == node.end_mark.line:
        text.line = node.start_mark.line + 1
    return text


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    """Turns `!Ref X`, `!GetAtt A.B`, `!Sub ...` into their long forms."""
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = _construct_str(loader, node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


class _TemplateLoader(yaml.SafeLoader):
    pass


_TemplateLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_yaml(text: str) -> Any:
    """Any CloudFormation YAML text (a template, or an SSM document's content)."""
    return yaml.load(text, Loader=_TemplateLoader)


def load_template(path: Path) -> dict[str, Any]:
    """Returns the template as plain dicts and lists, intrinsics in their long form."""
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_TemplateLoader)
    if not isinstance(template, dict):
        raise ValueError(f"{path}: not a CloudFormation template (no top-level mapping)")
    return template


def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's resources by logical ID (only well-formed entries)."""
    found = template.get("Resources") or {}
    return {name: body for name, body in found.items() if isinstance(body, dict)}
