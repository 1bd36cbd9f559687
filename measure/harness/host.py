"""Facts about the host a burst runs on: CPU, memory, kernel, KVM usability, QEMU version.

They go into every run's manifest so that a number can always be traced to the machine it came from.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41


class KvmStatus(BaseModel):
    """Whether /dev/kvm can run a VM here, and if not, why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    usable: bool
    reason: str


class HostInfo(BaseModel):
    """The machine a measurement ran on."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    hostname: str
    cpu_model: str
    cores: int
    memory_mb: int
    kernel: str
    nested_virt: bool
    """True when this host is itself a VM (CPUID hypervisor bit): KVM guests here are nested."""
    kvm_usable: bool
    kvm_reason: str


def kvm_status(device: str = "/dev/kvm") -> KvmStatus:
    """Try what QEMU will do: open /dev/kvm, create a VM and a vCPU."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return KvmStatus(usable=False, reason=f"{device} does not exist (no KVM module loaded?)")
    except PermissionError:
        return KvmStatus(usable=False, reason=f"no permission to open {device} (run as root "
                                              "or join the kvm group)")
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
        if version != 12:
            return KvmStatus(usable=False, reason=f"unexpected KVM API version {version}")
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        try:
            vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
            os.close(vcpu)
        finally:
            os.close(vm)
    except OSError as err:
        return KvmStatus(usable=False, reason=f"KVM ioctl failed: {err.strerror}")
    finally:
        os.close(fd)
    return KvmStatus(usable=True, reason="KVM_CREATE_VM and KVM_CREATE_VCPU succeed")


def _cpuinfo() -> tuple[str, bool]:
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    nested = bool(flags and "hypervisor" in flags.group(1).split())
    return (model.group(1).strip() if model else platform.processor()), nested


def meminfo_kb(field: str) -> int:
    """A field of /proc/meminfo, in KiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0])
    raise KeyError(field)


def host_info() -> HostInfo:
    """Collect the host's facts (cheap: a few /proc reads and two ioctls)."""
    cpu_model, nested = _cpuinfo()
    kvm = kvm_status()
    return HostInfo(
        hostname=platform.node(),
        cpu_model=cpu_model,
        cores=os.cpu_count() or 1,
        memory_mb=meminfo_kb("MemTotal") // 1024,
        kernel=platform.release(),
        nested_virt=nested,
        kvm_usable=kvm.usable,
        kvm_reason=kvm.reason,
    )


def qemu_version(qemu: str) -> str:
    """First line of `qemu --version`."""
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"
