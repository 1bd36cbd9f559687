"""The tiny guest and the QEMU command line that boots it, for each boot path.

Images are built from guest/*.asm (guest/Makefile) and committed: measuring needs no assembler.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from sim.errors import UserError

BootPath = Literal["firmware", "bios"]
Accel = Literal["kvm", "tcg"]

BOOT_PATHS: tuple[BootPath, ...] = ("firmware", "bios")
ACCELS: tuple[Accel, ...] = ("kvm", "tcg")

MARKER = b"!"
"""First byte the guest writes to COM1, as soon as its first instruction runs."""
READY = b"BOOTSTORM-READY\r\n"
"""The ready string (guest/ready.inc); an instance is ready once all of it has arrived."""

GUEST_DIR = Path(__file__).resolve().parents[2] / "guest"
IMAGES: dict[BootPath, str] = {"firmware": "firmware.bin", "bios": "bios.img"}


def image_path(boot: BootPath) -> Path:
    """The committed guest image for a boot path."""
    path = GUEST_DIR / IMAGES[boot]
    if not path.is_file():
        raise UserError(f"guest image {path} is missing; rebuild it with `make guest`")
    return path


def find_qemu(binary: str = "qemu-system-x86_64") -> str:
    """Absolute path of the QEMU binary, or a UserError naming the package to install."""
    path = shutil.which(binary)
    if path is None:
        raise UserError(
            f"{binary} not found; install it with `apt-get install qemu-system-x86` "
            "(or run `make deps`)"
        )
    return path


def qemu_argv(qemu: str, boot: BootPath, accel: Accel, memory_mb: int) -> list[str]:
    """The full command line of one instance.

    No network, no default devices, no user config, the seccomp sandbox on, and nothing but the
    guest image. COM1 goes to stdout, which the harness watches.
    """
    image = str(image_path(boot))
    common = [
        "-accel", accel,
        "-m", str(memory_mb),
        "-smp", "1",
        "-nodefaults",
        "-no-user-config",
        "-nic", "none",
        "-display", "none",
        "-monitor", "none",
        "-parallel", "none",
        "-serial", "stdio",
        "-sandbox", "on",
    ]
    if boot == "firmware":
        # microvm without option ROMs, RTC, PIT or PIC: the guest itself is the firmware.
        machine = ["-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
                   "-bios", image]
    else:
        # SeaBIOS on the PC machine boots the sector from an IDE disk, as in the 2016 study.
        # snapshot=on: IDE refuses read-only drives; writes (there are none) go to a temp overlay.
        machine = ["-M", "pc", "-drive", f"file={image},format=raw,if=ide,snapshot=on"]
    return [qemu, *machine, *common]
