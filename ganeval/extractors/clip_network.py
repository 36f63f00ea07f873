"""The image tower of OpenAI's CLIP ViTs, written out in OpenAI's layout (state-dict keys ``visual.*``).

Architecture (OpenAI's ``VisionTransformer``): a patch convolution ``conv1`` (no bias, stride = kernel =
patch size), a learned ``class_embedding`` token prepended to the patch tokens, ``positional_embedding``
added, ``ln_pre``; ``layers`` pre-norm residual blocks (``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``;
multi-head self-attention with ``width // 64`` heads from one packed ``in_proj`` and ``out_proj``; the MLP is
``c_fc`` → QuickGELU x·σ(1.702x) → ``c_proj``); ``ln_post`` on the class token, then ``@ proj``. Every
LayerNorm has eps 1e-5. Attention runs through ``torch.nn.functional.scaled_dot_product_attention``.

The configuration is read from the state dict's shapes as OpenAI's ``build_model`` does (``infer_config``).
The text tower's keys are not part of this network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PREFIX = "visual."
"""The prefix of the image tower's keys in OpenAI's state dicts."""
HEAD_WIDTH = 64
"""Channels per attention head in OpenAI's ViTs: heads = width // 64."""
LAYER_NORM_EPS = 1e-5


@dataclass(frozen=True)
class VisionConfig:
    """The shape of an OpenAI CLIP ViT image tower."""

    width: int
    """Token width (channels of ``conv1``)."""
    layers: int
    """Residual attention blocks."""
    patch_size: int
    """Patch side in pixels (``conv1``'s kernel and stride)."""
    image_resolution: int
    """Input side in pixels: patch_size × grid (the grid from ``positional_embedding``'s 1 + grid² rows)."""
    embed_dim: int
    """Output dimension (``proj``'s columns)."""

    @property
    def heads(self) -> int:
        """Attention heads: width // 64, as OpenAI's ``build_model``."""
        return self.width // HEAD_WIDTH

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_resolution // self.patch_size

    @property
    def architecture(self) -> str:
        """A readable name, e.g. ``ViT-B/32@224 (width 768, 12 layers, embed 512)``."""
        return (
            f"ViT/{self.patch_size}@{self.image_resolution} "
            f"(width {self.width}, {self.layers} layers, {self.heads} heads, embed {self.embed_dim})"
        )


def infer_config(state: Mapping[str, torch.Tensor]) -> VisionConfig:
    """The tower's configuration from a state dict in OpenAI's layout (keys ``visual.*``), the way OpenAI's
    ``build_model`` reads it: width = conv1's output channels, layers = the count of ``visual.*`` keys ending
    in ``.attn.in_proj_weight``, patch = conv1's kernel, grid = round(√(rows of positional_embedding − 1)),
    resolution = patch × grid, embed_dim = proj's columns. KeyError or ValueError when a key is missing or a
    shape is not a ViT's (the caller turns them into a one-line error naming the file)."""
    conv = state[PREFIX + "conv1.weight"]
    positions = state[PREFIX + "positional_embedding"]
    proj = state[PREFIX + "proj"]
    if conv.dim() != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise ValueError(f"conv1.weight has shape {tuple(conv.shape)}, not (width, 3, patch, patch)")
    if positions.dim() != 2 or proj.dim() != 2:
        raise ValueError("positional_embedding and proj must be matrices")
    width, patch = int(conv.shape[0]), int(conv.shape[-1])
    grid = round(math.sqrt(max(positions.shape[0] - 1, 0)))
    if grid < 1 or grid * grid + 1 != positions.shape[0]:
        raise ValueError(f"positional_embedding has {positions.shape[0]} rows, not 1 + grid²")
    if width < HEAD_WIDTH or width % HEAD_WIDTH:
        raise ValueError(f"width {width} is not a positive multiple of {HEAD_WIDTH}")
    layers = sum(1 for key in state if key.startswith(PREFIX) and key.endswith(".attn.in_proj_weight"))
    return VisionConfig(
        width=width, layers=layers, patch_size=patch, image_resolution=patch * grid, embed_dim=int(proj.shape[1])
    )


class QuickGELU(nn.Module):
    """OpenAI's GELU approximation x·σ(1.702x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names (``in_proj_weight`` (3W, W),
    ``in_proj_bias`` (3W,), ``out_proj``), batch-first tokens (B, L, W) → (B, L, W), no mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class MLP(nn.Module):
    """``c_fc`` (W → 4W) → QuickGELU (or exact GELU, for comparisons) → ``c_proj`` (4W → W)."""

    def __init__(self, width: int, quick_gelu: bool = True) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu: nn.Module = QuickGELU() if quick_gelu else nn.GELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x)); tokens (B, L, W)."""

    def __init__(self, width: int, heads: int, quick_gelu: bool = True) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = MLP(width, quick_gelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """The stack of blocks, named ``resblocks.{i}`` as in OpenAI's layout."""

    def __init__(self, width: int, layers: int, heads: int, quick_gelu: bool = True) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, quick_gelu) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class CLIPVisionTower(nn.Module):
    """OpenAI CLIP's ViT image tower (module docstring). ``forward``: float32 (B, 3, R, R) input, normalised
    with OpenAI's mean and std, R = ``config.image_resolution`` → (B, embed_dim) float32, the projected image
    embedding before any L2 normalisation (what ``CLIP.encode_image`` returns)."""

    def __init__(self, config: VisionConfig, quick_gelu: bool = True) -> None:
        super().__init__()
        self.config = config
        width = config.width
        self.conv1 = nn.Conv2d(3, width, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(config.grid**2 + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.transformer = Transformer(width, config.layers, config.heads, quick_gelu)
        self.ln_post = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.proj = nn.Parameter(torch.empty(width, config.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # (B, W, grid, grid)
        x = x.flatten(2).transpose(1, 2)  # (B, grid², W), patches in row-major order
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0, :]) @ self.proj.to(x.dtype)


def visual_keys(config: VisionConfig) -> dict[str, tuple[int, ...]]:
    """Every key (with the ``visual.`` prefix) of a tower of ``config`` → its shape, in OpenAI's layout."""
    with torch.device("meta"):
        tower = CLIPVisionTower(config)
    return {PREFIX + key: tuple(value.shape) for key, value in tower.state_dict().items()}


def build_visual(state: Mapping[str, torch.Tensor], quick_gelu: bool = True) -> CLIPVisionTower:
    """The tower in eval mode on the CPU with the ``visual.*`` tensors of ``state`` as float32 parameters
    (other keys, e.g. the text tower's, are ignored), built without a random initialisation. ``quick_gelu``
    False swaps in exact GELU (only to show that the activation matters)."""
    config = infer_config(state)
    with torch.device("meta"):
        tower = CLIPVisionTower(config, quick_gelu)
    own = {
        key[len(PREFIX) :]: value.to(torch.float32).contiguous()
        for key, value in state.items()
        if key.startswith(PREFIX)
    }
    tower.load_state_dict(own, strict=True, assign=True)
    return tower.eval().requires_grad_(False)
