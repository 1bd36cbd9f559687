"""Launch policy families, each configurable from a scenario's `policies:` list by `name`.

`PolicySpec` is the discriminated union the scenario validates; each member builds fresh policies.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sim.policies.batching import BatchingConfig
from sim.policies.concurrency_cap import ConcurrencyCapConfig
from sim.policies.config import PolicyConfig
from sim.policies.count_interval import CountIntervalConfig
from sim.policies.fixed_interval import FixedIntervalConfig
from sim.policies.immediate import ImmediateConfig
from sim.policies.model_based import ModelBasedConfig
from sim.policies.split_bundle import SplitBundleConfig

PolicySpec = Annotated[
    ImmediateConfig
    | FixedIntervalConfig
    | CountIntervalConfig
    | BatchingConfig
    | SplitBundleConfig
    | ConcurrencyCapConfig
    | ModelBasedConfig,
    Field(discriminator="name"),
]

FAMILIES: dict[str, type[PolicyConfig]] = {
    cls.model_fields["name"].default: cls
    for cls in (
        ImmediateConfig, FixedIntervalConfig, CountIntervalConfig, BatchingConfig,
        SplitBundleConfig, ConcurrencyCapConfig, ModelBasedConfig,
    )
}
"""Policy family name -> its config class."""

__all__ = [
    "FAMILIES",
    "BatchingConfig",
    "ConcurrencyCapConfig",
    "CountIntervalConfig",
    "FixedIntervalConfig",
    "ImmediateConfig",
    "ModelBasedConfig",
    "PolicyConfig",
    "PolicySpec",
    "SplitBundleConfig",
]
