"""FID of the same two image sets in every preprocessing mode, side by side (``ganeval compat``).

Each mode is one ``score(..., metrics=["fid"], mode=...)`` call, so every mode's features are cached on
their own and a later ``ganeval fid --mode X`` reuses them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .api import score
from .errors import BadInputError
from .options import DEFAULT_BATCH_SIZE
from .preprocess import DEFAULT_MODE, MODES, get_mode
from .result import Result
from .stats import is_statistics_file


@dataclass
class ModeComparison:
    """FID per preprocessing mode (``results[mode]`` is that mode's Result), in the order asked for."""

    results: dict[str, Result]

    def rows(self) -> list[dict[str, object]]:
        """One dict per mode: ``mode``, ``fid``, ``vs_tf`` (relative difference to the tf mode's FID, or
        None without it), ``same_as`` (the tools that give this number) and ``differs`` (how it prepares
        the input)."""
        base = self.results.get(DEFAULT_MODE)
        rows = []
        for mode, result in self.results.items():
            spec = get_mode(mode)
            vs_tf = None if base is None or mode == DEFAULT_MODE or not base["fid"] else result["fid"] / base["fid"] - 1
            rows.append(
                {"mode": mode, "fid": result["fid"], "vs_tf": vs_tf, "same_as": spec.same_as, "differs": spec.differs}
            )
        return rows

    def text(self) -> str:
        """An aligned table (mode, FID, difference to tf, the tools that agree) and one line per mode on
        how it prepares the 299×299 input."""
        rows = self.rows()
        cells = [
            (
                str(row["mode"]),
                f"{row['fid']:.4f}",
                "" if row["vs_tf"] is None else f"{row['vs_tf']:+.2%}",
                str(row["same_as"]),
            )
            for row in rows
        ]
        header = ("MODE", "FID", "VS TF", "SAME NUMBERS AS")
        widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(3)]

        def line(c: tuple[str, ...]) -> str:
            return f"{c[0]:<{widths[0]}}  {c[1]:>{widths[1]}}  {c[2]:>{widths[2]}}  {c[3]}".rstrip()

        out = [line(header), *(line(c) for c in cells), "", "How each mode makes the 299×299 network input:"]
        out += [f"  {str(row['mode']):<{widths[0]}}  {row['differs']}" for row in rows]
        return "\n".join(out)

    def to_json(self) -> str:
        first = next(iter(self.results.values()))
        return json.dumps(
            {
                "modes": self.rows(),
                "n_real": first.n_real,
                "n_fake": first.n_fake,
                "provenance": self.provenance(),
                "warnings": self.warnings(),
            },
            indent=2,
            default=str,
        )

    def provenance(self) -> dict[str, object]:
        """The provenance the modes share (the first mode's, without its ``mode``)."""
        first = next(iter(self.results.values()))
        return {k: v for k, v in first.provenance.items() if k != "mode"}

    def warnings(self) -> list[str]:
        """Every mode's warnings, each once."""
        return list(dict.fromkeys(w for result in self.results.values() for w in result.warnings))

    def provenance_line(self) -> str:
        line = next(iter(self.results.values())).provenance_line()
        return line.replace(f"mode {next(iter(self.results))}", "modes " + ",".join(self.results))


def compare_modes(
    real: object,
    fake: object,
    *,
    modes: Iterable[str] | None = None,
    weights: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cache: bool = True,
    skip_bad: bool = False,
    progress: bool | None = None,
    precision: str = "fp32",
) -> ModeComparison:
    """FID between ``real`` and ``fake`` (images: folders, archives, arrays) in each of ``modes`` (default:
    every mode, tf first). Statistics files are refused: they hold one mode's statistics only."""
    chosen = list(dict.fromkeys(modes if modes is not None else MODES))
    if not chosen:
        raise BadInputError("no modes given; choose from " + ", ".join(MODES))
    for name in chosen:
        get_mode(name)
    for obj in (real, fake):
        if is_statistics_file(obj):
            raise BadInputError(
                f"{obj} holds statistics made in one preprocessing mode; compat needs the images "
                f"(a folder, .zip or image array) to compute every mode"
            )
    return ModeComparison(
        {
            mode: score(
                real,
                fake,
                metrics=["fid"],
                mode=mode,
                weights=weights,
                device=device,
                batch_size=batch_size,
                cache=cache,
                skip_bad=skip_bad,
                progress=progress,
                precision=precision,
            )
            for mode in chosen
        }
    )
