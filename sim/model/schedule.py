"""The launch schedule a policy produces for one node: what `sim schedule` writes and
`measure replay` executes on the real host, so a simulated policy can be checked against reality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.files import FileError, load_yaml_model


class ScheduledLaunch(BaseModel):
    """One launch: which instance of which request, and when (seconds from the first launch)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    request_id: int
    instance_id: int
    at_s: float = Field(ge=0)
    predicted_ready_s: float | None = None
    """The simulator's ready time for this instance, on the same clock (None if not given)."""


class LaunchSchedule(BaseModel):
    """Every launch one node saw in one replication of one policy of a scenario."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: Literal[1] = 1
    scenario: str
    scenario_sha256: str
    policy: str
    node: int
    replication: int
    calibration: str | None = None
    """Calibration file of the node, if it has one."""
    memory_mb: int = 16
    launches: list[ScheduledLaunch]

    @model_validator(mode="after")
    def _ordered(self) -> LaunchSchedule:
        if not self.launches:
            raise ValueError("a schedule needs at least one launch")
        times = [launch.at_s for launch in self.launches]
        if times != sorted(times):
            raise ValueError("launches must be in order of at_s")
        return self

    @property
    def planned_s(self) -> tuple[float, ...]:
        return tuple(launch.at_s for launch in self.launches)


def write_schedule(schedule: LaunchSchedule, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schedule.model_dump_json(indent=1))


class ScheduleFileError(FileError):
    """A launch schedule file that cannot be read or does not validate (a user's mistake)."""


def load_schedule(path: Path) -> LaunchSchedule:
    """Read a schedule file; any defect raises ScheduleFileError (`file:line:col: ...`)."""
    return load_yaml_model(path, LaunchSchedule, error=ScheduleFileError)
