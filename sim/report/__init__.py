"""What runs leave for people: statistics over replications, the policy comparison report of
`sim run`, the sweep report, and the files a run writes."""

from __future__ import annotations
