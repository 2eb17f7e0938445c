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
from skylab_watch.emulator.views import render_job

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio


def find_job(studio: Studio, raw_id: str | None) -> Job:
    """Return the job of a route's `{id}`; 404 if there is none."""
    return studio.job(path_id(raw_id, "job"))


def _check_profile(studio: Studio, profile_id: int | None) -> int:
    """422 unless `profile_id` names an existing profile."""
    if profile_id is None:
        raise ApiError(422, "profile_id is required")
    if profile_id not in studio.state.profiles:
        raise ApiError(422, f"profile_id {profile_id} does not exist")
    return profile_id


def _check_name_free(studio: Studio, name: str, job_id: int | None = None) -> None:
    """422 if another job already has this name (names are unique per account)."""
    other = studio.state.job_named(name)
    if other is not None and other.id != job_id:
        raise ApiError(422, f"job name {name!r} is already taken (job {other.id})")


def list_jobs(studio: Studio, req: Request) -> Response:
    """Answer every job, oldest first."""
    jobs = sorted(studio.state.jobs.values(), key=lambda j: j.id)
    return json_response(200, [render_job(studio, j) for j in jobs])


def create_job(studio: Studio, req: Request) -> Response:
    """Create a pending job; `name` and `profile_id` are required."""
    name = require_str(req.params, "name")
    profile_id = _check_profile(studio, optional_int(req.params, "profile_id"))
    _check_name_free(studio, name)
    job = Job(id=studio.state.new_id("job"), name=name, profile_id=profile_id, created_at=time.time())
    studio.state.jobs[job.id] = job
    return json_response(200, render_job(studio, job))


def get_job(studio: Studio, req: Request) -> Response:
    """Answer one job with its photos and profile."""
    return json_response(200, render_job(studio, find_job(studio, req.route_id)))


def find_by_name(studio: Studio, req: Request) -> Response:
    """Answer the job called `name`; 404 when there is none."""
    name = require_str(req.params, "name")
    job = studio.state.job_named(name)
    if job is None:
        raise ApiError(404, f"no job named {name!r}")
    return json_response(200, render_job(studio, job))


def update_job(studio: Studio, req: Request) -> Response:
    """Change a job's `name` and/or `profile_id` (PATCH or PUT); other keys are ignored."""
    job = find_job(studio, req.route_id)
    if "name" in req.params:
        name = require_str(req.params, "name")
        _check_name_free(studio, name, job.id)
        job.name = name
    if "profile_id" in req.params:
        if job.status != "pending":
            raise ApiError(422, f"job {job.id} is {job.status}: its profile can no longer change")
        job.profile_id = _check_profile(studio, optional_int(req.params, "profile_id"))
    return json_response(200, render_job(studio, job))


def _check_queueable(studio: Studio, job: Job) -> None:
    """422 unless every photo of a pending job has bytes within the pixel limits.

    Sizes were read from the headers when the bytes were PUT: nothing is
    decoded here, under the lock every other request waits for.
    """
    if job.status != "pending":
        raise ApiError(422, studio.personality.apply("queue_refused", f"job {job.id} is already {job.status}"))
    photos = studio.state.job_photos(job.id)
    if not photos:
        raise ApiError(422, f"job {job.id} has no photos")
    for photo in photos:
        if photo.md5 is None:
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) has no uploaded bytes")
        if photo.image_problem is not None or photo.width is None or photo.height is None:
            reason = photo.image_problem or "its size is unknown"
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) is not a readable image: {reason}")
        problem = processing.limit_problem(photo.width, photo.height)
        if problem:
            raise ApiError(422, f"photo {photo.name!r} (id {photo.id}) {problem}")


def _check_callback_url(value: object) -> str | None:
    """Return a valid http(s) callback URL or None; 422 for anything else."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https"):
        raise ApiError(422, f"callback_url must be an http(s) URL, got {value!r}")
    return value


def queue_job(studio: Studio, req: Request) -> Response:
    """Queue a pending job; fault decisions (fail, withhold) are taken now."""
    job = find_job(studio, req.route_id)
    callback_url = _check_callback_url(req.params.get("callback_url"))
    _check_queueable(studio, job)
    job.status, job.queued_at, job.callback_url = "queued", time.time(), callback_url
    job.will_fail = studio.faults.job_should_fail(job.name)
    for photo in studio.state.job_photos(job.id):
        photo.withheld = studio.faults.photo_withheld(photo.name)
    return json_response(200, render_job(studio, job))


def get_jobs_in_front(studio: Studio, req: Request) -> Response:
    """Answer how many active jobs were queued before this one."""
    job = find_job(studio, req.route_id)
    payload = {"jobsInFront": jobs_in_front(studio.state, job)}
    return json_response(200, studio.personality.apply("jobs_in_front", payload))


def cancel_job(studio: Studio, req: Request) -> Response:
    """Cancel a pending, queued or processing job; 422 if it already finished."""
    job = find_job(studio, req.route_id)
    if job.status in TERMINAL:
        raise ApiError(422, f"job {job.id} is already {job.status}")
    job.status, job.completed_at = "cancelled", time.time()
    return json_response(200, render_job(studio, job))


def delete_job(studio: Studio, req: Request) -> Response:
    """Delete a job and its photos (and their stored bytes)."""
    job = find_job(studio, req.route_id)
    for photo in studio.state.job_photos(job.id):
        studio.forget_photo(photo.id)
    del studio.state.jobs[job.id]
    return json_response(200, {"id": job.id})


def photo_ids(studio: Studio, req: Request) -> Response:
    """Answer the ids of a job's photos."""
    job = find_job(studio, req.route_id)
    return json_response(200, [p.id for p in studio.state.job_photos(job.id)])

