"""Processing at camera sizes up to Studio's limits, in every profile kind.

A sequential decode followed by corner reads once failed ("out of order
read") for anything taller than about 750 px; the tests and the demo only
used 640x480. Extract, dual and background-replacement profiles share one
rendered cut-out per input (cached by content and output spec), so the
whole module renders four images.
"""

from __future__ import annotations

import pytest
import pyvips
import requests
from emulator_helpers import make_image

from skylab_watch.emulator import Emulator

SIZES = [(4000, 3000, ".jpg"), (6000, 4000, ".png")]
KINDS = {
    "plain": {"output_file_type": "jpg"},
    "extract": {"enable_extract": True},
    "dual": {"enable_extract": True, "dual_file_output": True},
    "background": {"enable_extract": True, "replace_background": True},
}


@pytest.fixture(scope="module")
def delivered() -> dict[tuple[str, int], pyvips.Image]:
    """Every (profile kind, width) -> the decoded retouched output, through the HTTP API."""
    from emulator_helpers import Api

    with Emulator(api_key="k", processing_seconds=0.05) as emu:
        api = Api(emu.url, "k")
        results = {}
        for width, height, fmt in SIZES:
            original = make_image(width, height, fmt)
            for kind, fields in KINDS.items():
                profile = api.profile(name=f"{kind}-{width}", **fields)
                if kind == "background":
                    api.upload(profile["id"], "backdrop.jpg", make_image(800, 600, ".jpg"), key="profile_id")
                job = api.ready_job(f"{kind}-{width}", profile, {f"camera{fmt}": original})
                answer = requests.get(job["photos"][0]["retouchedUrl"], timeout=60)
                assert answer.status_code == 200, answer.text
                results[(kind, width)] = pyvips.Image.new_from_buffer(answer.content, "")
        return results


@pytest.mark.parametrize("width, height", [(w, h) for w, h, _ in SIZES])
def test_plain_profile_delivers_a_full_size_retouched_jpeg(delivered, width, height):
    image = delivered[("plain", width)]
    assert (image.width, image.height, image.bands) == (width, height, 3)
    assert image.get("vips-loader").startswith("jpeg")


@pytest.mark.parametrize("kind", ["extract", "dual", "background"])
@pytest.mark.parametrize("width, height", [(w, h) for w, h, _ in SIZES])
def test_cut_out_profiles_deliver_a_full_size_rgba_png_with_a_real_mask(delivered, kind, width, height):
    image = delivered[(kind, width)]
    assert (image.width, image.height, image.bands) == (width, height, 4)
    assert image.get("vips-loader").startswith("png")
    alpha = image[3]
    assert alpha.min() == 0 and alpha.max() == 255
    # The subject (the middle) is kept, the studio background (a corner) is cut away.
    assert alpha.getpoint(width // 2, height // 2)[0] == 255 and alpha.getpoint(5, 5)[0] == 0
