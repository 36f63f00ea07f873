"""The DINOv2 vision transformer (Oquab et al. 2023) in Meta's state-dict layout, forward to the CLS token.

Written for ganeval from the published architecture; the names of the parameters are those of
facebookresearch/dinov2 ``dinov2/models/vision_transformer.py`` built as its hub backbones are
(``block_chunks=0``, no register tokens), so that ``dinov2_vit*14_pretrain.pth`` loads as it is:
``cls_token`` (1, 1, D), ``pos_embed`` (1, 1 + M², D), ``mask_token`` (1, D), ``patch_embed.proj.{weight,bias}``
(D, 3, p, p), per block i ``blocks.{i}.norm1``, ``attn.qkv`` (3D, D), ``attn.proj``, ``ls1.gamma`` (D),
``norm2``, ``mlp.fc1`` (4D, D) / ``mlp.fc2`` (GELU MLP; ViT-g uses SwiGLU ``mlp.w12`` / ``mlp.w3``),
``ls2.gamma``, then ``norm.{weight,bias}``.

Each block is x + ls1(attn(norm1(x))) then x + ls2(mlp(norm2(x))); LayerNorm eps 1e-6, D/64 heads,
scaled dot-product attention (``torch.nn.functional.scaled_dot_product_attention``). The position table
is learnt for 518-px inputs (M = 37); for other sizes it is resampled as DINOv2's hub models do
(``interpolate_offset=0.1``, ``interpolate_antialias=False``): bicubic ``F.interpolate`` of the M×M grid
with ``scale_factor=((h0 + 0.1)/M, (w0 + 0.1)/M)``, h0 and w0 the input's patch rows and columns, skipped
when the input is square with M×M patches. The resampled table is cached per input size.

The forward returns ``x_norm_clstoken``: the final LayerNorm of the CLS token, (B, D) float32.
``mask_token`` is kept (the files carry it) but unused at inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from .weights import check_tensors

HEAD_DIM = 64
"""Channels per attention head of every DINOv2 ViT."""
LN_EPS = 1e-6
POS_OFFSET = 0.1
"""DINOv2's ``interpolate_offset``: added to the patch counts in the position table's scale factor."""


@dataclass(frozen=True)
class ViTConfig:
    """A DINOv2 ViT: its name, width ``dim`` (D), ``depth`` (blocks), ``patch`` (pixels), ``grid`` (M, the
    side of the learnt position table) and ``ffn`` ("mlp": GELU MLP of width 4D; "swiglu": SwiGLU)."""

    name: str
    dim: int
    depth: int
    patch: int = 14
    grid: int = 37
    ffn: str = "mlp"

    @property
    def heads(self) -> int:
        """Attention heads: D / 64."""
        return self.dim // HEAD_DIM

    @property
    def hidden(self) -> int:
        """Hidden width of the feed-forward layer: 4D for the MLP; DINOv2's fused SwiGLU rounds 2/3 of 4D up
        to a multiple of 8 (4096 for ViT-g)."""
        if self.ffn == "swiglu":
            return (int(4 * self.dim * 2 / 3) + 7) // 8 * 8
        return 4 * self.dim


CONFIGS = {
    "vits14": ViTConfig("vits14", 384, 12),
    "vitb14": ViTConfig("vitb14", 768, 12),
    "vitl14": ViTConfig("vitl14", 1024, 24),
    "vitg14": ViTConfig("vitg14", 1536, 40, ffn="swiglu"),
}
"""Meta's four DINOv2 backbones (``dinov2_vit{s,b,l,g}14_pretrain.pth``)."""


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class _Block(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim, eps=LN_EPS)
        self.attn = _Attention(config.dim, config.heads)
        self.ls1 = _LayerScale(config.dim)
        self.norm2 = nn.LayerNorm(config.dim, eps=LN_EPS)
        ffn = _SwiGLU if config.ffn == "swiglu" else _Mlp
        self.mlp = ffn(config.dim, config.hidden)
        self.ls2 = _LayerScale(config.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, config.dim, kernel_size=config.patch, stride=config.patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DINOv2ViT(nn.Module):
    """The backbone of ``config``: normalised float32 images (B, 3, H, W), H and W multiples of the patch
    size → the normalised CLS token (B, D). See the module docstring."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + config.grid**2, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.patch_embed = _PatchEmbed(config)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self._tables: dict[tuple[object, ...], torch.Tensor] = {}

    def position_table(self, height: int, width: int) -> torch.Tensor:
        """The position embeddings (1, 1 + h0·w0, D) float32 of an input of ``height``×``width`` pixels."""
        patch, grid = self.config.patch, self.config.grid
        rows, cols = height // patch, width // patch
        if rows * cols == grid * grid and height == width:
            return self.pos_embed.float()
        table: torch.Tensor = self.pos_embed
        version = -1 if table.is_inference() else table._version  # inference tensors keep no version counter
        key = (height, width, table.device, table.data_ptr(), version)
        cached = self._tables.get(key)
        if cached is None:
            table = table.detach().float()
            square = table[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
            scale = ((rows + POS_OFFSET) / grid, (cols + POS_OFFSET) / grid)
            resized = F.interpolate(square, scale_factor=scale, mode="bicubic", antialias=False)
            if resized.shape[-2:] != (rows, cols):
                raise ValueError(f"position table resized to {tuple(resized.shape[-2:])}, expected {(rows, cols)}")
            cached = torch.cat([table[:, :1], resized.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)], dim=1)
            self._tables = {key: cached, **{k: v for k, v in self._tables.items() if k[3:] == key[3:]}}
        return cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.config.patch or width % self.config.patch:
            raise ValueError(f"input {height}×{width} is not a multiple of the patch size {self.config.patch}")
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.to(tokens.dtype).expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = tokens + self.position_table(height, width).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0]).float()


def infer_config(path: Path, state: dict[str, torch.Tensor]) -> ViTConfig:
    """The config of a state dict in Meta's layout, from its shapes: D from ``cls_token``, the patch size
    from ``patch_embed.proj.weight``, the depth from the blocks, M from ``pos_embed``, the feed-forward
    kind from ``mlp.fc1`` or ``mlp.w12``. One-line WeightsError naming ``path`` unless it is one of
    ``CONFIGS``."""
    layout = "not a DINOv2 ViT state dict in Meta's layout"
    try:
        dim = int(state["cls_token"].shape[-1])
        patch = int(state["patch_embed.proj.weight"].shape[-1])
        positions = int(state["pos_embed"].shape[1]) - 1
    except (KeyError, IndexError):
        missing = [key for key in ("cls_token", "patch_embed.proj.weight", "pos_embed") if key not in state]
        raise WeightsError(f"{path}: {layout} (missing {missing[:3]})") from None
    depth = sum(1 for key in state if key.startswith("blocks.") and key.endswith(".norm1.weight"))
    ffn = "swiglu" if "blocks.0.mlp.w12.weight" in state else "mlp"
    grid = math.isqrt(max(positions, 0))
    square = grid * grid == positions
    for config in CONFIGS.values():
        if square and (config.dim, config.depth, config.patch, config.ffn) == (dim, depth, patch, ffn):
            return ViTConfig(config.name, dim, depth, patch, grid, ffn)
    found = f"width {dim}, {depth} blocks, patch {patch}, {positions} positions, {ffn}"
    raise WeightsError(f"{path}: {layout} ({found}; expected one of {', '.join(CONFIGS)})")


def expected_shapes(config: ViTConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor of ``config``'s state dict."""
    with torch.device("meta"):
        return {key: tuple(value.shape) for key, value in DINOv2ViT(config).state_dict().items()}


def check_layout(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict to load, checked against Meta's layout of the config its shapes imply (any of
    ``CONFIGS``): the same names (``mask_token`` may be absent: zeros), shapes and floating-point dtypes.
    One-line WeightsError naming ``path`` otherwise."""
    config = infer_config(path, state)
    reference = expected_shapes(config)
    if "mask_token" not in state:
        state = {**state, "mask_token": torch.zeros(reference["mask_token"], dtype=state["cls_token"].dtype)}
    check_tensors(path, state, reference, f"Meta's DINOv2 {config.name} layout")
    return state


def build_dinov2(state: dict[str, torch.Tensor], path: Path = Path("<state dict>")) -> DINOv2ViT:
    """The network in eval mode on the CPU with ``state`` (Meta's layout, checked) as float32 parameters,
    built without a random initialisation."""
    state = check_layout(path, state)
    config = infer_config(path, state)
    with torch.device("meta"):
        model = DINOv2ViT(config)
    model.load_state_dict({k: v.to(torch.float32).contiguous() for k, v in state.items()}, strict=True, assign=True)
    return model.eval().requires_grad_(False)
