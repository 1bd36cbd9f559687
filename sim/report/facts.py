"""Run facts per policy, and which policies left requests unfinished: a statistic over the
instances that became ready must never make such a policy look good without saying so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

INCOMPLETE = "incomplete"
"""The mark a policy's cell carries when some of its requests did not finish."""


def incomplete_per_replication(requests: pd.DataFrame, policy: str) -> float:
    """Mean number of the policy's requests per replication that did not all become ready."""
    mine = requests[requests.policy == policy]
    reps = max(1, mine.replication.nunique())
    return float((~mine.complete.astype(bool)).sum()) / reps


def unfinished(run_facts: pd.DataFrame) -> set[str]:
    """The policies of facts() with at least one request not all ready when the run stopped."""
    if "incomplete requests" not in run_facts or "policy" not in run_facts:
        return set()
    return set(run_facts.policy[run_facts["incomplete requests"] > 0])


def marked(policy: str, unfinished_policies: set[str]) -> str:
    """The policy's name, marked when its requests did not all finish."""
    return f"{policy} ({INCOMPLETE})" if policy in unfinished_policies else policy


def facts(policies: Sequence[str], tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per policy, per replication (means over replications): requests, instances, incomplete
    requests, nodes used per request; peak in flight and CPU busy from the node records."""
    requests, nodes = tables["requests"], tables.get("nodes")
    rows = []
    for policy in policies:
        mine = requests[requests.policy == policy]
        reps = max(1, mine.replication.nunique())
        row: dict[str, Any] = {
            "policy": policy,
            "requests per replication": len(mine) / reps,
            "instances per replication": float(mine["count"].sum()) / reps,
            "incomplete requests": incomplete_per_replication(requests, policy),
            "mean nodes per request": float(mine.nodes_used.mean()) if len(mine) else math.nan,
        }
        if nodes is not None and not nodes.empty:
            node_rows = nodes[nodes.policy == policy]
            row["peak in flight on a node"] = int(node_rows.peak_in_flight.max())
            row["mean CPU busy (whole run)"] = float(node_rows.cpu_busy.mean())
        rows.append(row)
    return pd.DataFrame(rows)


def unfinished_note(run_facts: pd.DataFrame) -> str | None:
    """One sentence naming the policies of facts() that left requests unfinished, else None."""
    names = unfinished(run_facts)
    if not names:
        return None
    left = run_facts[run_facts.policy.isin(names)]
    named = ", ".join(f"`{row.policy}` ({row.n:g} per replication)"
                      for row in left.rename(columns={"incomplete requests": "n"}).itertuples())
    return (f"Not all requests finished under {named}: their statistics cover only the "
            f"instances that became ready, so they are marked ({INCOMPLETE}) and win the "
            "headline only if every policy left requests unfinished.")


FACTS_NOTE = "Counts are per replication (means over the replications)."
