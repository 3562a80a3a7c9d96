"""The pinned dependencies: uv.lock in step with pyproject.toml, and the image, the
Makefile and the lock agreeing on how everything is installed."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy import kustomize
from tests.deploy.leads_settings import DOCKERFILE, ROOT

UV = Path(sys.executable).parent / "uv"


def test_the_lock_file_is_in_sync_with_pyproject() -> None:
    checked = subprocess.run(
        [str(UV), "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, (
        "uv.lock is out of sync with pyproject.toml: run `make lock` and commit uv.lock\n"
        + checked.stderr
    )


def test_one_uv_version_installs_everything() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    image = re.search(r"^ARG UV_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "uv"]
    assert makefile and image
    assert makefile[1] == image[1] == locked


def test_the_image_installs_exactly_the_lock_from_pinned_bases() -> None:
    dockerfile = DOCKERFILE.read_text()
    syncs = re.findall(r"^RUN uv sync (.*)$", dockerfile, re.M)
    assert syncs and all("--locked" in sync and "--no-dev" in sync for sync in syncs)
    assert re.search(r"^COPY .*\buv\.lock\b", dockerfile, re.M)
    for base in re.findall(r"^FROM (\S+)", dockerfile, re.M):
        _, tag = kustomize.split_image(base)
        assert tag and re.match(r"\d+\.\d+\.\d+-", tag), f"pin the base image: {base}"
