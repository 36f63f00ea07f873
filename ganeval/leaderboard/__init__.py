"""Checkpoint leaderboards: discovery, scoring into a ranked CSV, curves and an HTML report."""

from .scoring import LeaderboardRun, score_checkpoints
from .store import read_table

__all__ = ["LeaderboardRun", "read_table", "score_checkpoints"]
