"""Load a spec from YAML; every problem becomes one line `file:line field: what is wrong`.

PyYAML's node tree keeps the line of every key and item, pydantic's errors keep the path of
every field; joining the two gives messages like
`factory.yaml:14 features[0].deadline: expected a duration like 20ms, got "fast"`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tierwise.errors import SpecError
from tierwise.spec.from_package import fill_from_packages
from tierwise.spec.model import Spec
from tierwise.spec.refs import Loc, check_refs


def load_spec(path: str | Path) -> Spec:
    """Read, parse and validate a spec file; raise SpecError with one line per problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([f"{path}: cannot read the spec: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{path}: not UTF-8 text ({exc.reason})"]) from None
    return parse_spec(text, source=str(path))


def parse_spec(text: str, source: str = "<spec>") -> Spec:
    """Validate YAML text; `source` names the file in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError([f"{source}:{line} (root): YAML syntax error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{source}:1 (root): YAML syntax error: {exc}"]) from None
    if root is None:
        raise SpecError(
            [
                f"{source}:1 (root): the spec is empty; expected a mapping with tiers, sites, "
                "links, models and features"
            ]
        )
    if not isinstance(root, yaml.MappingNode):
        raise SpecError(
            [
                f"{source}:{root.start_mark.line + 1} (root): expected a mapping with tiers, "
                f"sites, links, models and features, got a {_kind(root)}"
            ]
        )
    problems = list(_duplicate_keys(root, source, ()))
    if problems:
        raise SpecError(problems)
    data = yaml.safe_load(text)
    # variants with `package:` take measured figures from a manifest, relative to the spec file
    filled = fill_from_packages(data, Path(source).parent)
    if filled:
        raise SpecError(
            [f"{source}:{_line(root, loc)} {_dotted(loc)}: {msg}" for loc, msg in filled]
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_explain(exc, root, source)) from None
    problems = [
        f"{source}:{_line(root, loc)} {_dotted(loc)}: {msg}" for loc, msg in check_refs(spec)
    ]
    if problems:
        raise SpecError(problems)
    return spec


def _explain(exc: ValidationError, root: yaml.Node, source: str) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = _yaml_loc(root, err["loc"])
        where = _dotted(loc)
        if where in seen:  # a union reports once per member; the first says enough
            continue
        seen.add(where)
        out.append(f"{source}:{_line(root, loc)} {where}: {_message(err)}")
    return out


def _message(err: Any) -> str:
    kind, msg = err["type"], str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind in {"int_parsing", "int_type", "float_parsing", "float_type", "bool_parsing"}:
        msg = f"{msg}, got {err.get('input')!r}"
    return msg


def _yaml_loc(root: yaml.Node, loc: tuple[Any, ...]) -> Loc:
    """Drop the parts of a pydantic loc that are union tags, not YAML keys."""
    node: yaml.Node | None = root
    out: list[str | int] = []
    for i, part in enumerate(loc):
        child = _child(node, part) if node is not None else None
        if child is not None:
            out.append(part)
            node = child
        elif i == len(loc) - 1 and isinstance(part, str | int):
            out.append(part)  # a missing field: name it, line of its parent
        # else: a union tag such as 'function-before[...]' or 'dict[str,int]': skip it
    return tuple(out)


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if key.value == part:
                return value  # type: ignore[no-any-return]
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def _line(root: yaml.Node, loc: Loc) -> int:
    """The line of the deepest part of `loc` present in the YAML (a key's own line)."""
    node: yaml.Node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _duplicate_keys(node: yaml.Node, source: str, loc: Loc) -> Iterable[str]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                where = _dotted((*loc, name))
                yield f"{source}:{key.start_mark.line + 1} {where}: duplicate key"
            seen.add(name)
            yield from _duplicate_keys(value, source, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, source, (*loc, i))


def _kind(node: yaml.Node) -> str:
    return "list" if isinstance(node, yaml.SequenceNode) else "single value"
