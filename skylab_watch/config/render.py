"""Rendering the sample configuration, `config.example.yaml`, from the schema.

Every key is shown with its description and default; keys without a default
show their example, commented out when optional. Regenerate the file with

    python -m skylab_watch.config > config.example.yaml

and a test keeps the file and the schema identical.
"""

from __future__ import annotations

import json
import re
from typing import Any

from skylab_watch.config.schema import REQUIRED, SCHEMA, Option

HEADER = """\
# skylab-watch configuration. Generated from skylab_watch/config/schema.py:
#   python -m skylab_watch.config > config.example.yaml
# Every key is listed with its description and default. Relative paths are
# resolved against this file's folder; ~ is expanded.
# Check a configuration with: skylab-watch check-config --config FILE
"""


def render_example() -> str:
    """Return the text of config.example.yaml, generated from SCHEMA."""
    return HEADER + "\n" + "\n".join(_render_options(SCHEMA, 0)) + "\n"


def _render_options(options: tuple[Option, ...], indent: int) -> list[str]:
    """Return the example lines of `options`, each preceded by its description."""
    lines: list[str] = []
    for option in options:
        pad = " " * indent
        lines.append(f"{pad}# {option.description} {_default_note(option)}".rstrip())
        body = _render_value(option, indent)
        if option.default is None and not option.show:
            body = [f"{pad}# {line[indent:]}" for line in body]
        lines.extend(body)
        if indent == 0:
            lines.append("")
    return lines


def _render_value(option: Option, indent: int) -> list[str]:
    """Return the lines of `option: value`, uncommented."""
    pad = " " * indent
    if option.kind == "section":
        return [f"{pad}{option.name}:", *_render_options(option.children, indent + 2)]
    if option.kind == "list":
        item = _render_options(option.children, indent + 4)
        first = next(i for i, line in enumerate(item) if not line.lstrip().startswith("#"))
        item[first] = f"{pad}  - {item[first].lstrip()}"
        return [f"{pad}{option.name}:", *item]
    value = option.example if option.default in (None, REQUIRED) else option.default
    return [f"{pad}{option.name}: {format_value(value)}"]


def _default_note(option: Option) -> str:
    """Return the 'Default: ...' part of an option's comment."""
    if option.default is REQUIRED:
        return "Required."
    if option.default is None:
        return "Optional." if option.kind != "section" else "Optional: absent means off."
    if option.kind == "section":
        return ""
    return f"Default: {format_value(option.default)}."


_PLAIN = re.compile(r"^[A-Za-z0-9/_][A-Za-z0-9/_.:+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def format_value(value: Any) -> str:
    """Return `value` as a YAML flow scalar or list that reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    if isinstance(value, str):
        # A time such as 07:00 is quoted: YAML 1.1 reads 7:00 as a number, and a copy edited from 07:00 would.
        plain = (_PLAIN.match(value) and value.lower() not in _YAML_WORDS and not _is_number(value)
                 and not re.match(r"^[0-9]+:", value))
        return value if plain else json.dumps(value)
    return repr(value)


def _is_number(text: str) -> bool:
    """Tell whether YAML would read `text` as a number rather than a string."""
    try:
        float(text)
    except ValueError:
        return False
    return True
