"""One way to name a dataset: every command that reads data resolves its argument here.

A name is one of

* a local file (``.jsonl``, ``.ndjson``, ``.json``, ``.csv``, ``.parquet``; ``.gz``/``.bz2``/``.xz`` compressed text
  too) or a shard glob (``data/train-*.parquet``);
* a folder written by ``datasets.Dataset.save_to_disk``;
* a folder in Hub layout (``README.md`` + ``data/train-00000-of-00002.parquet`` ...), resolved as
  ``datasets.load_dataset(folder)`` resolves it (README ``configs``, split names); ``FOLDER:SPLIT`` picks a split;
* a Hub dataset ``hf://ORG/NAME[@REVISION][:SPLIT]`` (``config=`` for its configuration);
* an fsspec URI (``s3://``, ``gs://``, ``file://``, ``memory://``, ``hf://datasets/...``) of a file, a glob or a folder.

:func:`resolve` lists the data files (nothing is downloaded); :mod:`critiq.data.reader` streams them. Files in the
formats critiq reads are read by critiq (errors name the shard and line); other Hub builders (Arrow, a cached
offline copy, ...) stream through ``datasets`` itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critiq.errors import InputError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".xz")
# a Hub repo id by the Hub's rules: ORG/NAME, letters, digits, '-', '_', '.', no '--' or '..', at most 96 characters
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
MAX_ROW_BYTES = 16 * 2**20  # one row of a text file: 16 MiB unless max_row_bytes= (--max-row-bytes) says otherwise
HUB_NAME = re.compile(
    rf"hf://(?P<repo>{_HUB_PART}/{_HUB_PART})(?:@(?P<revision>[^:\s]+))?(?::(?P<split>[A-Za-z0-9_.-]+))?"
)
_FOLDER_HINT = "expected a save_to_disk folder or data files in Hub layout (README.md, data/train-*.parquet)"
_FORMAT_HINT = f"use one of {', '.join(FORMATS)} (or a folder, a glob, hf://ORG/NAME)"
# builder options that only say where the files are; any other non-default option (a csv `sep`, a json `field`)
# means the files need datasets' own reader
_LOCATION_OPTIONS = {"name", "version", "data_dir", "data_files", "description", "features"}


@dataclass(frozen=True)
class DataFile:
    """One file of a source: ``path`` on the fsspec filesystem ``fs``, read as ``format``; ``label`` names it."""

    fs: Any
    path: str
    format: str
    label: str

    @property
    def compression(self) -> str | None:
        return next((c.lstrip(".") for c in COMPRESSIONS if self.path.endswith(c)), None)


@dataclass(frozen=True)
class Source:
    """A resolved dataset name: data files, a saved dataset, a ``datasets`` stream or in-memory rows.

    ``skip`` rows are passed over, then at most ``limit`` are read; row numbers (and default ids) stay those of the
    whole source. A JSON Lines line or CSV record longer than ``max_row_bytes`` is refused before it is parsed.
    """

    name: str
    files: tuple[DataFile, ...] = ()
    saved: str | None = None
    dataset: Any = None
    records: Iterable[Mapping[str, Any]] | None = None
    limit: int | None = None
    skip: int = 0
    max_row_bytes: int = MAX_ROW_BYTES

    @property
    def stem(self) -> str:
        """A short name for default ids: the file's stem, else the last plain part of the name."""
        if len(self.files) == 1 and self.files[0].label == self.name:
            return _stem(self.files[0].path.rsplit("/", 1)[-1])
        parts = [p for p in re.split(r"[/\\]", self.name.split("://")[-1]) if p and not any(c in p for c in "*?[")]
        return _stem(re.sub(r"[:@].*$", "", parts[-1])) if parts else "row"

    @property
    def local(self) -> bool:
        """Whether every file is on this machine (cheap to read twice: check first, then stream)."""
        if self.files:
            return all(_is_local(f.fs) for f in self.files)
        in_memory = type(self.dataset).__name__ == "Dataset"  # map-style; an IterableDataset may stream remotely
        return self.saved is not None or self.records is not None or in_memory

    def sliced(self, *, limit: int | None = None, skip: int = 0) -> Source:
        """This source with ``skip`` more rows passed over, then at most ``limit`` read."""
        if limit is not None and limit <= 0:
            raise InputError("`limit` must be > 0")
        if skip < 0:
            raise InputError("`skip` must be >= 0")
        left = None if self.limit is None else max(self.limit - skip, 0)
        if limit is not None:
            left = limit if left is None else min(left, limit)
        return dataclasses.replace(self, skip=self.skip + skip, limit=left)


def resolve(
    source: Any,
    *,
    config: str | None = None,
    limit: int | None = None,
    skip: int = 0,
    name: str | None = None,
    max_row_bytes: int | None = None,
) -> Source:
    """A :class:`Source` for a dataset name (see the module docstring), a ``Source``, a ``datasets.Dataset`` or
    ``IterableDataset``, a pandas DataFrame or an iterable of mappings.

    ``config`` names a Hub configuration; ``limit`` and ``skip`` slice the rows; ``name`` labels in-memory data in
    messages; ``max_row_bytes`` raises (or lowers) the cap on one row of a text file. Raises
    :class:`~critiq.errors.InputError` with one line a user can act on.
    """
    if isinstance(source, Source):
        resolved = source
    elif isinstance(source, (str, os.PathLike)):
        resolved = _resolve_name(os.fspath(source), config)
    else:
        resolved = _in_memory(source, name)
    if max_row_bytes is not None:
        if max_row_bytes <= 0:
            raise InputError("max_row_bytes must be > 0")
        resolved = dataclasses.replace(resolved, max_row_bytes=max_row_bytes)
    return resolved.sliced(limit=limit, skip=skip) if (limit is not None or skip) else resolved


def describe(source: Any) -> str:
    """A short name for a source, for messages."""
    if isinstance(source, Source):
        return source.name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__


def is_hf_dataset(source: Any) -> bool:
    """A ``datasets.Dataset`` or ``IterableDataset`` (without importing datasets)."""
    return type(source).__name__ in ("Dataset", "IterableDataset") and hasattr(source, "with_format")


def _in_memory(source: Any, name: str | None) -> Source:
    label = name or type(source).__name__
    if is_hf_dataset(source):
        return Source(label, dataset=source)
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # pandas DataFrame
        return Source(label, records=source.to_dict(orient="records"))
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, Mapping)):
        return Source(label, records=source)
    raise InputError(f"cannot read examples from a {type(source).__name__}")


def _resolve_name(text: str, config: str | None) -> Source:
    if text.startswith("hf://") and not text.startswith(("hf://datasets/", "hf://buckets/")):
        return _hub(text, config)
    import fsspec

    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        try:
            fs, path = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as error:  # an fsspec protocol whose package is not installed
            raise InputError(f"cannot open this URI ({error})", source=text) from None
        return _on_filesystem(fs, path, text, config)
    return _on_filesystem(fsspec.filesystem("file"), text, text, config)


def _on_filesystem(fs: Any, path: str, label: str, config: str | None) -> Source:
    if any(char in path for char in "*?["):
        return _glob(fs, path, label)
    try:
        exists = fs.exists(path)
        is_dir = exists and fs.isdir(path)
    except OSError as error:  # permission denied, bad credentials, unreachable bucket
        raise InputError(f"cannot open ({error})", source=label) from None
    if not exists:
        folder, _, split = path.rpartition(":")
        if folder and split and "/" not in split and fs.isdir(folder):
            return _folder(fs, folder, label, config, split)
        raise InputError("no such file", source=label)
    if is_dir:
        return _folder(fs, path, label, config, None)
    file = _data_file(fs, path, label)
    if fs.size(path) == 0:
        raise InputError("file is empty", source=label)
    return Source(label, files=(file,))


def _data_file(fs: Any, path: str, label: str) -> DataFile:
    name = path.lower()
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    suffix = Path(name).suffix
    if suffix not in FORMATS:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; {_FORMAT_HINT}", source=label)
    return DataFile(fs, path, FORMATS[suffix], label)


def _stem(name: str) -> str:
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    return Path(name).stem or name


def _label(fs: Any, path: str) -> str:
    return path if _is_local(fs) else str(fs.unstrip_protocol(path))


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _glob(fs: Any, pattern: str, label: str) -> Source:
    try:
        found = fs.glob(pattern, detail=True)
    except OSError as error:
        raise InputError(f"cannot list ({error})", source=label) from None
    paths = sorted(path for path, info in found.items() if info.get("type") == "file")
    if not paths:
        raise InputError("no file matches", source=label)
    return Source(label, files=_same_format([_data_file(fs, p, _label(fs, p)) for p in paths], label))


def _same_format(files: list[DataFile], label: str) -> tuple[DataFile, ...]:
    formats = sorted({f.format for f in files})
    if len(formats) > 1:
        raise InputError(f"mixes file formats ({', '.join(formats)}); name one format's files", source=label)
    return tuple(files)


def _folder(fs: Any, path: str, label: str, config: str | None, split: str | None) -> Source:
    join = path.rstrip("/") + "/"
    if fs.exists(join + "dataset_info.json") and fs.exists(join + "state.json"):
        return Source(label, saved=path if _is_local(fs) else _label(fs, path))
    if fs.exists(join + "dataset_dict.json"):
        splits = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False) if fs.isdir(p))
        if split is not None and split in splits:
            return Source(label, saved=join + split if _is_local(fs) else _label(fs, join + split))
        if split is not None:
            raise InputError(f"no split {split!r} (splits: {', '.join(splits)})", source=label)
        raise InputError(f"holds a DatasetDict (splits: {', '.join(splits)}); name one as {label}:SPLIT", source=label)
    if _is_local(fs):
        import datasets
        from datasets.data_files import EmptyDatasetError

        try:
            builder = datasets.load_dataset_builder(path, name=config)
        except EmptyDatasetError:
            raise InputError(f"a folder without data files; {_FOLDER_HINT}", source=label) from None
        except (FileNotFoundError, ValueError) as error:
            raise InputError(_first_line(error), source=label) from None
        return _from_builder(builder, split, label)
    return _remote_folder(fs, path, label, split)


def _remote_folder(fs: Any, path: str, label: str, split: str | None) -> Source:
    """A folder on a remote filesystem: its splits by the Hub's file-naming rules (README configs are not read)."""
    from datasets.data_files import DataFilesDict, get_data_patterns
    from datasets.download.download_config import DownloadConfig

    base = _label(fs, path)
    try:
        patterns = get_data_patterns(base, download_config=DownloadConfig())
        data_files = DataFilesDict.from_patterns(patterns, base_path=base, download_config=DownloadConfig())
    except FileNotFoundError as error:
        raise InputError(_first_line(error), source=label) from None
    chosen = _choose_split({str(k): list(v) for k, v in data_files.items()}, split, label)
    return _files_source(label, data_files[chosen])


def _from_builder(builder: Any, split: str | None, label: str) -> Source:
    data_files = builder.config.data_files
    splits = list(data_files) if data_files else list(builder.info.splits or {})
    chosen = _choose_split({str(s): [] for s in splits}, split, label)
    if data_files and _critiq_reads(builder):
        files = _files_source(label, data_files[chosen]).files
        return Source(label, files=files)
    try:
        stream = builder.as_streaming_dataset(split=chosen)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        raise InputError(_first_line(error), source=label) from None
    return Source(label, dataset=stream)


def _critiq_reads(builder: Any) -> bool:
    """A parquet / json / csv builder with no option beyond where its files are."""
    from datasets.packaged_modules.csv.csv import Csv
    from datasets.packaged_modules.json.json import Json
    from datasets.packaged_modules.parquet.parquet import Parquet

    if not isinstance(builder, (Parquet, Json, Csv)):
        return False
    config, default = builder.config, type(builder.config)()
    return all(
        getattr(config, f.name) == getattr(default, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _LOCATION_OPTIONS
    )


def _files_source(label: str, urls: Iterable[str]) -> Source:
    import fsspec

    files = []
    for url in urls:
        fs, path = fsspec.core.url_to_fs(url)
        files.append(_data_file(fs, path, url))
    if not files:
        raise InputError("no data files", source=label)
    return Source(label, files=_same_format(files, label))


def _choose_split(splits: Mapping[str, Any], split: str | None, label: str) -> str:
    names = sorted(splits)
    if split is not None:
        if split not in splits:
            raise InputError(f"no split {split!r} (splits: {', '.join(names) or 'none'})", source=label)
        return split
    if len(names) == 1:
        return names[0]
    if "train" in splits:
        return "train"
    raise InputError(f"has splits {', '.join(names)}; name one as {label}:SPLIT", source=label)


def _hub(text: str, config: str | None) -> Source:
    """``hf://ORG/NAME[@REVISION][:SPLIT]``: resolved by ``datasets.load_dataset_builder``; nothing is downloaded."""
    match = HUB_NAME.fullmatch(text)
    if not match or "--" in match["repo"] or ".." in match["repo"] or len(match["repo"]) > 96:
        raise InputError(
            "expected hf://ORG/NAME[@REVISION][:SPLIT], ORG and NAME as the Hub spells repo ids", source=text
        )
    if os.path.lexists(match["repo"]):  # datasets would read this local path instead of the Hub repo
        raise InputError(
            f"a local path {match['repo']!r} exists, which would be read instead of the Hub; "
            "name the local folder without hf://, or run from another directory",
            source=text,
        )
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    repo, revision, split = match["repo"], match["revision"], match["split"]
    try:
        builder = datasets.load_dataset_builder(repo, name=config, revision=revision)
    except ConnectionError as error:
        if datasets.config.HF_HUB_OFFLINE:
            raise InputError(
                "not in the local cache, and the Hub is off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)", source=text
            ) from None
        raise InputError(f"cannot reach the Hub ({_first_line(error)})", source=text) from None
    except DatasetNotFoundError as error:
        raise InputError(f"{_first_line(error)} (for a private one: `hf auth login`)", source=text) from None
    except ValueError as error:
        message = _first_line(error)
        if config and "BuilderConfig" in message:
            raise InputError(f"config={config!r}: {message}", source=text) from None
        raise InputError(message, source=text) from None
    return _from_builder(builder, split, text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
