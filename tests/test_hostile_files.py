"""Sketch files are untrusted input: checksum-valid files with absurd or
malformed headers are refused with CorruptSketchFileError before anything is
allocated or regenerated, and never leak another exception."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sketchcore
from sketchcore import Sketch
from sketchcore.exceptions import (
    CorruptSketchFileError,
    FingerprintMismatchError,
    SketchFileError,
    UnsupportedFormatError,
)
from sketchcore.io import sketch_file
from sketchcore.io.sketch_file import FORMAT_VERSION, MAGIC, decode_sketch, encode_sketch

OP = sketchcore.SketchOperator(3, 24, sigma=1.5, seed=4, dither=True)
X = np.random.default_rng(4).normal(size=(500, 3))
GOOD = OP.sketch(X)
GOOD.metadata["site"] = "A"


def split(data: bytes) -> tuple[dict, np.ndarray]:
    """Header and payload of a file's bytes."""
    _, _, head_len = struct.unpack_from("<12sIQ", data)
    header = json.loads(data[24 : 24 + head_len])
    payload = np.frombuffer(data[24 + head_len : -32], dtype="<f8").copy()
    return header, payload


def forge(header: object, payload: np.ndarray | bytes, version: int = FORMAT_VERSION) -> bytes:
    """A file with a valid checksum around any header and payload."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = struct.pack("<12sIQ", MAGIC, version, len(head)) + head
    body += payload if isinstance(payload, bytes) else np.asarray(payload, dtype="<f8").tobytes()
    return body + hashlib.sha256(body).digest()


def good_parts(sketch: Sketch = GOOD) -> tuple[dict, np.ndarray]:
    return split(encode_sketch(sketch))


def bounded(data: bytes, seconds: float = 2.0, mebibytes: float = 64.0):
    """Decodes ``data``; returns the sketch or the exception, checking time and Python-heap peak."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = decode_sketch(data)
    except Exception as exc:  # noqa: BLE001 - the caller checks the type
        result = exc
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f"decoding took {elapsed:.2f} s"
    assert peak < mebibytes * 2**20, f"decoding peaked at {peak / 2**20:.0f} MiB"
    return result


def test_round_trip_still_exact():
    back = decode_sketch(encode_sketch(GOOD))
    assert back == GOOD and back.metadata == {"site": "A"} and back.max_weight == 1.0


@pytest.mark.parametrize("m", [30_000_000, 10**12])
def test_absurd_sketch_size_is_refused_before_allocating(m):
    header, payload = good_parts()
    header["operator"]["sketch_size"] = m  # the array lengths still say 24
    err = bounded(forge(header, payload), seconds=1.0, mebibytes=8)
    assert isinstance(err, CorruptSketchFileError), err
    header["arrays"][0][1] = header["arrays"][1][1] = m
    err = bounded(forge(header, payload), seconds=1.0, mebibytes=8)
    assert isinstance(err, CorruptSketchFileError), err


def test_wide_structured_operator_with_matching_payload_is_cheap():
    # dim 8192, m = 1: a consistent file is loaded (O(m + d) to rebuild), fast.
    op = sketchcore.SketchOperator(8192, 1, kind="structured", seed=0)
    sk = op.sketch(np.zeros((2, 8192)))
    back = bounded(encode_sketch(sk), seconds=5.0, mebibytes=64)
    assert isinstance(back, Sketch) and back == sk
    # ... and with a mismatched payload it is refused before the operator is built.
    header, payload = good_parts(sk)
    header["operator"]["dim"] = 4096
    assert isinstance(bounded(forge(header, payload), seconds=0.5), CorruptSketchFileError)


def test_dense_operator_too_large_is_refused():
    header, payload = good_parts()
    header["operator"].update(dim=2**14, sketch_size=2**15)
    header["arrays"] = [["cos_sums", 2**15], ["sin_sums", 2**15], ["lower", 2**14], ["upper", 2**14]]
    payload = np.zeros(2 * 2**15 + 2 * 2**14)
    payload[2 * 2**15 :] = np.repeat([np.inf, -np.inf], 2**14)
    header["weight"], header["count"] = float.hex(0.0), 0
    err = bounded(forge(header, payload), seconds=1.0)
    assert isinstance(err, CorruptSketchFileError) and "dense operator" in str(err)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_and_fifos_are_not_read(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(SketchFileError, match="not a regular file"):
        Sketch.load("/dev/zero")
    fifo = tmp_path / "pipe.sketch"
    os.mkfifo(fifo)
    with pytest.raises(SketchFileError, match="not a regular file"):
        Sketch.load(fifo)  # would block in open() otherwise
    assert time.perf_counter() - t0 < 1.0


def test_file_size_is_bounded_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.sketch"
    GOOD.save(path)
    monkeypatch.setattr(sketch_file, "MAX_FILE_BYTES", 100)
    with pytest.raises(CorruptSketchFileError, match="more than the 100"):
        Sketch.load(path)


def _drop(key):
    def edit(h):
        del h[key]
    return edit


def _set(key, value):
    def edit(h):
        h[key] = value
    return edit


def _set_op(key, value):
    def edit(h):
        h["operator"][key] = value
    return edit


def _deep(h):
    h["metadata"] = json.loads("[" * 900 + "]" * 900)  # parses; too deep for the format


MALFORMED = {
    "no fingerprint": _drop("fingerprint"),
    "no operator": _drop("operator"),
    "fingerprint an int": _set("fingerprint", 12),
    "fingerprint a list": _set("fingerprint", ["a"]),
    "metadata a list": _set("metadata", [1, 2]),
    "metadata a string": _set("metadata", "abc"),
    "metadata too deep": _deep,
    "privacy a string": _set("privacy", "laplace"),
    "privacy a list": _set("privacy", [1]),
    "privacy without mechanism": _set("privacy", {"epsilon": 1.0}),
    "count huge float": _set("count", 1e300),
    "count a string": _set("count", "3"),
    "count negative": _set("count", -5),
    "decay zero": _set("decay", float.hex(0.0)),
    "decay nan": _set("decay", "nan"),
    "decay two": _set("decay", float.hex(2.0)),
    "decay not hex": _set("decay", "zero"),
    "weight nan": _set("weight", "nan"),
    "weight inf": _set("weight", "inf"),
    "weight negative": _set("weight", float.hex(-100.0)),
    "weight a float": _set("weight", 3.0),
    "arrays a dict": _set("arrays", {"cos_sums": 24}),
    "arrays renamed": _set("arrays", [["sin_sums", 24], ["cos_sums", 24], ["lower", 3], ["upper", 3]]),
    "arrays bool length": _set("arrays", [["cos_sums", True], ["sin_sums", 24], ["lower", 3], ["upper", 3]]),
    "sample_capacity negative": _set("sample_capacity", -1),
    "dim a string": _set_op("dim", "3"),
    "dim zero": _set_op("dim", 0),
    "dim bool": _set_op("dim", True),
    "kind unknown": _set_op("kind", "sparse"),
    "sigma negative": _set_op("sigma", float.hex(-1.0)),
    "sigma nan": _set_op("sigma", "nan"),
    "seed negative": _set_op("seed", -1),
    "seed a float": _set_op("seed", 1.5),
    "radius a list": _set_op("radius", ["adapted"]),
    "dither a string": _set_op("dither", "yes"),
    "unknown operator key": _set_op("frequencies", [1, 2]),
    "standardize wrong length": _set_op("standardize", {"mean": [0.0], "std": [1.0]}),
    "header a list": None,
}


def test_malformed_headers_are_corrupt():
    wrong = []
    for case, edit in sorted(MALFORMED.items()):
        header, payload = good_parts()
        if edit is None:
            header = [header]
        else:
            edit(header)
        err = bounded(forge(header, payload))
        if not isinstance(err, CorruptSketchFileError):
            wrong.append(f"{case}: {type(err).__name__}: {err}")
    assert not wrong, "\n".join(wrong)


def test_hostile_json_is_corrupt():
    _, payload = good_parts()
    for raw in [
        b'{"count": 1e400}',
        b"[" * 100_000 + b"]" * 100_000,  # a 200 KB file nested 100 000 deep
        b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"weight": NaN}',
        b"\xff\xfe not utf-8",
        b'{"count": ' + b"9" * 5000 + b"}",
    ]:
        err = bounded(forge(raw, payload))
        assert isinstance(err, CorruptSketchFileError), f"{raw[:20]!r}: {type(err).__name__}: {err}"


def test_samples_not_a_multiple_of_dim():
    sk = OP.sketch(X)
    sk.sample_capacity = 10
    sk.samples = X[:4].copy()
    header, payload = good_parts(sk)
    header["arrays"][4][1] = 11
    err = bounded(forge(header, payload[:-1]))
    assert isinstance(err, CorruptSketchFileError) and "multiple" in str(err)


def _payload_edit(fn):
    header, payload = good_parts()
    fn(header, payload)
    return bounded(forge(header, payload))


@pytest.mark.parametrize("what,edit", [
    ("NaN sum", lambda h, p: p.__setitem__(3, np.nan)),
    ("infinite sum", lambda h, p: p.__setitem__(30, np.inf)),
    ("sum beyond the weight", lambda h, p: p.__setitem__(0, 1e6)),
    ("lower > upper", lambda h, p: p.__setitem__(48, 1e3)),
    ("NaN box", lambda h, p: p.__setitem__(49, np.nan)),
    ("positive weight without samples", lambda h, p: h.update(count=0)),
])
def test_nonsense_values_are_corrupt(what, edit):
    err = _payload_edit(edit)
    assert isinstance(err, CorruptSketchFileError), f"{what}: {err!r}"


def test_forged_privacy_records_are_corrupt():
    private = sketchcore.privatize(OP.sketch(X), 1.0, seed=0)
    header, payload = good_parts(private)
    assert isinstance(decode_sketch(forge(header, payload)), Sketch)  # the genuine record loads
    for key, value in [("epsilon", -1.0), ("epsilon", "1"), ("delta", 2.0), ("noise_scale", 0.0),
                       ("mechanism", "none"), ("public_weight", "no"), ("epsilon_sums", 5.0), ("extra", 1)]:
        h = json.loads(json.dumps(header))
        h["privacy"][key] = value
        err = bounded(forge(h, payload))
        assert isinstance(err, CorruptSketchFileError), f"{key}={value!r}: {err!r}"
    # A "private" sketch that carries the sample of rows or exact moments is a forgery.
    sk = OP.sketch(X)
    h, p = good_parts(sk)
    h["privacy"] = header["privacy"]
    h["metadata"] = {"feature_moments": {"count": 500.0, "mean": [0.0] * 3, "m2": [1.0] * 3}}
    assert isinstance(bounded(forge(h, p)), CorruptSketchFileError)


def test_merge_with_negative_weight_file_is_refused():
    header, payload = good_parts()
    header["weight"] = float.hex(-100.0)
    with pytest.raises(CorruptSketchFileError):
        GOOD + decode_sketch(forge(header, payload))
    with pytest.raises(sketchcore.exceptions.InvalidParameterError):
        Sketch(OP, GOOD.cos_sums, GOOD.sin_sums, -100.0, 5, GOOD.lower, GOOD.upper)


def test_flipped_version_byte_is_corruption_not_a_newer_format():
    data = bytearray(encode_sketch(GOOD))
    data[13] ^= 0xFF  # version 1 -> 65281
    with pytest.raises(CorruptSketchFileError, match="checksum") as info:
        decode_sketch(bytes(data))
    assert not isinstance(info.value, UnsupportedFormatError)


def test_fingerprint_mismatch_is_corrupt_and_an_operator_mismatch():
    header, payload = good_parts()
    header["fingerprint"] = "0" * 64
    err = bounded(forge(header, payload))
    assert isinstance(err, FingerprintMismatchError) and isinstance(err, CorruptSketchFileError)
    assert isinstance(err, sketchcore.exceptions.OperatorMismatchError)


def test_unsaveable_metadata_is_refused_at_save(tmp_path):
    sk = OP.sketch(X)
    sk.metadata["bad"] = float("nan")
    with pytest.raises(sketchcore.exceptions.InvalidParameterError):
        sk.save(tmp_path / "x.sketch")
    sk.metadata["bad"] = json.loads("[" * 40 + "]" * 40)
    with pytest.raises(sketchcore.exceptions.InvalidParameterError):
        sk.save(tmp_path / "x.sketch")
    assert not (tmp_path / "x.sketch").exists()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sketchcore", *map(str, args)], capture_output=True, text=True)


def test_cli_info_on_hostile_files(tmp_path):
    header, payload = good_parts()
    header["privacy"] = {"epsilon": 1.0}  # no mechanism
    bad = tmp_path / "bad.sketch"
    bad.write_bytes(forge(header, payload))
    run = _cli("info", bad)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "not a valid sketch file" in run.stderr
    header, payload = good_parts()
    header["metadata"] = {"site": "\x1b[2J\x1b[31mred\x07", "\x1b]0;title\x07": 1}
    ansi = tmp_path / "ansi.sketch"
    ansi.write_bytes(forge(header, payload))
    run = _cli("info", ansi)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout and "red" in run.stdout


# -- random headers ------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
SIZES = st.one_of(st.integers(-3, 600), st.sampled_from([0, 1, 2**24, 2**24 + 1, 2**28, 10**12, 2**64]), JSON)
HEX = st.one_of(st.floats().map(float.hex), st.sampled_from(["nan", "inf", "-inf", "0x1p+1024", "x"]), JSON)


@st.composite
def headers(draw):
    header, payload = good_parts()
    op = header["operator"]
    fields = {
        "dim": SIZES, "sketch_size": SIZES, "sigma": HEX, "kind": st.sampled_from(["dense", "structured", "x"]) | JSON,
        "radius": st.sampled_from(["adapted", "gaussian", "folded"]) | JSON, "dither": st.booleans() | JSON,
        "quantize": st.booleans() | JSON, "seed": st.integers(-1, 2**130) | JSON,
    }
    for key, strategy in fields.items():
        choice = draw(st.sampled_from(["keep", "keep", "change", "drop"]))
        if choice == "change":
            op[key] = draw(strategy)
        elif choice == "drop":
            del op[key]
    top = {
        "fingerprint": st.text(max_size=70) | JSON, "weight": HEX, "count": SIZES, "decay": HEX,
        "privacy": JSON | st.fixed_dictionaries({"mechanism": st.sampled_from(["laplace", "gaussian"]),
                                                 "epsilon": st.floats(), "delta": st.floats(),
                                                 "epsilon_sums": st.floats(), "epsilon_weight": st.floats(),
                                                 "public_weight": st.booleans(), "noise_scale": st.floats()}),
        "metadata": JSON, "sample_capacity": SIZES, "max_weight": HEX, "format_version": JSON,
        "created": JSON, "sketchcore_version": JSON,
    }
    for key, strategy in top.items():
        choice = draw(st.sampled_from(["keep", "keep", "change", "drop"]))
        if choice == "change":
            header[key] = draw(strategy)
        elif choice == "drop":
            header.pop(key, None)
    # Array lengths: as the (possibly changed) operator says, as drawn, or as before.
    d, m = op.get("dim"), op.get("sketch_size")
    mode = draw(st.sampled_from(["consistent", "random", "keep"]))
    if mode == "consistent" and all(isinstance(v, int) and 0 < v <= 300 for v in (d, m)):
        header["arrays"] = [["cos_sums", m], ["sin_sums", m], ["lower", d], ["upper", d]]
        values = st.floats(width=64) | st.sampled_from([0.0, 1.0, -1.0])
        payload = np.array(draw(st.lists(values, min_size=2 * m + 2 * d, max_size=2 * m + 2 * d)), dtype=np.float64)
    elif mode == "random":
        header["arrays"] = draw(st.lists(st.tuples(st.sampled_from(["cos_sums", "sin_sums", "lower", "upper",
                                                                    "samples", "x"]), SIZES).map(list),
                                         max_size=6) | JSON)
        payload = np.array(draw(st.lists(st.floats(width=64), max_size=700)), dtype=np.float64)
    return header, payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(headers())
def test_random_checksum_valid_headers_load_cleanly_or_are_corrupt(parts):
    header, payload = parts
    result = bounded(forge(header, payload), seconds=3.0, mebibytes=64)
    if isinstance(result, Exception):
        assert isinstance(result, CorruptSketchFileError), f"{type(result).__name__}: {result}"
    else:
        # A clean load is a consistent sketch.
        assert isinstance(result, Sketch)
        assert math.isfinite(result.weight) and result.weight >= 0 and result.count >= 0
        assert np.all(np.isfinite(result.cos_sums)) and np.all(np.isfinite(result.sin_sums))
