"""The latent explorer page in headless Chromium (Debian's ``chromium`` package driven by Playwright
for Python): a slider changes the decoded image, an interpolation strip appears, a brushed mask
is inpainted, and each state is saved as a screenshot.

Screenshots go to the test's temporary folder, or to ``$LATENTSPEC_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _serve_util import png, served

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs the Debian chromium package (apt-get install -y chromium); no browser download is possible here",
)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("LATENTSPEC_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _idle(page) -> None:
    page.wait_for_function("document.body.dataset.busy === '0'")


def _pixels(page, selector: str) -> str:
    return page.eval_on_selector(selector, "c => c.toDataURL()")


def test_explorer_slider_interpolation_inpainting(tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import sync_playwright  # pip install playwright; the browser is Debian's

    with served(tmp_path) as (server, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{server.url}/?bundle=vae")
            page.wait_for_function("Number(document.querySelector('#decoded').dataset.version) >= 1")
            _idle(page)
            # The bundle's claims and metrics, its entries, its direction and 4 unit sliders.
            assert page.locator("#metrics").inner_text().startswith("test.neg_elbo")
            assert page.locator("#entries tr").count() == 3
            assert page.locator("input.unit").count() == 4
            assert page.locator("input.direction").count() == 1
            assert page.locator("input.group").count() == 2  # a slider per factor name
            assert page.locator("#claims").inner_text().split("\t")[-1] == "holds"
            page.screenshot(path=str(shots / "explorer-vae.png"), full_page=True)

            # Move a slider: the decoded image changes.
            before = _pixels(page, "#decoded")
            version = int(page.eval_on_selector("#decoded", "c => c.dataset.version"))
            slider = page.locator("input.unit[data-unit='0']")
            slider.focus()
            page.keyboard.press("End")  # to the slider's maximum, as a user would
            page.wait_for_function(f"Number(document.querySelector('#decoded').dataset.version) > {version}")
            _idle(page)
            assert float(slider.input_value()) == 3.0
            after = _pixels(page, "#decoded")
            assert after != before
            page.screenshot(path=str(shots / "explorer-slider.png"), full_page=True)

            # A factor's slider moves its group's units: the image changes again.
            version = int(page.eval_on_selector("#decoded", "c => c.dataset.version"))
            page.locator("input.group[data-group='light']").focus()
            page.keyboard.press("Home")
            page.wait_for_function(f"Number(document.querySelector('#decoded').dataset.version) > {version}")
            _idle(page)
            assert _pixels(page, "#decoded") != after

            # Interpolate between an uploaded image's code (A, through the encode entry) and a
            # picked code (B, another sample).
            digit = tmp_path / "digit.png"
            digit.write_bytes(png(np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)))
            page.set_input_files("#slot-a input[type=file]", str(digit))
            page.wait_for_selector("#slot-a[data-filled='1']")
            _idle(page)
            page.fill("#seed", "7")
            page.click("#sample")
            _idle(page)
            page.locator("#slot-b .use-current").click()
            assert page.locator("#status").inner_text() == ""
            page.click("#interpolate")
            page.wait_for_function("document.querySelector('#strip').naturalWidth > 0")
            size = page.eval_on_selector("#strip", "i => [i.naturalWidth, i.naturalHeight]")
            assert size == [8 * 4 + 7 * 2, 4]  # 8 steps of 4x4 images in one row
            page.screenshot(path=str(shots / "explorer-interpolation.png"), full_page=True)

            # Inpainting, on the GLO bundle: brush a mask, run the inpaint entry.
            page.select_option("#bundle", "glo")
            page.wait_for_selector("#inpaint-panel:not([hidden])")
            _idle(page)
            page.click("#inpaint-current")
            box = page.locator("#inpaint-canvas").bounding_box()
            page.mouse.move(box["x"] + 10, box["y"] + box["height"] * 0.75)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] - 10, box["y"] + box["height"] * 0.75, steps=8)
            page.mouse.up()
            page.click("#inpaint")
            page.wait_for_function("document.querySelector('#inpaint-result').dataset.done === '1'")
            _idle(page)
            assert page.locator("#status").inner_text() == ""
            page.screenshot(path=str(shots / "explorer-inpaint.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    for name in ("vae", "slider", "interpolation", "inpaint"):
        assert (shots / f"explorer-{name}.png").stat().st_size > 0
