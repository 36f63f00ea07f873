"""The result of an evaluation: values, sample counts, provenance and warnings, and its renderings."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class Result(Mapping[str, float]):
    """Metric values (``result["fid"]``) with the counts and provenance that make them comparable."""

    scores: dict[str, float]
    n_real: int | None
    n_fake: int | None
    provenance: dict[str, object]
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, object]:
        """The ``--json`` document: metric keys, ``n_real``, ``n_fake``, ``provenance``, ``warnings``."""
        return {**self.scores, "n_real": self.n_real, "n_fake": self.n_fake,
                "provenance": self.provenance, "warnings": self.warnings}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=str)

    def text(self) -> str:
        """One line per metric, e.g. ``FID: 12.3456``."""
        return "\n".join(f"{key.upper()}: {value:.4f}" for key, value in self.scores.items())

    def provenance_line(self) -> str:
        """A one-line summary of where the numbers come from, for stderr."""
        p = self.provenance
        sides = []
        for side in ("real", "fake"):
            info = p.get(side, {})
            if isinstance(info, dict):
                how = "statistics file" if info.get("kind") == "statistics" else ("cached" if info.get("cached") else "extracted")
                skipped = f", {len(info['skipped'])} skipped" if info.get("skipped") else ""
                sides.append(f"{side}: {info.get('n')} images ({how}{skipped})")
        weights = f"weights sha256 {str(p.get('weights_sha256'))[:12]} ({p.get('weights_source')})"
        return f"ganeval {p.get('ganeval_version')} · {p.get('extractor')} · {weights} · mode {p.get('mode')} · " + " · ".join(sides)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.4f}" for k, v in self.scores.items())
        return f"Result({values}, n_real={self.n_real}, n_fake={self.n_fake})"
