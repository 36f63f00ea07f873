"""The tensors of a TorchScript archive (or of a ``torch.save`` zip), read without running anything in it.

OpenAI's CLIP ``.pt`` files are TorchScript archives: a zip holding ``<record>/data.pkl`` (a pickle of the
module tree: ``__torch__.*`` objects whose state is a dict of attributes), ``<record>/data/<key>`` (the raw
bytes of each storage), ``<record>/code/…`` (the TorchScript source of each class) and a few small records.
``torch.jit.load`` compiles and runs that code, and ``torch.load(weights_only=True)`` refuses such archives,
so ``read_archive`` unpickles ``data.pkl`` itself with a restricted unpickler:

- ``find_class`` allows only the tensor-rebuild functions (``torch._utils._rebuild_tensor_v2``,
  ``_rebuild_parameter``), ``collections.OrderedDict``, torch's typed storage classes (only as dtype tags of
  persistent ids) and the pure list helpers of ``torch.jit._pickle`` — each replaced by an inert function of
  this module — and maps every ``__torch__.*`` class to a placeholder that only records its state. Anything
  else (``os.system``, ``builtins.eval``, any other class or function) is refused before it is looked up,
  with a one-line ``WeightsError`` naming the file and the global;
- ``persistent_load`` reads a storage from the zip by its key, with the dtype of its storage tag and a
  checked size; tensors are rebuilt as strided views checked against their storage, then copied.

The module tree is then walked into a flat state dict (``visual.conv1.weight`` …): a class's tensors are its
``__parameters__`` and ``__buffers__`` as declared in the archive's code (read as text, never executed), or
all its tensor attributes when its code declares none; for TorchScript archives this equals
``torch.jit.load(path).state_dict()``. A ``torch.save`` zip of a state dict gives that dict.
"""

from __future__ import annotations

import ast
import io
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError

State = dict[str, torch.Tensor]

STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
"""torch's typed storage classes (the tags of a storage's persistent id) → the dtype of their elements."""

_CLASS_RE = re.compile(r"^class\s+(\w+)\s*\(\s*Module\s*\)\s*:\s*$")
_DECLARED_RE = re.compile(r"^\s+(__parameters__|__buffers__)\s*=\s*(\[.*\])\s*$")


class _Refused(Exception):
    """A pickle asked for something outside the allow list (turned into a WeightsError naming the file)."""


class StorageTag:
    """Stands for a torch storage class in a persistent id: only its dtype is used."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class ScriptObject:
    """An inert stand-in for a ``__torch__.*`` object (a TorchScript module): it records the state the pickle
    gives it and nothing else. Subclasses made per qualified name carry ``qualified_name``."""

    qualified_name = ""

    def __init__(self, *args: object) -> None:
        self.state: object = args

    def __setstate__(self, state: object) -> None:
        self.state = state


def _rebuild_tensor(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for a storage read by ``persistent_load`` (a flat tensor): a
    strided view, bounds-checked, copied into its own contiguous memory; hooks and metadata are ignored."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise _Refused("a tensor whose storage is not a storage record")
    shape, steps = _ints(size), _ints(stride)
    if not isinstance(offset, int) or isinstance(offset, bool) or shape is None or steps is None:
        raise _Refused("a tensor with malformed sizes, strides or offset")
    if len(shape) != len(steps):
        raise _Refused("a tensor with unequal numbers of sizes and strides")
    if offset < 0 or any(n < 0 for n in shape) or any(s < 0 for s in steps):
        raise _Refused("a tensor with negative sizes, strides or offset")
    if 0 not in shape:
        last = offset + sum((n - 1) * s for n, s in zip(shape, steps))
        if last >= storage.numel():
            raise _Refused(f"a tensor reaching element {last} of a storage of {storage.numel()}")
    else:
        return torch.empty(shape, dtype=storage.dtype)
    return storage.as_strided(shape, steps, offset).clone(memory_format=torch.contiguous_format)


def _ints(values: object) -> tuple[int, ...] | None:
    """``values`` when it is a tuple of ints, else None."""
    if isinstance(values, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return values
    return None


def _rebuild_parameter(data: object, requires_grad: object = False, backward_hooks: object = None) -> torch.Tensor:
    """``torch._utils._rebuild_parameter``: the parameter's tensor itself."""
    if not isinstance(data, torch.Tensor):
        raise _Refused("a parameter that is not a tensor")
    return data


def _same(data: object) -> object:
    """``torch.jit._pickle.build_intlist`` and its siblings: the list itself."""
    return data


def _restore_type_tag(value: object, type_str: object = None) -> object:
    """``torch.jit._pickle.restore_type_tag``: the value itself."""
    return value


_FUNCTIONS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "build_intlist"): _same,
    ("torch.jit._pickle", "build_tensorlist"): _same,
    ("torch.jit._pickle", "build_doublelist"): _same,
    ("torch.jit._pickle", "build_boollist"): _same,
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
}
"""Every global a pickle may name, besides torch's storage classes and ``__torch__.*`` classes."""


class _Unpickler(pickle.Unpickler):
    """The restricted unpickler of the module docstring."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, record: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive, self._record = archive, record
        self._storages: dict[str, torch.Tensor] = {}
        self._classes: dict[str, type[ScriptObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageTag(name, STORAGE_DTYPES[name])
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (ScriptObject,), {"qualified_name": qualified})
            return self._classes[qualified]
        raise _Refused(f"the pickle asks for {module}.{name}")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Refused(f"an unknown persistent id {str(pid)[:60]}")
        _, tag, key, _location, numel = pid
        if not isinstance(tag, StorageTag) or not isinstance(key, str) or not isinstance(numel, int):
            raise _Refused(f"a malformed storage reference {str(pid)[:60]}")
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, tag.dtype, numel)
        storage = self._storages[key]
        if storage.dtype != tag.dtype:
            raise _Refused(f"storage {key} read as both {storage.dtype} and {tag.dtype}")
        return storage

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        name = f"{self._record}/data/{key}"
        try:
            raw = self._archive.read(name)
        except KeyError:
            raise _Refused(f"storage {key} is not in the archive") from None
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel < 0 or len(raw) != numel * itemsize:
            raise _Refused(f"storage {key} has {len(raw)} bytes, not {numel} × {itemsize}")
        if numel == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=dtype)


def is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a zip with one ``<record>/data.pkl`` and TorchScript code (``<record>/code/``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            record = _record_name(archive, path)
            return any(name.startswith(f"{record}/code/") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, WeightsError):
        return False


def read_archive(path: str | Path) -> State:
    """The flat state dict (name → CPU tensor, dtypes as stored) of a TorchScript archive, or the state dict
    of a ``torch.save`` zip, read without executing anything (see the module docstring). A file that is not
    such a zip, a pickle that names a forbidden global, a damaged record or anything but a module tree or a
    dict of tensors is a one-line WeightsError naming the file."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            record = _record_name(archive, path)
            order = archive.read(f"{record}/byteorder").decode().strip() if _has(archive, f"{record}/byteorder") else ""
            if order not in ("", "little"):
                raise WeightsError(f"{path}: tensors stored {order}-endian; only little-endian archives are read")
            root = _Unpickler(archive.read(f"{record}/data.pkl"), archive, record).load()
            declared = _declared_tensors(archive, record)
    except WeightsError:
        raise
    except _Refused as exc:
        raise WeightsError(
            f"{path}: refused: {exc}; ganeval reads only tensors and module trees from .pt files"
        ) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path}: not a readable TorchScript or torch.save zip ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged pickle fails in many ways (EOFError, IndexError, …)
        raise WeightsError(f"{path}: damaged pickle in the archive ({type(exc).__name__}: {exc})") from None
    if isinstance(root, ScriptObject):
        state: State = {}
        _walk(root, "", declared, state, path, depth=0)
        return state
    if isinstance(root, Mapping) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in root.items()):
        return dict(root)
    raise WeightsError(f"{path}: expected a TorchScript module or a state dict of tensors, got {type(root).__name__}")


def _has(archive: zipfile.ZipFile, name: str) -> bool:
    try:
        archive.getinfo(name)
    except KeyError:
        return False
    return True


def _record_name(archive: zipfile.ZipFile, path: Path) -> str:
    """The top folder of the archive's records (the one holding ``data.pkl``)."""
    records = [name[: -len("/data.pkl")] for name in archive.namelist() if name.count("/") == 1]
    records = [name for name in records if name and f"{name}/data.pkl" in archive.namelist()]
    if len(records) != 1:
        raise WeightsError(f"{path}: expected one <name>/data.pkl in the zip, found {len(records)}")
    return records[0]


def _declared_tensors(archive: zipfile.ZipFile, record: str) -> dict[str, tuple[str, ...]]:
    """Qualified class name → its ``__parameters__`` + ``__buffers__``, from the archive's code as text."""
    prefix = f"{record}/code/"
    declared: dict[str, tuple[str, ...]] = {}
    for name in archive.namelist():
        if not (name.startswith(prefix + "__torch__/") and name.endswith(".py")):
            continue
        module = name[len(prefix) : -len(".py")].replace("/", ".")
        current: str | None = None
        for line in archive.read(name).decode("utf-8", errors="replace").splitlines():
            found = _CLASS_RE.match(line)
            if found:
                current = f"{module}.{found.group(1)}"
                declared.setdefault(current, ())
                continue
            entry = _DECLARED_RE.match(line)
            if current is not None and entry:
                names = ast.literal_eval(entry.group(2))
                if isinstance(names, list) and all(isinstance(n, str) for n in names):
                    declared[current] = declared[current] + tuple(names)
    return declared


def _walk(
    node: ScriptObject, prefix: str, declared: Mapping[str, tuple[str, ...]], out: State, path: Path, depth: int
) -> None:
    """Add the tensors of ``node`` and its submodules to ``out`` under ``prefix``."""
    if depth > 64:
        raise WeightsError(f"{path}: module tree deeper than 64 levels")
    state = node.state
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: object {node.qualified_name} has no attribute dict")
    wanted = declared.get(node.qualified_name)
    for name, value in state.items():
        if not isinstance(name, str):
            continue
        if isinstance(value, ScriptObject):
            _walk(value, f"{prefix}{name}.", declared, out, path, depth + 1)
        elif isinstance(value, torch.Tensor) and (wanted is None or name in wanted):
            out[prefix + name] = value
