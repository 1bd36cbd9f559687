"""bootstorm measurement: real burst boots of a tiny guest under QEMU, and model calibration."""

from __future__ import annotations

__version__ = "0.1.0"
