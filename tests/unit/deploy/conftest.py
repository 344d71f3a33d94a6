"""Fixtures shared by the deploy checks."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    """The promtool binary (Debian package prometheus, which .ci/run installs): missing, the
    test is skipped on a developer's machine and fails in CI."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    return found
