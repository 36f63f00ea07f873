"""Finding checkpoints and turning them back into generators, without ever unpickling arbitrary objects.

Two kinds:
- ganeval's trainer: ``RUN/checkpoints/step_N/`` folders (generator.safetensors + checkpoint.json); a path
  may be a checkpoint folder, a run folder, or any folder above run folders.
- foreign files (``--generator MODULE:FUNCTION``): ``.safetensors``, or ``.pt/.pth/.ckpt/.bin`` read with
  ``torch.load(weights_only=True)``, holding a state dict (``state_key`` picks a nested one). A JSON file of
  the same stem beside it, when present, is the checkpoint's config (and may give its ``step``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsIndex, SupportsInt

import torch

from ..device import resolve_device
from ..errors import BadInputError, GanevalError
from ..train.checkpoint import list_checkpoints, read_meta
from ..paths import load_problem, safe_torch_load

FOREIGN_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")

Factory = Callable[..., torch.nn.Module]


@dataclass
class Checkpoint:
    """One checkpoint to score. run: the run's name; step: training step (None when unknown); path: the
    checkpoint folder (ganeval) or file (foreign)."""

    run: str
    step: int | None
    path: Path
    foreign: bool = False
    _sha256: str | None = field(default=None, repr=False)

    @property
    def weights_file(self) -> Path:
        return self.path if self.foreign else self.path / "generator.safetensors"

    def sha256(self) -> str:
        """sha256 (hex) of the generator's weights file: what identifies the checkpoint in the leaderboard."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            try:
                with open(self.weights_file, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                raise BadInputError(f"{self.weights_file}: cannot read ({exc.strerror or exc})") from None
            self._sha256 = digest.hexdigest()
        return self._sha256


def discover(paths: Iterable[str | os.PathLike[str]], foreign: bool = False) -> list[Checkpoint]:
    """Every checkpoint under ``paths``, ordered by run then step; duplicates removed. foreign: look for
    state-dict files (``--generator``) instead of ganeval run folders."""
    found: dict[Path, Checkpoint] = {}
    for given in paths:
        root = Path(given)
        try:
            exists = root.exists()
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise BadInputError(f"{root}: {exc.strerror or exc}") from None
        if not exists:
            raise BadInputError(f"{root}: no such file or folder")
        for checkpoint in _foreign(root) if foreign else _ganeval(root):
            found.setdefault(checkpoint.path.resolve(), checkpoint)
    if not found:
        where = ", ".join(str(p) for p in paths)
        what = (
            f"no checkpoint files ({', '.join(FOREIGN_SUFFIXES)})"
            if foreign
            else "no ganeval checkpoints (RUN/checkpoints/step_N folders; for other checkpoint files pass "
            "--generator MODULE:FUNCTION)"
        )
        raise BadInputError(f"{where}: {what} found")
    return sorted(found.values(), key=lambda c: (c.run, c.step if c.step is not None else -1, str(c.path)))


def _ganeval(root: Path) -> list[Checkpoint]:
    if root.is_file():
        raise BadInputError(
            f"{root}: a file; ganeval's checkpoints are folders. To score other checkpoint files "
            f"pass --generator MODULE:FUNCTION (a function that builds the network)"
        )
    if (root / "checkpoint.json").exists():
        meta = read_meta(root)
        run = root.parent.parent if root.parent.name == "checkpoints" else root
        return [Checkpoint(run.name, _int_or_none(meta.get("step")), root)]
    found = []
    for folder, subfolders, _ in os.walk(root, onerror=_unlistable):
        if "checkpoints" in subfolders:
            run = Path(folder)
            name = root.name if run == root else run.relative_to(root).as_posix()
            found += [
                Checkpoint(name, _int_or_none(read_meta(ckpt).get("step")), ckpt) for ckpt in list_checkpoints(run)
            ]
            subfolders.remove("checkpoints")
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    return found


def _foreign(root: Path) -> list[Checkpoint]:
    if root.is_file():
        files = [root]
    else:
        files = []
        for folder, subfolders, names in os.walk(root, onerror=_unlistable):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            files += [
                Path(folder) / n
                for n in sorted(names)
                if n.lower().endswith(FOREIGN_SUFFIXES) and not n.startswith(".")
            ]
    found = []
    for file in files:
        if not file.name.lower().endswith(FOREIGN_SUFFIXES):
            raise BadInputError(f"{file}: not a checkpoint file (expected {', '.join(FOREIGN_SUFFIXES)})")
        step = _int_or_none(read_config(file).get("step"))
        if step is None and (match := _LAST_NUMBER.search(file.stem)):
            step = int(match.group(1))
        found.append(Checkpoint(file.parent.resolve().name, step, file, foreign=True))
    return found


def _unlistable(exc: OSError) -> None:
    raise BadInputError(f"{exc.filename}: cannot list ({exc.strerror or exc})")


def _int_or_none(value: object) -> int | None:
    if not isinstance(value, (str, bytes, bytearray, SupportsInt, SupportsIndex)):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_config(file: Path) -> dict[str, Any]:
    """The JSON config beside a foreign checkpoint (same stem, ``.json``), or {} when there is none."""
    path = file.with_suffix(".json")
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the checkpoint's config ({exc})") from None
    if not isinstance(config, dict):
        raise BadInputError(f"{path}: the checkpoint's config must be a JSON object")
    return config


def import_factory(spec: str) -> Factory:
    """``package.module:function`` (importable, or from the current folder) or ``path/to/file.py:function``."""
    module_name, _, name = spec.rpartition(":")
    if not module_name or not name:
        raise BadInputError(f"--generator {spec!r}: expected MODULE:FUNCTION, e.g. mypkg.models:build_generator")
    try:
        if module_name.endswith(".py"):
            location = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if location is None or location.loader is None or not Path(module_name).is_file():
                raise BadInputError(f"--generator {spec!r}: {module_name} is not a readable Python file")
            module = importlib.util.module_from_spec(location)
            location.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module may fail in any way while importing
        raise BadInputError(
            f"--generator {spec!r}: cannot import {module_name} ({type(exc).__name__}: {exc})"
        ) from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise BadInputError(f"--generator {spec!r}: {module_name} has no function {name}")
    return factory


def read_state_dict(file: Path, state_key: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a foreign checkpoint file. Pickles are read with ``weights_only=True``: anything that
    would run code or build arbitrary objects is refused. ``state_key`` ("a" or "a.b") selects a nested
    dict (e.g. ``generator`` in a training checkpoint that also holds the discriminator)."""
    try:
        if file.name.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            loaded: object = load_file(str(file))
        else:
            loaded = safe_torch_load(file)
    except Exception as exc:  # noqa: BLE001 - a refused or damaged file fails the readers in many ways
        problem = load_problem(exc)
        if problem.startswith("refused"):
            raise BadInputError(f"{file}: {problem}") from None
        raise BadInputError(f"{file}: cannot read the checkpoint ({problem})") from None
    for part in state_key.split(".") if state_key else []:
        if not isinstance(loaded, dict) or part not in loaded:
            keys = ", ".join(map(str, loaded)) if isinstance(loaded, dict) else type(loaded).__name__
            raise BadInputError(f"{file}: no key {part!r} for --state-key {state_key} (it has: {keys[:200]})")
        loaded = loaded[part]
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        nested = [str(k) for k, v in loaded.items() if isinstance(v, dict)] if isinstance(loaded, dict) else []
        hint = f"; pass --state-key with one of: {', '.join(nested)}" if nested else ""
        raise BadInputError(f"{file}: not a state dict of tensors{hint}")
    return loaded


def build_foreign(
    checkpoint: Checkpoint,
    factory: Factory,
    spec: str,
    state_key: str | None = None,
    device: str | torch.device | None = None,
) -> torch.nn.Module:
    """``factory`` (called with ``config=`` and/or ``state_dict=``, whichever it declares) builds the network;
    the checkpoint's tensors are then loaded strictly. Returns the module on ``device`` in eval mode."""
    state = read_state_dict(checkpoint.path, state_key)
    config = read_config(checkpoint.path)
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}
    offered = {"config": config, "state_dict": state}
    kwargs = {name: offered[name] for name in parameters if name in offered}
    required = [
        name
        for name, p in parameters.items()
        if name not in offered
        and p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)
    ]
    if required:
        raise BadInputError(
            f"--generator {spec}: the function may take only `config` and/or `state_dict` "
            f"(it requires {', '.join(required)})"
        )
    try:
        module = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - user code
        raise GanevalError(f"--generator {spec} failed on {checkpoint.path} ({type(exc).__name__}: {exc})") from None
    if not isinstance(module, torch.nn.Module):
        raise BadInputError(f"--generator {spec} returned {type(module).__name__}, not a torch.nn.Module")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or ["mismatch"])[0]
        raise BadInputError(
            f"{checkpoint.path}: does not fit the network from --generator {spec} ({first[:200]})"
        ) from None
    return module.to(resolve_device(device)).eval()


def latent_shape(module: torch.nn.Module, checkpoint: Checkpoint, z_dim: int | None) -> int | tuple[int, ...] | None:
    """The latent size for a foreign generator: ``z_dim`` given, the module's own ``z_dim``, or the config's."""
    if z_dim is not None or getattr(module, "z_dim", None) is not None:
        return z_dim
    configured = read_config(checkpoint.path).get("z_dim")
    if isinstance(configured, list):
        return tuple(int(v) for v in configured)
    return int(configured) if configured is not None else None
