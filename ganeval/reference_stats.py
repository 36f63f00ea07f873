"""The manifest of published FID reference statistics, shown by ``ganeval stats --list``.

The manifest is a JSON list of entries, one per published ``.npz`` file, that says where the file is, what
it was computed on and in which preprocessing mode. Nothing is downloaded here: the user fetches a file and
passes it to ``ganeval fid``. See ``reference_stats/README.md``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from .errors import GanevalError
from .preprocess import MODES

REPO_MANIFEST = Path(__file__).resolve().parent.parent / "reference_stats" / "manifest.json"
INSTALLED_MANIFEST = Path(sys.prefix) / "share" / "ganeval" / "manifest.json"

REQUIRED_KEYS = (
    "name",
    "dataset",
    "split",
    "resolution",
    "n_images",
    "mode",
    "producer",
    "url",
    "sha256",
    "format",
    "notes",
)
MANIFEST_MODES = tuple(MODES)
_STRING_KEYS = ("name", "dataset", "split", "mode", "producer", "url", "format", "notes")
_OPTIONAL_INT_KEYS = ("resolution", "n_images")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def manifest_path() -> Path:
    """The manifest file in use: the source checkout's, else the installed copy under ``sys.prefix``."""
    for candidate in (REPO_MANIFEST, INSTALLED_MANIFEST):
        if candidate.is_file():
            return candidate
    raise GanevalError(
        f"reference statistics manifest not found (looked for {REPO_MANIFEST} and "
        f"{INSTALLED_MANIFEST}); reinstall ganeval"
    )


def _check_entry(entry: object, index: int, path: Path) -> None:
    """Raise GanevalError naming ``path`` and the entry if ``entry`` is not a valid manifest entry."""
    if not isinstance(entry, dict):
        raise GanevalError(f"{path}: entry {index} is a {type(entry).__name__}, not an object")
    label = f"entry {index} ({entry['name']})" if isinstance(entry.get("name"), str) else f"entry {index}"
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise GanevalError(f"{path}: {label} lacks {', '.join(missing)}")
    wrong = [key for key in _STRING_KEYS if not isinstance(entry[key], str) or not entry[key]]
    wrong += [
        key
        for key in _OPTIONAL_INT_KEYS
        if entry[key] is not None and (isinstance(entry[key], bool) or not isinstance(entry[key], int))
    ]
    if wrong:
        raise GanevalError(f"{path}: {label} has a bad value for {', '.join(wrong)}")
    if entry["mode"] not in MANIFEST_MODES:
        raise GanevalError(
            f"{path}: {label} has unknown mode {entry['mode']!r}; expected one of {', '.join(MANIFEST_MODES)}"
        )
    sha = entry["sha256"]
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise GanevalError(f"{path}: {label} has sha256 {sha!r}; expected null or 64 lowercase hex digits")


def load_manifest(path: str | Path | None = None) -> list[dict]:
    """Read and validate the manifest (``path``, else :func:`manifest_path`). Raises GanevalError naming
    the file, and the entry when one is malformed."""
    path = Path(path) if path is not None else manifest_path()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GanevalError(f"{path}: cannot read the reference statistics manifest ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GanevalError(f"{path}: the reference statistics manifest is not valid JSON ({exc})") from None
    if not isinstance(entries, list):
        raise GanevalError(f"{path}: the reference statistics manifest must be a JSON list of objects")
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        _check_entry(entry, index, path)
        if entry["name"] in seen:
            raise GanevalError(f"{path}: entry {index} repeats the name {entry['name']!r}")
        seen.add(entry["name"])
    return entries


def format_manifest(entries: list[dict]) -> str:
    """A plain-text table of ``entries`` (name, dataset/split, resolution, mode, producer, sha256 prefix or
    "unknown"), each row followed by its URL, with a short note on comparability."""
    header = ("NAME", "DATASET/SPLIT", "RES", "MODE", "PRODUCER", "SHA256")
    rows = [
        (
            str(entry["name"]),
            f"{entry['dataset']}/{entry['split']}",
            "?" if entry.get("resolution") is None else str(entry["resolution"]),
            str(entry["mode"]),
            str(entry["producer"]),
            str(entry["sha256"])[:12] if entry.get("sha256") else "unknown",
        )
        for entry in entries
    ]
    widths = [max([len(header[column])] + [len(row[column]) for row in rows]) for column in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    out = [
        f"Published FID reference statistics ({len(entries)} files). Download one and run "
        f"`ganeval fid FILE.npz FAKE_DIR`.",
        "",
        line(header),
    ]
    for entry, row in zip(entries, rows):
        out.append(line(row))
        out.append(f"    {entry['url']}")
    out += [
        "",
        "MODE is the preprocessing the file was made with; it must match --mode (default tf). These files",
        "carry no provenance, so ganeval warns that it cannot check them: picking the right one is up to you.",
        "SHA256 'unknown': no published checksum; record your own (sha256sum FILE) when you download it.",
        "RES '?': not stated by the publisher. Sources and caveats: reference_stats/README.md.",
    ]
    return "\n".join(out)
