"""Records as the API shows them: camelCase JSON with freshly signed URLs.

Every rendering signs its URLs anew, so a GET of a job or photo always
hands out URLs that are valid from now on. The documented shape is built
here; the active variants (see variants.py) then bend it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skylab_watch.emulator.state import Job, Photo, Profile
from skylab_watch.emulator.variants import PhotoFacts

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio


def iso(ts: float | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def render_profile(studio: Studio, profile: Profile) -> dict[str, Any]:
    """Return a profile with its background photos."""
    return {
        "id": profile.id,
        "name": profile.name,
        "description": profile.description,
        "enableExtract": profile.enable_extract,
        "replaceBackground": profile.replace_background,
        "dualFileOutput": profile.dual_file_output,
        "enableStripPngMetadata": profile.enable_strip_png_metadata,
        "outputFileType": profile.output_file_type,
        "enableCrop": profile.enable_crop,
        "enableColor": profile.enable_color,
        "photos": render_backgrounds(studio, profile),
    }


def render_backgrounds(studio: Studio, profile: Profile) -> list[dict[str, Any]]:
    """Return a profile's background photos (`GET profiles/{id}/bg_photos`)."""
    return [render_photo(studio, p) for p in studio.state.backgrounds(profile.id)]


def render_photo(studio: Studio, photo: Photo, embedded: bool = False, bend: bool = True) -> dict[str, Any]:
    """Return a photo; `job` is {id, profileId} for job photos, null for backgrounds.

    There is no `status`: the contract has none, and the official JS client
    takes any truthy `status` in a create answer for an error. `bend`
    applies the active variants (admin views show the documented shape).
    """
    job = studio.state.jobs.get(photo.job_id) if photo.job_id is not None else None
    uploaded = photo.md5 is not None or photo.source_url is not None
    doc = {
        "id": photo.id,
        "name": photo.name,
        "jobId": photo.job_id,
        "profileId": photo.profile_id,
        "job": {"id": job.id, "profileId": job.profile_id} if job else None,
        "originalUrl": studio.original_url(photo) if uploaded else None,
        "retouchedUrl": studio.retouched_url(photo) if photo.retouched else None,
        "createdAt": iso(photo.created_at),
    }
    if not bend:
        return doc
    facts = PhotoFacts(embedded=embedded, job_photo=photo.job_id is not None,
                       queued=job is not None and job.queued_at is not None,
                       sign_original=lambda: studio.original_url(photo))
    return studio.personality.apply("photo", doc, facts)


def render_job(studio: Studio, job: Job, bend: bool = True) -> dict[str, Any]:
    """Return a job with its profile and photos (`bend`: apply the active variants)."""
    profile = studio.state.profiles.get(job.profile_id)
    doc = {
        "id": job.id,
        "name": job.name,
        "type": "regular",
        "status": job.status,
        "profileId": job.profile_id,
        "profile": render_profile(studio, profile) if profile else None,
        "photos": [render_photo(studio, p, embedded=True, bend=bend) for p in studio.state.job_photos(job.id)],
        "createdAt": iso(job.created_at),
        "queuedAt": iso(job.queued_at),
        "completedAt": iso(job.completed_at),
        "callbackUrl": job.callback_url,
    }
    return studio.personality.apply("job", doc) if bend else doc


def render_admin_photo(studio: Studio, photo: Photo) -> dict[str, Any]:
    """Return a photo in the documented shape (no variant applied), plus what only the emulator knows."""
    doc = render_photo(studio, photo, bend=False)
    doc.update(md5=photo.md5, size=photo.size, tagging=photo.tagging, width=photo.width, height=photo.height,
               uploadedAt=iso(photo.uploaded_at), withheld=photo.withheld, retouched=photo.retouched)
    return doc


def render_admin_job(studio: Studio, job: Job) -> dict[str, Any]:
    """Return a job in the documented shape (no variant applied), plus its fault decision."""
    doc = render_job(studio, job, bend=False)
    doc.update(willFail=job.will_fail, notified=job.notified)
    return doc
