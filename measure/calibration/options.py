"""What a calibration is asked to do: its name, seed, fitting and bootstrap settings.

Shared by model selection, the per-family fit and the bootstrap; a progress callback reports steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.model.predict import DEFAULT_SEED

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrateOptions:
    name: str
    seed: int = DEFAULT_SEED
    work_draws: int = 2
    bootstrap: int = 30
    interval_level: float = 0.9
    loss: str = "soft_l1"
    families: tuple[str, ...] | None = None
    """Candidate families; None: default_families() of the data's kind."""
    cores: float | None = None
    """CPUs of the node; None takes the host's from the data's provenance."""
    max_nfev: int = 60
    jobs: int = 1
    """Processes for the independent fits of model selection and bootstrap (same result)."""
