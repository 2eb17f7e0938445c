"""The `photos` endpoints. Each runs with the state lock held (see routes)."""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING

from skylab_watch.emulator.params import check_photo_name, optional_int, path_id, require_str
from skylab_watch.emulator.protocol import ApiError, Request, Response, json_response
from skylab_watch.emulator.state import Photo
from skylab_watch.emulator.views import render_photo

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio


def find_photo(studio: Studio, raw_id: str | int | None) -> Photo:
    """Return the photo with this id; 404 if there is none."""
    return studio.photo(path_id(str(raw_id) if raw_id is not None else None, "photo"))


def _new_job_photo(studio: Studio, name: str, job_id: int) -> Photo:
    """Return a photo for a pending job; 404/422 for a missing job, late add or duplicate."""
    job = studio.state.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"job {job_id} not found")
    if job.status != "pending":
        raise ApiError(422, f"job {job_id} is {job.status}: photos can only be added before it is queued")
    if any(p.name == name for p in studio.state.job_photos(job_id)):
        raise ApiError(422, f"photo name {name!r} is already used in job {job_id}")
    return Photo(id=studio.state.new_id("photo"), name=name, created_at=time.time(), job_id=job_id)


def _new_background(studio: Studio, name: str, profile_id: int) -> Photo:
    """Return a background photo; 422 unless the profile has extract + replace background."""
    profile = studio.state.profiles.get(profile_id)
    if profile is None:
        raise ApiError(404, f"profile {profile_id} not found")
    if not (profile.enable_extract and profile.replace_background):
        raise ApiError(422, f"profile {profile_id} needs enable_extract and replace_background "
                            "to hold background photos")
    if any(p.name == name for p in studio.state.backgrounds(profile_id)):
        raise ApiError(422, f"photo name {name!r} is already used in profile {profile_id}")
    return Photo(id=studio.state.new_id("photo"), name=name, created_at=time.time(),
                 profile_id=profile_id)


def create_photo(studio: Studio, req: Request) -> Response:
    """Create a photo record for a job (`job_id`) or a profile background (`profile_id`)."""
    name = require_str(req.params, "name")
    check_photo_name(name)
    job_id, profile_id = optional_int(req.params, "job_id"), optional_int(req.params, "profile_id")
    if (job_id is None) == (profile_id is None):
        raise ApiError(422, "give exactly one of job_id or profile_id")
    if job_id is not None:
        photo = _new_job_photo(studio, name, job_id)
    else:
        photo = _new_background(studio, name, profile_id)  # type: ignore[arg-type]
    studio.state.photos[photo.id] = photo
    return json_response(200, render_photo(studio, photo))


def _check_md5(value: object) -> str | None:
    """Return a valid base64 MD5 (16 raw bytes) or None; 422 for anything else."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str) and len(base64.b64decode(value, validate=True)) == 16:
            return value
    except (binascii.Error, ValueError):
        pass
    raise ApiError(422, f"content_md5 must be the base64 of a 16-byte MD5 digest, got {value!r}")


def upload_url(studio: Studio, req: Request) -> Response:
    """Answer a presigned PUT URL for a photo's bytes, bound to `content_md5` if given."""
    if req.params.get("photo_id") in (None, ""):
        raise ApiError(422, "photo_id is required")
    photo = find_photo(studio, optional_int(req.params, "photo_id"))
    md5 = _check_md5(req.params.get("content_md5"))
    return json_response(200, {"url": studio.upload_url(photo, md5)})


def get_photo(studio: Studio, req: Request) -> Response:
    """Answer one photo with freshly signed URLs."""
    return json_response(200, render_photo(studio, find_photo(studio, req.route_id)))


def list_for_job(studio: Studio, req: Request) -> Response:
    """Answer a job's photos, the job given by `job_id` or `job_name`."""
    job_id = optional_int(req.params, "job_id")
    if job_id is None:
        name = req.params.get("job_name")
        if not name:
            raise ApiError(422, "job_id or job_name is required")
        job = studio.state.job_named(str(name))
        if job is None:
            raise ApiError(404, f"no job named {name!r}")
        job_id = job.id
    elif job_id not in studio.state.jobs:
        raise ApiError(404, f"job {job_id} not found")
    return json_response(200, [render_photo(studio, p) for p in studio.state.job_photos(job_id)])


def delete_photo(studio: Studio, req: Request) -> Response:
    """Delete a photo record and its stored bytes."""
    photo = find_photo(studio, req.route_id)
    studio.forget_photo(photo.id)
    return json_response(200, {"id": photo.id})
