"""Records as the API shows them: camelCase JSON with freshly signed URLs.

Every rendering signs its URLs anew, so a GET of a job or photo always
hands out URLs that are valid from now on.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skylab_watch.emulator.progress import photo_status
from skylab_watch.emulator.state import Job, Photo, Profile

if TYPE_CHECKING:
    from skylab_watch.emulator.emulator import Emulator


def iso(ts: float | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    text = datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def render_profile(emu: Emulator, profile: Profile) -> dict[str, Any]:
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
        "photos": [render_photo(emu, p) for p in emu.state_model.backgrounds(profile.id)],
    }


def render_photo(emu: Emulator, photo: Photo) -> dict[str, Any]:
    """Return a photo; `job` is {id, profileId} for job photos, null for backgrounds."""
    job = emu.state_model.jobs.get(photo.job_id) if photo.job_id is not None else None
    return {
        "id": photo.id,
        "name": photo.name,
        "jobId": photo.job_id,
        "profileId": photo.profile_id,
        "job": {"id": job.id, "profileId": job.profile_id} if job else None,
        "originalUrl": emu.original_url(photo.id) if photo.md5 else None,
        "retouchedUrl": emu.retouched_url(photo.id) if photo.retouched else None,
        "status": photo_status(job, photo.retouched, photo.md5 is not None),
        "createdAt": iso(photo.created_at),
    }


def render_job(emu: Emulator, job: Job) -> dict[str, Any]:
    """Return a job with its profile and photos."""
    profile = emu.state_model.profiles.get(job.profile_id)
    return {
        "id": job.id,
        "name": job.name,
        "type": "regular",
        "status": job.status,
        "profileId": job.profile_id,
        "profile": render_profile(emu, profile) if profile else None,
        "photos": [render_photo(emu, p) for p in emu.state_model.job_photos(job.id)],
        "createdAt": iso(job.created_at),
        "queuedAt": iso(job.queued_at),
        "completedAt": iso(job.completed_at),
        "callbackUrl": job.callback_url,
    }


def render_admin_photo(emu: Emulator, photo: Photo) -> dict[str, Any]:
    """Return a photo plus what only the emulator knows (bytes, tagging, faults)."""
    doc = render_photo(emu, photo)
    doc.update(md5=photo.md5, size=photo.size, tagging=photo.tagging,
               uploadedAt=iso(photo.uploaded_at), withheld=photo.withheld)
    return doc


def render_admin_job(emu: Emulator, job: Job) -> dict[str, Any]:
    """Return a job plus its fault decision and callback bookkeeping."""
    doc = render_job(emu, job)
    doc.update(willFail=job.will_fail, notified=job.notified)
    return doc
