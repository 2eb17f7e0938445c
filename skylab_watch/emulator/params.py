"""Reading request parameters with the contract's 422 messages.

Parameters may come from a JSON body (typed) or a query string (all
strings), so the readers accept both spellings of numbers and booleans.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from skylab_watch.emulator.protocol import ApiError

ALLOWED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
OUTPUT_TYPES = ("jpg", "png", "webp")


def require_str(params: dict[str, Any], name: str) -> str:
    """Return a required non-empty string parameter; 422 if missing or empty."""
    value = params.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ApiError(422, f"{name} is required")
    if not isinstance(value, str):
        raise ApiError(422, f"{name} must be a string")
    return value


def optional_int(params: dict[str, Any], name: str) -> int | None:
    """Return an integer parameter (number or digit string), None if absent."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ApiError(422, f"{name} must be an integer id")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(422, f"{name} must be an integer id, got {value!r}") from None


def optional_bool(params: dict[str, Any], name: str) -> bool | None:
    """Return a boolean parameter (true/false or "true"/"false"), None if absent."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ApiError(422, f"{name} must be true or false, got {value!r}")


def path_id(raw: str | None, kind: str) -> int:
    """Return the `{id}` of a route as an integer; 404 if it is not one."""
    try:
        return int(raw or "")
    except ValueError:
        raise ApiError(404, f"{kind} {raw!r} not found") from None


def check_photo_name(name: str) -> None:
    """422 unless the photo name has an accepted image extension, or none at all.

    The JS and .NET clients' own tests create photos named without an
    extension; the bytes, not the name, say what the image is.
    """
    suffix = PurePosixPath(name).suffix
    if suffix and suffix.lower() not in ALLOWED_EXTENSIONS:
        raise ApiError(422, f"photo name {name!r} has an unsupported extension: "
                            f"use one of {', '.join(ALLOWED_EXTENSIONS)}")
    if "/" in name or "\\" in name:
        raise ApiError(422, f"photo name {name!r} must be a file name, not a path")


def check_output_type(value: str) -> str:
    """Return a valid output_file_type ("jpeg" read as "jpg"); 422 otherwise."""
    value = value.lower()
    value = "jpg" if value == "jpeg" else value
    if value not in OUTPUT_TYPES:
        raise ApiError(422, f"output_file_type must be one of {', '.join(OUTPUT_TYPES)}, got {value!r}")
    return value
