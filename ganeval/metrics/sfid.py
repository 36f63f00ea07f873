"""sFID (Nash et al. 2021): the Fréchet distance on Inception's spatial features, as openai/guided-diffusion's
``evaluations/evaluator.py`` computes it.

Feature: TensorFlow's ``mixed_6/conv:0``, the post-ReLU output of ``Mixed_6d.branch1x1`` (192 channels
at 17×17 for a 299×299 input); its first 7 channels, flattened in NHWC order to 17·17·7 = 2023 values per
image (part ``inception:spatial``, from the same forward as pool3). Then FID's maths: float64
statistics, Fréchet distance. Other PyTorch sFIDs take other layers (pyiqa: Mixed_6a's output; dgm-eval:
Mixed_6e's); see docs/metrics.md.
"""

from __future__ import annotations

from .fid import fd_between, fid_of_rows
from .registry import Key, Metric, Need, register

PART = "inception:spatial"

SFID = register(
    Metric(
        name="sfid",
        title="sFID",
        order=15,
        command="sfid",
        keys=(Key("sfid", "lower"), Key("sfid_ci95", kind="interval")),
        needs=lambda options, side, seed: (Need(PART, rows=False),),
        compute=lambda context: {"sfid": fd_between(context, PART)},
        statistic=lambda x, y, options, seed: fid_of_rows(x, y),
        doc="sFID between REAL and FAKE: the Fréchet distance on Inception's spatial features (mixed_6/conv, first 7 "
        "channels), as guided-diffusion's evaluator computes it.",
    )
)
