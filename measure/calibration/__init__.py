"""measure/calibration."""

from __future__ import annotations
