"""bootstorm simulator: a discrete-event model of a platform launching tiny VMs in bursts."""

from __future__ import annotations

__version__ = "0.1.0"
