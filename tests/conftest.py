"""Shared fixtures: which accelerator real-boot tests use on this host."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from measure.harness.host import kvm_status


@pytest.fixture(scope="session")
def accel() -> str:
    """KVM where /dev/kvm works (these tests then run on KVM, they do not skip), TCG otherwise."""
    return "kvm" if kvm_status().usable else "tcg"


@pytest.fixture(scope="session")
def qemu_installed() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 is missing: `make deps` installs it")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A scratch folder shared by a module's tests (the fuzz tests write their inputs here)."""
    return tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))
