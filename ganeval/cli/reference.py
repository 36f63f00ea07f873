"""The reference commands: ``stats`` (precomputed reference statistics) and ``weights`` (which Inception
weights are used)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from ..metrics import registry
from ..extractors.build import feature_spaces
from .metric_options import click_option, dinov2_resize_option, features_option, features_weights_option
from .common import (
    stack,
    extractor_options,
    handle_errors,
    join_process_group,
    report_provenance,
    verbosity_options,
    warn,
)


def _fid_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """FID's own options (``--dims``): the statistics are of the part FID will compare."""
    fid = registry.get("fid")
    for keyword, f in reversed(fid.option_fields()):
        func = click_option(keyword, f)(func)
    return stack(features_option(), features_weights_option(), dinov2_resize_option())(func)


@click.command()
@click.argument("source", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the statistics .npz.")
@click.option("--list", "list_known", is_flag=True, help="List the published reference statistics we know of.")
@click.option(
    "--data",
    default=None,
    help="A training dataset by name instead of SOURCE: fashion-mnist, mnist, cifar10, shapes (as `train`).",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=None,
    help="With --data: image size (default 28 for fashion-mnist/mnist, else 32).",
)
@click.option("--limit", type=click.IntRange(min=2), default=None, help="With --data: use the first N images only.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="With --data: where it lives.")
@extractor_options()
@verbosity_options()
@_fid_options
@handle_errors
def stats(
    source: str | None,
    output: str | None,
    list_known: bool,
    data: str | None,
    size: int | None,
    limit: int | None,
    data_root: str | None,
    mode: str,
    weights: str | None,
    device: str | None,
    batch_size: int,
    no_cache: bool,
    skip_bad: bool,
    precision: str,
    quiet: bool,
    verbose: bool,
    **fid_options: Any,
) -> None:
    """Precompute reference statistics of SOURCE (or of --data NAME) into an .npz (mu, sigma, n, provenance)."""
    if list_known:
        from ..reference_stats import format_manifest, load_manifest

        click.echo(format_manifest(load_manifest()))
        return
    if bool(source) == bool(data) or not output:
        raise click.UsageError("give SOURCE or --data NAME, and -o OUTPUT (or --list)")
    images: object = source
    if data:
        from ..datasets import dataset_images

        images = dataset_images(data, size, limit=limit, root=data_root)
    from ..api import statistics
    from ..stats import save_statistics
    from ..weights import nonstandard_warning

    reports = join_process_group(device)
    result = statistics(
        images,
        mode=mode,
        weights=weights,
        device=device,
        batch_size=batch_size,
        cache=not no_cache,
        skip_bad=skip_bad,
        progress=False if quiet else None,
        precision=precision,
        **fid_options,
    )
    if not reports:
        return
    path = save_statistics(result, output)
    if result.meta.get("ignored_files"):
        warn([f"{result.meta['ignored_files']} non-image or hidden files in {source} were ignored"])
    if str(result.meta.get("extractor", "")).startswith("inception") and not result.meta.get("weights_standard"):
        warn([nonstandard_warning(result.meta.get("weights_sha256"))])
    skipped_files = result.meta.get("skipped")
    skipped = len(skipped_files) if isinstance(skipped_files, list) else 0
    part = f", part {result.meta['part']}" if result.meta.get("part") else ""
    click.echo(
        f"wrote {path}: {result.n} images{f', {skipped} skipped' if skipped else ''}{part}, "
        f"{result.meta.get('extractor')}, "
        f"{'mode ' + str(result.meta['mode']) if result.meta.get('mode') else 'resize ' + str(result.meta.get('resize'))}, "
        f"precision {result.meta.get('precision', 'fp32')}, "
        f"weights sha256 {str(result.meta.get('weights_sha256'))[:12]}"
    )
    report_provenance(result.meta, None, verbose=verbose, quiet=quiet)


@click.command()
@click.option(
    "--features",
    type=click.Choice(feature_spaces()),
    default="inception",
    show_default=True,
    help="Whose weights: Inception's (FID), VGG16's, DINOv2's (FD_DINOv2) or a CLIP's (CLIP-FID, CMMD).",
)
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Check this file instead.")
@click.option(
    "--download", is_flag=True, help="Download the standard file if nothing is found (Inception: the full file)."
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def weights(features: str, weights: str | None, download: bool, as_json: bool) -> None:
    """Where a network's weights are, their sha256, and whether they are the standard ones."""
    from ..extractors.build import locate_weights_of
    from ..weights import describe

    found = locate_weights_of(features, weights, download=download)
    info = describe(found) if features == "inception" else {**found.to_dict(), "standard_name": found.description}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    width = max(len(key) for key in info)
    for key, value in info.items():
        click.echo(f"{key:<{width}}  {value}")


COMMANDS: list[click.Command] = [stats, weights]
DISTRIBUTED: tuple[str, ...] = ("stats",)
"""The reference commands that split their images across processes under ``torchrun``."""
