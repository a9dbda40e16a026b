"""How the metadata of sketches merges: the keys with rules, and the rest.

Sketches of disjoint data add exactly; so must what they carry about that
data. :func:`merge_metadata` combines the metadata of merged parts:

* ``feature_moments`` (per-feature count, mean and squared deviations) merge
  exactly, like the sums (kept only when every part has them);
* ``features`` (the feature settings) must be equal in every part: sums of
  different features are not a sketch of anything;
* ``files_done`` (one record per file: path, size, modification time and
  content hash) is the union, and parts that share a file are refused:
  its frames would be counted twice;
* ``skipped`` is the union;
* any other key is kept when every part has the same value, dropped otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sketchcore.core.moments import RunningMoments
from sketchcore.exceptions import OperatorMismatchError, OverlappingDataError

__all__ = ["merge_metadata", "file_key"]

logger = logging.getLogger(__name__)


def file_key(record: Any) -> str:
    """What identifies a file of ``files_done`` across sites: its content hash
    when recorded, else its path (records of older versions are paths)."""
    if isinstance(record, (list, tuple)) and len(record) >= 4 and isinstance(record[3], str):
        return "sha:" + record[3]
    if isinstance(record, (list, tuple)) and record:
        return "path:" + str(record[0])
    return "path:" + str(record)


def _path(record: Any) -> str:
    return str(record[0]) if isinstance(record, (list, tuple)) and record else str(record)


def merge_metadata(parts: Sequence[dict], dim: int) -> dict:
    """The metadata of the merge of sketches whose metadata are ``parts`` (in order).

    Raises
    ------
    OperatorMismatchError
        If the parts were made with different feature settings.
    OverlappingDataError
        If two parts list the same file.
    """
    parts = [dict(p or {}) for p in parts]
    if len(parts) == 1:
        return parts[0]
    out: dict = {}
    keys: list[str] = []
    for p in parts:
        keys.extend(k for k in p if k not in keys)
    for key in keys:
        values = [p.get(key) for p in parts]
        present = [v for v in values if v is not None]
        if key == "features":
            if any(v != present[0] for v in present) or len(present) != len(parts):
                differ = sorted({k for v in present for k in (v if isinstance(v, dict) else {})
                                 if any(not isinstance(w, dict) or w.get(k) != v.get(k) for w in present)})
                raise OperatorMismatchError(
                    "cannot merge sketches of different feature settings"
                    + (f" ({', '.join(differ)} differ)" if differ else " (some parts record none)")
                    + ": sums of different features are not a sketch of anything"
                )
            out[key] = present[0]
        elif key == "feature_moments":
            if len(present) == len(parts):
                total = RunningMoments(dim)
                for v in present:
                    total = total + RunningMoments.from_dict(v)
                out[key] = total.to_dict()
            else:
                logger.warning("feature_moments dropped from the merge: some parts have none")
        elif key == "files_done":
            seen: dict[str, str] = {}
            merged = []
            for v in values:
                for record in v or []:
                    k = file_key(record)
                    if k in seen:
                        raise OverlappingDataError(
                            f"cannot merge: {_path(record)} is in two parts (as {seen[k]}): its frames would be "
                            "counted twice", path=_path(record)
                        )
                    seen[k] = _path(record)
                    merged.append(record)
            out[key] = merged
        elif key == "skipped":
            merged, known = [], set()
            for v in values:
                for record in v or []:
                    k = repr(record)
                    if k not in known:
                        known.add(k)
                        merged.append(record)
            out[key] = merged
        elif all(v == values[0] for v in values):
            out[key] = values[0]
        else:
            logger.info("metadata %r dropped from the merge: the parts differ", key)
    return out
