"""Request streams: arrival processes, request sizes and work (processes.py), and mixes of
tenants each with its own stream (tenant_mix.py)."""

from __future__ import annotations
