"""Running policy x replication: plain-data units (units.py), the one runner on any executor
(runner.py, executors.py), and sweeps over a scenario's axes (axes.py, plan.py, table.py)."""

from __future__ import annotations
