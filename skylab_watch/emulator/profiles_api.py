"""The `profiles` endpoints. Each runs with the state lock held (see routes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skylab_watch.emulator.params import check_output_type, optional_bool, path_id, require_str
from skylab_watch.emulator.protocol import ApiError, Request, Response, json_response
from skylab_watch.emulator.state import Profile
from skylab_watch.emulator.views import render_backgrounds, render_profile

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio

BOOLEAN_FIELDS = ("enable_extract", "replace_background", "dual_file_output",
                  "enable_strip_png_metadata", "enable_crop", "enable_color")


def find_profile(studio: Studio, raw_id: str | None) -> Profile:
    """Return the profile of a route's `{id}`; 404 if there is none."""
    return studio.profile(path_id(raw_id, "profile"))


def _changes(params: dict[str, Any]) -> dict[str, Any]:
    """Return the validated profile fields present in `params` (snake_case)."""
    changes: dict[str, Any] = {}
    if "name" in params:
        changes["name"] = require_str(params, "name")
    if "description" in params:
        description = params["description"]
        if description is not None and not isinstance(description, str):
            raise ApiError(422, "description must be a string")
        changes["description"] = description
    for name in BOOLEAN_FIELDS:
        value = optional_bool(params, name)
        if value is not None:
            changes[name] = value
    if params.get("output_file_type") is not None:
        changes["output_file_type"] = check_output_type(require_str(params, "output_file_type"))
    return changes


def list_profiles(studio: Studio, req: Request) -> Response:
    """Answer every profile, oldest first."""
    profiles = sorted(studio.state.profiles.values(), key=lambda p: p.id)
    return json_response(200, [render_profile(studio, p) for p in profiles])


def create_profile(studio: Studio, req: Request) -> Response:
    """Create a profile; `name` is required, the rest default to off / jpg."""
    require_str(req.params, "name")
    profile = Profile(id=studio.state.new_id("profile"), name="")
    for key, value in _changes(req.params).items():
        setattr(profile, key, value)
    studio.state.profiles[profile.id] = profile
    return json_response(200, render_profile(studio, profile))


def get_profile(studio: Studio, req: Request) -> Response:
    """Answer one profile with its background photos."""
    return json_response(200, render_profile(studio, find_profile(studio, req.route_id)))


def update_profile(studio: Studio, req: Request) -> Response:
    """Change the given profile fields (PATCH, or PUT as some clients send)."""
    profile = find_profile(studio, req.route_id)
    for key, value in _changes(req.params).items():
        setattr(profile, key, value)
    return json_response(200, render_profile(studio, profile))


def bg_photos(studio: Studio, req: Request) -> Response:
    """Answer a profile's background photos (the .NET client's `bg_photos`)."""
    return json_response(200, render_backgrounds(studio, find_profile(studio, req.route_id)))
