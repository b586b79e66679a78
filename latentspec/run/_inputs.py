"""Named entry inputs given on a command line (``--input y=7``, ``--input y=heart``).

A class label (an int64 tensor with a class count) takes its index or, where the dataset names
its classes (e.g. ``shapes``' ``class``), the name; the bundle manifest records the same names
(``classes``) so that the runtime's CLI reads the same values.
"""

from __future__ import annotations

from collections.abc import Sequence

from latentspec.errors import UserError, did_you_mean
from latentspec.spec import EntrySpec, Spec


class InputValueError(UserError):
    """An entry input given on the command line that the entry cannot take."""


def class_names(spec: Spec, tensor: str) -> tuple[str, ...] | None:
    """The dataset's names of the classes of label ``tensor`` (a field read from a label array
    whose classes the dataset names), else None."""
    f = spec.data.fields.get(tensor)
    info = spec.infos.get(tensor)
    if f is None or not isinstance(f.source, str) or info is None or info.dtype != "int64" or not info.classes:
        return None
    ds = spec.data.dataset
    try:
        arrays = ds.instance.arrays({**ds.config.as_dict(), "_base_dir": spec.base_dir})
    except Exception:  # the validator reported an unreadable dataset; no names then
        return None
    a = arrays.get(f.source)
    names = getattr(a, "names", None)
    return tuple(names) if names and len(names) == info.classes else None


def label_inputs(spec: Spec, entry: EntrySpec) -> dict[str, int]:
    """{input: class count} of the entry's inputs that are class labels."""
    out = {}
    for t in entry.inputs:
        info = spec.infos.get(t)
        if info is not None and info.dtype == "int64" and info.classes:
            out[t] = int(info.classes)
    return out


def class_label(spec: Spec, tensor: str, index: int) -> str:
    """How a grid names class ``index`` of ``tensor``: ``y=7``, or ``class=heart``."""
    names = class_names(spec, tensor)
    return f"{tensor}={names[index] if names else index}"


def parse_inputs(spec: Spec, entry: EntrySpec, items: Sequence[str]) -> dict[str, float | int]:
    """``["y=7", ...]`` as {input: value} for ``entry``: one scalar per input, broadcast over the
    batch by the caller. A one-line :class:`InputValueError` names a bad item."""
    labels = label_inputs(spec, entry)
    out: dict[str, float | int] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise InputValueError(f"--input {item!r}: expected NAME=VALUE, e.g. --input y=7")
        if name not in entry.inputs:
            takes = ", ".join(entry.inputs) or "nothing"
            raise InputValueError(
                f"--input {name}: entry '{entry.name}' has no input '{name}'{did_you_mean(name, entry.inputs)}; "
                f"it takes: {takes}"
            )
        if name in labels:
            out[name] = _class_index(spec, name, text, labels[name])
            continue
        try:
            out[name] = float(text)
        except ValueError:
            raise InputValueError(f"--input {name}: expected a number, got {text!r}") from None
    return out


def _class_index(spec: Spec, name: str, text: str, classes: int) -> int:
    names = class_names(spec, name)
    if names and text in names:
        return names.index(text)
    try:
        index = int(text)
    except ValueError:
        known = f"{', '.join(names)} or an index 0..{classes - 1}" if names else f"an index 0..{classes - 1}"
        raise InputValueError(
            f"--input {name}: {text!r} is not a class of '{name}'{did_you_mean(text, names or ())}; it takes {known}"
        ) from None
    if not 0 <= index < classes:
        raise InputValueError(f"--input {name}: class {index} is out of range; '{name}' has classes 0..{classes - 1}")
    return index
