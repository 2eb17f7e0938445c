"""The `jobs` endpoints. Each runs with the state lock held (see routes)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from skylab_watch.emulator import processing
from skylab_watch.emulator.params import optional_int, path_id, require_str
from skylab_watch.emulator.progress import TERMINAL, jobs_in_front
from skylab_watch.emulator.protocol import ApiError, Request, Response, json_response
from skylab_watch.emulator.state import Job
from skylab_watch.emulator.store import original_key
from skylab_watch.emulator.views import render_job

if TYPE_CHECKING:
    from skylab_watch.emulator.emulator import Emulator


def find_job(emu: Emulator, raw_id: str | None) -> Job:
    """Return the job of a route's `{id}`; 404 if there is none."""
    job_id = path_id(raw_id, "job")
    job = emu.state_model.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"job {job_id} not found")
    return job


def _check_profile(emu: Emulator, profile_id: int | None) -> int:
    """422 unless `profile_id` names an existing profile."""
    if profile_id is None:
        raise ApiError(422, "profile_id is required")
    if profile_id not in emu.state_model.profiles:
        raise ApiError(422, f"profile_id {profile_id} does not exist")
    return profile_id


def _check_name_free(emu: Emulator, name: str, job_id: int | None = None) -> None:
    """422 if another job already has this name (names are unique per account)."""
    other = emu.state_model.job_named(name)
    if other is not None and other.id != job_id:
        raise ApiError(422, f"job name {name!r} is already taken (job {other.id})")


def list_jobs(emu: Emulator, req: Request) -> Response:
    """Answer every job, oldest first."""
    jobs = sorted(emu.state_model.jobs.values(), key=lambda j: j.id)
    return json_response(200, [render_job(emu, j) for j in jobs])


def create_job(emu: Emulator, req: Request) -> Response:
    """Create a pending job; `name` and `profile_id` are required."""
    name = require_str(req.params, "name")
    profile_id = _check_profile(emu, optional_int(req.params, "profile_id"))
    _check_name_free(emu, name)
    job = Job(id=emu.state_model.new_id("job"), name=name, profile_id=profile_id, created_at=time.time())
    emu.state_model.jobs[job.id] = job
    return json_response(200, render_job(emu, job))


def get_job(emu: Emulator, req: Request) -> Response:
    """Answer one job with its photos and profile."""
    return json_response(200, render_job(emu, find_job(emu, req.route_id)))


def find_by_name(emu: Emulator, req: Request) -> Response:
    """Answer the job called `name`; 404 when there is none."""
    name = require_str(req.params, "name")
    job = emu.state_model.job_named(name)
    if job is None:
        raise ApiError(404, f"no job named {name!r}")
    return json_response(200, render_job(emu, job))


def update_job(emu: Emulator, req: Request) -> Response:
    """Change a job's `name` and/or `profile_id` (PATCH or PUT); other keys are ignored."""
    job = find_job(emu, req.route_id)
    if "name" in req.params:
        name = require_str(req.params, "name")
        _check_name_free(emu, name, job.id)
        job.name = name
    if "profile_id" in req.params:
        if job.status != "pending":
            raise ApiError(422, f"job {job.id} is {job.status}: its profile can no longer change")
        job.profile_id = _check_profile(emu, optional_int(req.params, "profile_id"))
    return json_response(200, render_job(emu, job))


def _check_queueable(emu: Emulator, job: Job) -> None:
    """422 unless every photo of a pending job has bytes within the pixel limits."""
    if job.status != "pending":
        raise ApiError(422, f"job {job.id} is already {job.status}")
    photos = emu.state_model.job_photos(job.id)
    if not photos:
        raise ApiError(422, f"job {job.id} has no photos")
    for photo in photos:
        data = emu.objects.get(original_key(photo.id)) if photo.md5 else None
        if data is None:
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) has no uploaded bytes")
        try:
            width, height = processing.image_size(data)
        except processing.ImageError as exc:
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) is not a readable image: {exc}") from None
        problem = processing.limit_problem(width, height)
        if problem:
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) {problem}")


def _check_callback_url(value: object) -> str | None:
    """Return a valid http(s) callback URL or None; 422 for anything else."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https"):
        raise ApiError(422, f"callback_url must be an http(s) URL, got {value!r}")
    return value


def queue_job(emu: Emulator, req: Request) -> Response:
    """Queue a pending job; fault decisions (fail, withhold) are taken now."""
    job = find_job(emu, req.route_id)
    callback_url = _check_callback_url(req.params.get("callback_url"))
    _check_queueable(emu, job)
    job.status, job.queued_at, job.callback_url = "queued", time.time(), callback_url
    job.will_fail = emu.faults.job_should_fail(job.name)
    for photo in emu.state_model.job_photos(job.id):
        photo.withheld = emu.faults.photo_withheld(photo.name)
    return json_response(200, render_job(emu, job))


def get_jobs_in_front(emu: Emulator, req: Request) -> Response:
    """Answer how many active jobs were queued before this one."""
    job = find_job(emu, req.route_id)
    return json_response(200, {"jobsInFront": jobs_in_front(emu.state_model, job)})


def cancel_job(emu: Emulator, req: Request) -> Response:
    """Cancel a pending, queued or processing job; 422 if it already finished."""
    job = find_job(emu, req.route_id)
    if job.status in TERMINAL:
        raise ApiError(422, f"job {job.id} is already {job.status}")
    job.status, job.completed_at = "cancelled", time.time()
    return json_response(200, render_job(emu, job))


def delete_job(emu: Emulator, req: Request) -> Response:
    """Delete a job and its photos (and their stored bytes)."""
    job = find_job(emu, req.route_id)
    for photo in emu.state_model.job_photos(job.id):
        emu.forget_photo(photo.id)
    del emu.state_model.jobs[job.id]
    return json_response(200, {"id": job.id})


def photo_ids(emu: Emulator, req: Request) -> Response:
    """Answer the ids of a job's photos."""
    job = find_job(emu, req.route_id)
    return json_response(200, [p.id for p in emu.state_model.job_photos(job.id)])

