"""The launch schedule a policy produces for one node: what `sim schedule` writes and
`measure replay` executes on the real host, so a simulated policy can be checked against reality.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.errors import UserError


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


def load_schedule(path: Path) -> LaunchSchedule:
    """Read a schedule file; a missing or malformed one is a UserError."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"schedule {path} does not exist; write one with `sim schedule`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not JSON ({err}); give a file written by `sim schedule`"
                        ) from None
    try:
        return LaunchSchedule.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{path}: {where}: {first['msg']}") from None
