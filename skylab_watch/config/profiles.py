"""Matching each watch's `profile` (an id or a name) with the profiles Studio has.

This needs the Studio API, so it is not part of loading: the daemon and
`doctor` call it once they have asked Studio for its profiles.
"""

from __future__ import annotations

from skylab_watch.config.schema import Config
from skylab_watch.errors import ConfigError, Problem


def resolve_profiles(config: Config, profiles: list[dict]) -> dict[str, int]:
    """Given the profiles Studio returned (dicts with `id` and `name`), return each watch's profile id.

    Raise ConfigError listing every watch whose profile id is unknown, or
    whose profile name matches no profile or several.
    """
    matches = match_profiles(config, profiles)
    problems = [m for m in matches if isinstance(m, Problem)]
    if problems:
        raise ConfigError(problems, str(config.source) if config.source else "config")
    return {watch.name: m for watch, m in zip(config.watches, matches, strict=True) if isinstance(m, int)}


def match_profiles(config: Config, profiles: list[dict]) -> list[int | Problem]:
    """Return, for each watch in order, its Studio profile id or the Problem saying why there is none."""
    ids = {int(p["id"]): str(p.get("name", "")) for p in profiles}
    matches: list[int | Problem] = []
    for i, watch in enumerate(config.watches):
        found = _find_profile(watch.profile, ids)
        matches.append(found if isinstance(found, int) else Problem(f"watches[{i}].profile", found))
    return matches


def _find_profile(profile: int | str, ids: dict[int, str]) -> int | str:
    """Return the matching profile id, or a message saying why there is none."""
    if isinstance(profile, int):
        if profile in ids:
            return profile
        known = ", ".join(f"{i} {name!r}" for i, name in sorted(ids.items())) or "none"
        return f"no Studio profile with id {profile} (known: {known})"
    matches = sorted(i for i, name in ids.items() if name == profile)
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(str(i) for i in matches)
        return f"{len(matches)} Studio profiles are named '{profile}' (ids {listed}); use the id instead"
    known = ", ".join(sorted(set(ids.values()))) or "none"
    return f"no Studio profile named '{profile}' (known: {known})"
