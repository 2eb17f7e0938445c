"""Profiles to start with: `--profile NAME[:extract|:dual|:png|:jpg|:webp|:bg=IMAGE]`.

A spec names a profile and its switches, separated by colons:

    Packshots                      plain retouching, JPEG
    Cut-outs:extract               a PNG cut-out
    Cut-outs:extract:dual          the cut-out and a flattened JPEG
    Beach:bg=/srv/bg/beach.jpg     cut-out over a background (implies extract
                                   and replace_background); repeat :bg= for more
    Web:webp                       output type (jpg, png or webp)

A background is a local image file, read once at start and served from the
emulator's own store, or an http(s) URL, handed to clients as the
background's originalUrl as it is: the emulator itself never fetches
anything. Profiles are created only if no profile of that name exists, so a
restart with the same data directory does not duplicate them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from skylab_watch.emulator import processing
from skylab_watch.emulator.params import OUTPUT_TYPES
from skylab_watch.emulator.state import Photo, Profile

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio

# After the first ":bg=", split only at colons that start a known option, so
# that URLs and paths keep their own colons (http://host:8080/a.jpg, C:\\bg.jpg).
OPTION_SPLIT = re.compile(r":(?=(?:extract|dual|jpg|png|webp)(?::|$)|bg=)")


@dataclass(frozen=True)
class ProfileSpec:
    """A profile to create at start."""

    name: str
    extract: bool = False
    dual: bool = False
    output_file_type: str = "jpg"
    backgrounds: tuple[str, ...] = ()


def parse_profile_spec(text: str) -> ProfileSpec:
    """Given "NAME[:option...]", return its ProfileSpec; raise ValueError naming the problem."""
    head, bg, tail = text.partition(":bg=")
    name, *options = head.split(":")
    if bg:
        options += OPTION_SPLIT.split("bg=" + tail)
    if not name.strip():
        raise ValueError(f"--profile {text!r}: the profile needs a name before the first ':'")
    extract = dual = False
    output_type, backgrounds = "jpg", []
    for option in options:
        if option == "extract":
            extract = True
        elif option == "dual":
            extract = dual = True
        elif option in OUTPUT_TYPES:
            output_type = option
        elif option.startswith("bg=") and option[3:]:
            backgrounds.append(option[3:])
            extract = True
        else:
            raise ValueError(f"--profile {text!r}: unknown option {option!r} "
                             "(use :extract, :dual, :jpg, :png, :webp or :bg=IMAGE)")
    return ProfileSpec(name.strip(), extract, dual, output_type, tuple(backgrounds))


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _read_background(source: str) -> bytes:
    """Return a local background's bytes; raise ValueError unless it is a readable image."""
    try:
        data = Path(source).expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"background {source!r}: cannot be read ({exc.strerror}); "
                         "give an image file path or an http(s) URL") from exc
    try:
        processing.image_size(data)
    except processing.ImageError as exc:
        raise ValueError(f"background {source!r}: is not an image the emulator can decode ({exc})") from exc
    return data


def _background_name(source: str, n: int) -> str:
    """Return a photo name for a background: its file name, or background-N.jpg."""
    name = PurePosixPath(urlsplit(source).path if _is_url(source) else Path(source).name).name
    return name or f"background-{n}.jpg"


def seed_profiles(studio: Studio, specs: list[ProfileSpec]) -> None:
    """Create each spec's profile (and backgrounds) unless a profile of that name exists.

    Raise ValueError if a local background cannot be read; nothing is created then.
    """
    local = {src: _read_background(src) for spec in specs for src in spec.backgrounds if not _is_url(src)}
    with studio.state.lock:
        existing = {p.name for p in studio.state.profiles.values()}
        for spec in specs:
            if spec.name in existing:
                continue
            existing.add(spec.name)
            profile = Profile(id=studio.state.new_id("profile"), name=spec.name, enable_extract=spec.extract,
                              replace_background=bool(spec.backgrounds), dual_file_output=spec.dual,
                              output_file_type=spec.output_file_type)
            studio.state.profiles[profile.id] = profile
            for n, source in enumerate(spec.backgrounds, start=1):
                photo = Photo(id=studio.state.new_id("photo"), name=_background_name(source, n),
                              created_at=time.time(), profile_id=profile.id,
                              source_url=source if _is_url(source) else None)
                studio.state.photos[photo.id] = photo
                if source in local:
                    studio.store_original(photo.id, local[source], None)
        studio.state.save()
