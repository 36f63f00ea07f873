#!/usr/bin/env python
"""Speed of the DINOv2 and CLIP feature networks (issue #21): images/s of ganeval's forward against the
machine's FLOP bound and against the reference forwards on the same inputs and weights (Meta's ``dinov2``
package and timm for DINOv2, open_clip for CLIP), per arithmetic precision, and the FD deviation of bf16.

    python benchmarks/bench_vit.py --quick          # tiny configurations (ViT-S/14, small batches): a minute
    python benchmarks/bench_vit.py                  # the real ViT-L/14 (DINOv2, 224²) and CLIP ViT-L/14@336
    python benchmarks/bench_vit.py --device cuda --precisions fp32,tf32,bf16,fp16 --batch 64

The networks carry seeded random weights in the real layouts (no file is needed): speed does not depend on
the values. Bound = FLOPs per image (torch's FlopCounterMode: 2 per multiply-add of the matmuls,
convolutions and attention) ÷ the FLOP/s of a 4096³ matmul in the same dtype on the same device. The bf16
FD deviation uses the Fashion-MNIST test images when Debian's dataset-fashion-mnist is installed (else
generated ones): FD between two halves, fp32 features vs bf16 features, with random weights (so it shows
the arithmetic's effect, not a published number). Tables go to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_foundation as foundation  # noqa: E402
from bench_foundation import emit, load_legend, measured, note, table  # noqa: E402

MATMUL_SIZE = 4096


def flops(network, x) -> float:
    """FLOPs of one forward of ``network`` on ``x`` (one image)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(x)
    return float(counter.get_total_flops())


def matmul_rate(device, dtype) -> float:
    """FLOP/s of a square matmul in ``dtype`` (4096³; 1024³ for 16-bit types on the CPU, which may be emulated)."""
    import torch

    from ganeval.device import exact_float32, synchronise

    generator = torch.Generator().manual_seed(0)
    size = 1024 if device.type == "cpu" and dtype != torch.float32 else MATMUL_SIZE
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    with exact_float32():
        synchronise(a @ b)
        seconds, _, _ = measured(lambda: synchronise(a @ b), 3)
    return 2.0 * size**3 / seconds


def seeded(shapes: dict, seed: int) -> dict:
    """Random tensors of ``shapes`` (N(0, 1/fan_in) for matrices, 1 ± 0.1 for norms, small otherwise)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        shape = tuple(shape)
        if key.endswith("gamma"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif ("norm" in key or key.split(".")[-2:-1] in (["ln_1"], ["ln_2"], ["ln_pre"], ["ln_post"])) and key.endswith(
            "weight"
        ):
            value = 1 + 0.1 * torch.randn(shape, generator=generator)
        elif len(shape) >= 2:
            value = torch.randn(shape, generator=generator) / float(np.prod(shape[1:])) ** 0.5
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        state[key] = value
    return state


def dinov2_networks(config: str):
    """(ganeval's network, Meta's reference, timm's or None) with the same random weights."""
    import torch

    from ganeval.extractors.dinov2_network import CONFIGS, build_dinov2, expected_shapes

    state = seeded(expected_shapes(CONFIGS[config]), 1)
    ours = build_dinov2(state).eval()
    reference = None
    try:
        from dinov2.models import vision_transformer as meta

        arch = {"vits14": "vit_small", "vitb14": "vit_base", "vitl14": "vit_large", "vitg14": "vit_giant2"}[config]
        kwargs = {"img_size": 518, "patch_size": 14, "init_values": 1.0, "block_chunks": 0}
        with torch.device("meta"):
            reference = getattr(meta, arch)(**kwargs, drop_path_uniform=True)
        reference.load_state_dict(state, strict=True, assign=True)
        reference.eval()
    except ImportError as exc:
        note(
            f"Meta's dinov2 package not installed ({exc}); its row is left out (pip install --no-deps dinov2==0.0.1.dev2)"
        )
    timm_model = None
    try:
        import timm

        name = {"vits14": "small", "vitb14": "base", "vitl14": "large", "vitg14": "giant"}[config]
        timm_model = timm.create_model(
            f"vit_{name}_patch14_dinov2", pretrained=False, img_size=518, dynamic_img_size=True, num_classes=0
        ).eval()
    except Exception as exc:  # noqa: BLE001 - timm is an optional comparison
        note(f"timm's DINOv2 not built ({exc}); its row is left out")
    meta_forward = None if reference is None else (lambda x: reference.forward_features(x)["x_norm_clstoken"])
    return ours, meta_forward, timm_model


def clip_networks(width: int, layers: int, patch: int, resolution: int, embed: int):
    """(ganeval's tower, open_clip's visual tower or None) with the same random weights in OpenAI's layout."""
    from ganeval.extractors.clip_network import VisionConfig, build_visual, visual_keys

    config = VisionConfig(width=width, layers=layers, patch_size=patch, image_resolution=resolution, embed_dim=embed)
    state = seeded(visual_keys(config), 2)
    ours = build_visual(state).eval()
    try:
        import open_clip
    except ImportError as exc:
        note(f"open_clip not installed ({exc}); its row is left out")
        return ours, None
    vision = open_clip.model.CLIPVisionCfg(layers=layers, width=width, patch_size=patch, image_size=resolution)
    text = open_clip.model.CLIPTextCfg(context_length=8, vocab_size=50, width=64, heads=1, layers=1)
    model = open_clip.model.CLIP(embed, vision, text, quick_gelu=True).eval()
    model.visual.load_state_dict({k[len("visual.") :]: v for k, v in state.items()}, strict=True)
    return ours, model.visual


def chunked(network, x, device):
    """``network`` over ``x`` a few images per call on the CPU, as the extractors run it
    (``device.forward_chunk``)."""
    import torch

    from ganeval.device import forward_chunk, prepare_input

    chunk = forward_chunk(device) or len(x)
    return torch.cat([network(prepare_input(x[start : start + chunk])) for start in range(0, len(x), chunk)])


def images_per_second(fn, x, repeats: int) -> tuple[float, np.ndarray, object]:
    import torch

    from ganeval.device import synchronise

    def run():
        with torch.inference_mode():
            out = fn(x)
        synchronise(out)
        return out.float().cpu().numpy()

    run()
    seconds, out, load = measured(run, repeats)
    return len(x) / seconds, out, load


def section_speed(args, device, name: str, ours, others: dict, resolution: int, rate: dict[str, float]) -> None:
    import torch

    from ganeval.device import numerics_context, prepare_model

    x = torch.randn(args.batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(3)).to(device)
    ours = prepare_model(ours, device)
    per_image = flops(ours, x[:1])
    rows, loads = [], []
    baseline = None
    for precision in args.precisions:
        with numerics_context(precision, device):
            speed, features, load = images_per_second(lambda t: chunked(ours, t, device), x, args.repeats)
        loads.append(load)
        if precision == "fp32":
            baseline = (speed, features)
        bound = rate.get(precision, rate["fp32"]) / per_image
        diff = "" if baseline is None else f"{np.abs(features - baseline[1]).max():.2g}"
        rows.append(
            [
                f"ganeval {precision}",
                f"{speed:.2f}",
                f"{100 * speed / bound:.0f}%",
                "1.00×" if precision == "fp32" else f"{speed / baseline[0]:.2f}×",
                diff,
                load.short(),
            ]
        )
    for label, other in others.items():
        if other is None:
            continue
        if isinstance(other, torch.nn.Module):
            other = prepare_model(other, device)
        with numerics_context("fp32", device):
            speed, features, load = images_per_second(other, x, args.repeats)
        loads.append(load)
        bound = rate["fp32"] / per_image
        rows.append(
            [
                label,
                f"{speed:.2f}",
                f"{100 * speed / bound:.0f}%",
                f"{speed / baseline[0]:.2f}×",
                f"{np.abs(features - baseline[1]).max():.2g}",
                load.short(),
            ]
        )
    emit(f"{name}: {per_image / 1e9:.1f} GFLOP per image at {resolution}², batch {args.batch} on {device}")
    emit(
        table(
            ["forward", "images/s", "of bound", "vs ganeval fp32", "max |Δ| vs ganeval fp32", "other load"],
            rows,
            right={1, 2, 3, 4},
        )
    )
    emit(load_legend(loads))
    emit()


def fd_deviation(args, device, ours, resolution: int, mean, std) -> None:
    """FD between two halves of a set, on fp32 and on bf16 features of the same network."""
    import torch

    from ganeval.device import numerics_context, prepare_model
    from ganeval.metrics.fid import fid_of_rows

    images = fashion_mnist(args.fd_images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bicubic", antialias=True) / 255
    x = ((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)).to(device)
    ours = prepare_model(ours, device)
    values = {}
    for precision in ("fp32", "bf16"):
        with torch.inference_mode(), numerics_context(precision, device):
            rows = chunked(ours, x, device).float().cpu().numpy()
        half = len(rows) // 2
        values[precision] = fid_of_rows(rows[:half], rows[half:])
    emit(
        f"FD between two halves of {len(x)} images ({'Fashion-MNIST' if FASHION else 'generated'}), random weights: "
        f"fp32 {values['fp32']:.4f}, bf16 {values['bf16']:.4f}, relative deviation "
        f"{abs(values['bf16'] - values['fp32']) / values['fp32']:.2e}"
    )
    emit()


FASHION: list[bool] = []


def fashion_mnist(count: int) -> np.ndarray:
    """``count`` uint8 (28, 28, 3) Fashion-MNIST test images, or generated 32² images without the dataset."""
    try:
        from ganeval.datasets import dataset_images

        images = np.asarray(dataset_images("fashion-mnist", 28, limit=count))
        FASHION.append(True)
        return images
    except Exception as exc:  # noqa: BLE001 - the dataset is optional here
        note(f"Fashion-MNIST not available ({exc}); generated images instead")
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="ViT-S/14 and a small CLIP, small batches")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="images per measured call (default 8; --quick 4)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--precisions",
        default=None,
        help="arithmetics to time (default fp32 on the CPU, where bf16 is emulated on CPUs without AVX512-BF16 "
        "or AMX, about 100× slower; fp32,bf16 on CUDA); bf16 also gets the FD deviation check",
    )
    parser.add_argument(
        "--fd-images", type=int, default=None, help="images of the bf16 FD check (default 64; --quick 16)"
    )
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    parser.add_argument("--retries", type=int, default=0)
    args = parser.parse_args(argv)
    default = "fp32,bf16" if args.device.startswith("cuda") else "fp32"
    args.precisions = [p.strip() for p in (args.precisions or default).split(",") if p.strip()]
    if "fp32" not in args.precisions:
        args.precisions.insert(0, "fp32")
    args.batch = args.batch or (4 if args.quick else 8)
    args.fd_images = args.fd_images or (16 if args.quick else 64)
    foundation.QUIET.update(wait=args.wait_quiet, retries=args.retries)
    foundation.block_network()
    foundation.header("ganeval DINOv2/CLIP forward benchmark", quick=args.quick)

    import torch

    from ganeval.device import resolve_device

    device = resolve_device(args.device)
    rates = {"fp32": matmul_rate(device, torch.float32)}
    if "bf16" in args.precisions or "fp16" in args.precisions:
        rates["bf16"] = matmul_rate(device, torch.bfloat16)
    if "fp16" in args.precisions:
        rates["fp16"] = matmul_rate(device, torch.float16)
    emit("matmul bound: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in rates.items()))
    emit()

    config = "vits14" if args.quick else "vitl14"
    ours, meta, timm_model = dinov2_networks(config)
    section_speed(
        args,
        device,
        f"DINOv2 {config}",
        ours,
        {"Meta dinov2 (reference code)": meta, "timm (features differ: its pos-embed resample)": timm_model},
        224,
        rates,
    )
    if "bf16" in args.precisions:
        fd_deviation(args, device, ours, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    clip = (128, 2, 56, 336, 64) if args.quick else (1024, 24, 14, 336, 768)
    ours, theirs = clip_networks(*clip)
    section_speed(
        args,
        device,
        f"CLIP ViT {'small' if args.quick else 'L/14@336'}",
        ours,
        {"open_clip visual (QuickGELU)": theirs},
        336,
        rates,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
