"""The committed guest images are exactly what the sources build, and they say what the harness
waits for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from measure.harness.guest import GUEST_DIR, IMAGES, MARKER, READY, image_path, qemu_argv


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm not installed")
def test_committed_images_match_a_fresh_build(tmp_path: Path) -> None:
    subprocess.run(["make", "-s", "-C", str(GUEST_DIR), f"OUT={tmp_path}"], check=True)
    for name in IMAGES.values():
        assert (tmp_path / name).read_bytes() == (GUEST_DIR / name).read_bytes(), name


def test_firmware_image_is_64k_with_a_reset_vector_jumping_into_it() -> None:
    data = image_path("firmware").read_bytes()
    assert len(data) == 0x10000
    assert data[0xFFF0] == 0xE9  # jmp near: the CPU starts here, at F000:FFF0
    assert READY.rstrip(b"\r\n") in data


def test_boot_sector_is_512_bytes_with_signature_and_ready_string() -> None:
    data = image_path("bios").read_bytes()
    assert len(data) == 512
    assert data[510:] == b"\x55\xaa"
    assert READY.rstrip(b"\r\n") in data


def test_marker_and_ready_string_agree_with_the_assembler_include() -> None:
    inc = (GUEST_DIR / "ready.inc").read_text()
    assert f"'{MARKER.decode()}'" in inc
    assert '"BOOTSTORM-READY", 13, 10' in inc
    assert READY == b"BOOTSTORM-READY\r\n"


def test_qemu_runs_isolated_with_nothing_but_the_guest() -> None:
    for boot in ("firmware", "bios"):
        argv = qemu_argv("/usr/bin/qemu-system-x86_64", boot, "kvm", 16)
        for flag in ("-nodefaults", "-no-user-config"):
            assert flag in argv
        assert argv[argv.index("-nic") + 1] == "none"
        assert argv[argv.index("-sandbox") + 1] == "on"
        assert argv[argv.index("-serial") + 1] == "stdio"
