"""Load a protocol file: parse YAML, validate, and fingerprint it.

The content hash is the SHA-256 of the file's bytes exactly as stored, so anyone
can check the protocol a record cites with ``sha256sum protocols/rumcess.yaml``.
Every validation problem is reported as ``FILE, line N (dotted.path): message``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trialdesk.errors import ProtocolError, ProtocolNotFound
from trialdesk.protocol.schema import Protocol

#: the protocol shipped with TrialDesk
PROTOCOLS_DIR = Path(__file__).resolve().parent.parent.parent / "protocols"
DEFAULT_PROTOCOL = PROTOCOLS_DIR / "rumcess.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _line_of(root: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node along ``path`` that exists in the YAML tree."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            match = node.value[part]
        else:
            match = None
        if match is None:
            break
        node, line = match, match.start_mark.line + 1
    return line


def _path_from_text(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def _format_errors(name: str, error: ValidationError, root: yaml.Node | None) -> str:
    lines = []
    items = error.errors()
    # discriminated unions add the tag ('age', 'flag', …) to the path: drop it
    locs = [tuple(p for p in item["loc"] if p not in _KINDS) for item in items]
    for item, loc in zip(items, locs, strict=True):
        # pydantic also reports a list with a minimum length as "too short" when one of
        # its entries failed (a single bad site gives "sites: at least 1 item … not 0");
        # the entry's own error is the real problem, so drop that echo
        if item["type"] == "too_short" and any(
            len(other) > len(loc) and other[: len(loc)] == loc for other in locs
        ):
            continue
        message = item["msg"].removeprefix("Value error, ")
        if not loc:  # cross-reference problems: one "dotted.path: message" per line
            for problem in message.splitlines():
                path_text, _, detail = problem.partition(": ")
                path = _path_from_text(path_text)
                lines.append(f"{name}, line {_line_of(root, path)} ({path_text}): {detail}")
            continue
        path_text = ".".join(str(p) for p in loc) or "<top level>"
        lines.append(f"{name}, line {_line_of(root, loc)} ({path_text}): {message}")
    return "\n".join(lines)


_KINDS = {"age", "within_hours", "event_recorded", "measurement", "flag", "choice"}


def parse_protocol(text: str, *, name: str = "<protocol>") -> Protocol:
    """Validate protocol YAML text; ``name`` is used in error messages."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProtocolError(f"{name}{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{name}: a protocol file must be a YAML mapping at the top level")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    data = {**data, "content_sha256": digest, "source_path": name}
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(
            f"{name}: the protocol file is not valid:\n{_format_errors(name, exc, root)}"
        ) from None


def load_protocol(path: str | Path = DEFAULT_PROTOCOL) -> Protocol:
    """Read, validate and fingerprint a protocol file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProtocolNotFound(f"{path}: no such protocol file") from None
    except OSError as exc:
        raise ProtocolNotFound(f"{path}: cannot read the protocol file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    protocol = parse_protocol(text, name=str(path))
    # hash the bytes as stored (identical to the text's UTF-8 unless the file has a BOM)
    return protocol.model_copy(update={"content_sha256": hashlib.sha256(raw).hexdigest()})
