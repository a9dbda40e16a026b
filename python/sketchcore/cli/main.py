"""The ``sketchcore`` command line (also ``python -m sketchcore``)."""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore import _core
from sketchcore.backends.reference import sketch_reference
from sketchcore.core.operator import SketchOperator
from sketchcore.core.sketch import Sketch
from sketchcore.datasets import make_mixture
from sketchcore.exceptions import InvalidParameterError, OverlappingDataError, SketchcoreError

__all__ = ["main"]


def _speed(args: argparse.Namespace) -> int:
    """Sketches a generated Gaussian mixture and compares with the NumPy reference."""
    n, d, k, m = args.n_samples, args.dim, args.n_clusters, args.sketch_size
    X = make_mixture(n, d, k, random_state=args.seed)[0].astype(np.float32)
    op = SketchOperator(d, m, sigma=float(np.sqrt(d)), dither=True, seed=args.seed)
    print(f"sketchcore {_core.__version__}: SIMD level {_core.simd_level()}, "
          f"{_core.default_num_threads()} threads")
    print(f"data: {n} samples x {d} features (mixture of {k} Gaussians); sketch size m = {m}\n")

    rows = []
    for label, data in (("rust float32", X), ("rust float64", X.astype(np.float64))):
        op.sketch(data[:1000])  # warm up threads and caches
        t0 = time.perf_counter()
        sk = op.sketch(data)
        rows.append((label, time.perf_counter() - t0, sk))
    n_ref = min(n, args.reference_rows)
    t0 = time.perf_counter()
    ref_part = sketch_reference(op, X[:n_ref].astype(np.float64))
    t_ref = (time.perf_counter() - t0) * n / n_ref
    print(f"{'backend':<22}{'time (s)':>10}{'samples/s':>14}{'speed-up':>10}{'rel. error':>12}")
    for (label, t, _), dtype in zip(rows, (np.float32, np.float64), strict=True):
        z = op.sketch(X[:n_ref].astype(dtype)).z
        err = np.linalg.norm(z - ref_part.z) / np.linalg.norm(ref_part.z)
        print(f"{label:<22}{t:>10.3f}{n / t:>14.4g}{t_ref / t:>9.1f}x{err:>12.1e}")
    print(f"{'numpy float64 ref.':<22}{t_ref:>10.3f}{n / t_ref:>14.4g}{1.0:>9.1f}x{0.0:>12.1e}"
          f"   (timed on {n_ref} rows)")
    merged = Sketch.merge([op.sketch(part) for part in np.array_split(X, 7)])
    err = np.linalg.norm(merged.z - rows[0][2].z) / np.linalg.norm(rows[0][2].z)
    print(f"\nmerge of 7 parts vs one pass: rel. difference {err:.1e}")
    return 0


def _simd(args: argparse.Namespace) -> int:
    """Prints the instruction sets the kernels can use here."""
    print(f"best: {_core.simd_level()}")
    print(f"available: {', '.join(_core.available_simd_levels())}")
    print(f"threads: {_core.default_num_threads()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The main job on the built-in synthetic audio corpus."""
    from sketchcore.cli.demo import run_demo

    run_demo(args.out, quick=args.quick, k=args.clusters, seed=args.seed, progress=sys.stderr.isatty())
    return 0


#: Largest K a corpus sketch is sized for unless --max-components says otherwise.
DEFAULT_MAX_COMPONENTS = 16


def _sketch_size_for(dim: int, k: int) -> int:
    """m = 5 (2d + 1) K: the size a diagonal GMM of K components needs (measured bar)."""
    return 5 * (2 * dim + 1) * k


def _components_for(dim: int, m: int) -> int:
    """The largest K a sketch of size m is sized for (inverse of :func:`_sketch_size_for`)."""
    return max(1, m // (5 * (2 * dim + 1)))


def _sample_rate(text: str) -> int | str:
    """--sample-rate: a positive integer (Hz) or 'native'."""
    if text == "native":
        return text
    try:
        rate = int(text)
    except ValueError:
        rate = 0
    if rate < 1:
        raise argparse.ArgumentTypeError(f"expected a rate in Hz or 'native', got {text!r}")
    return rate


def _sketch(args: argparse.Namespace) -> int:
    """Sketches audio files and folders."""
    from sketchcore.audio import FeatureConfig, sketch_corpus

    cfg = FeatureConfig(kind=args.features, sample_rate=args.sample_rate, hop_length=args.hop_length,
                        n_mfcc=args.n_mfcc, deltas=args.deltas, n_mels=args.n_mels, stack=args.stack)
    sigma: float | str = args.sigma
    if args.max_components is not None and args.max_components < 1:
        raise InvalidParameterError(f"--max-components must be at least 1, got {args.max_components}")
    features: Any = cfg
    operator: SketchOperator | None = None
    resuming = args.resume and Path(args.output).exists()
    if resuming or args.like:
        # Settings come from the checkpoint (--resume) or the other sketch (--like).
        source = args.output if resuming else args.like
        ref = Sketch.load(source)
        _check_inherited(args, ref, "--resume" if resuming else "--like", source)
        if resuming:
            features = None
        else:
            features = FeatureConfig.from_dict(ref.metadata["features"])
            assert isinstance(ref.operator, SketchOperator)  # checked by _check_inherited
            operator = ref.operator
            cfg = features
    m = args.sketch_size or _sketch_size_for(cfg.dim, args.max_components or DEFAULT_MAX_COMPONENTS)
    capacity = args.max_components if args.max_components is not None else (
        _components_for(cfg.dim, m) if args.sketch_size else DEFAULT_MAX_COMPONENTS)
    client = cluster = None
    if args.dask or args.workers:
        from distributed import Client, LocalCluster

        if args.workers:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
        client = Client(args.dask or cluster)
    try:
        sk, report = sketch_corpus(args.paths, args.output, features=features, operator=operator, force=args.force,
                                   sketch_size=m, kind=args.operator,
                                   sigma=sigma, seed=args.seed, resume=args.resume,
                                   checkpoint_seconds=args.checkpoint_every, client=client,
                                   progress=not args.quiet and sys.stderr.isatty(),
                                   metadata={"max_components": capacity})
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(report.summary())
    if report.skipped:
        print(f"{len(report.skipped)} files skipped; listed in {args.output}.log")
    print(f"wrote {args.output} (m = {sk.sketch_size}, dim = {sk.dim}, sigma = {sk.operator.sigma:.4g})")
    return 0


def _fit(args: argparse.Namespace) -> int:
    """Decodes a model from a sketch file and writes it."""
    from sketchcore.learning.estimators import CompressiveGMM, CompressiveKMeans
    from sketchcore.learning.model_file import save_model

    sk = Sketch.load(args.sketch)
    recorded = sk.metadata.get("max_components")
    capacity = recorded if isinstance(recorded, int) and recorded > 0 else _components_for(sk.dim, sk.sketch_size)
    if args.components > capacity:
        print(f"warning: {args.components} components, but the sketch (m = {sk.sketch_size}, dim {sk.dim}) is sized "
              f"for at most {capacity}: the model may miss components; sketch again with "
              f"--max-components {args.components} (m = {_sketch_size_for(sk.dim, args.components)})",
              file=sys.stderr)
    standardize = not args.no_standardize and "feature_moments" in sk.metadata
    target = sk.standardized() if standardize else sk
    Est = CompressiveKMeans if args.model == "kmeans" else CompressiveGMM
    # A progress bar of the decoder's steps, on a terminal only (not in logs).
    replicates = {} if args.replicates is None else {"n_replicates": args.replicates}
    est = Est(args.components, method=args.method, random_state=args.seed, **replicates,
              sample_relevance=None if args.no_adapt else "cv", verbose=int(sys.stderr.isatty())).fit_sketch(target)
    op: Any = target.operator  # a StandardizedOperator (mean, std) when standardised
    mean = op.mean if standardize else np.zeros(sk.dim)
    std = op.std if standardize else np.ones(sk.dim)
    means = (est.cluster_centers_ if args.model == "kmeans" else est.means_) * std + mean
    save_model(est, args.output, mean=mean if standardize else None, std=std if standardize else None,
               features=sk.metadata.get("features"),
               metadata={"sketch": {"file": str(args.sketch), "fingerprint": sk.fingerprint, "count": sk.count}})
    print(f"{args.model} with {args.components} components from {sk.count} frames "
          f"(decoded by {_DECODER_NAMES.get(est.decoder_, est.decoder_)} in {est.decode_time_:.2f} s, "
          f"relative residual {est.residual_:.4f})")
    print(_adaptation_line(est, 0 if target.samples is None else len(target.samples)))
    print(f"{'component':>9}  {'weight':>7}  {'mean (first 4 features)':<40}")
    for i in np.argsort(-est.weights_):
        head = ", ".join(f"{v:8.3f}" for v in means[i][:4])
        print(f"{i:>9}  {est.weights_[i]:7.3f}  {head}")
    print(f"wrote {args.output}")
    return 0


_DECODER_NAMES = {"clompr": "CL-OMPR", "split": "hierarchical splitting", "batch": "batched CL-OMPR"}


def _adaptation_line(est: Any, rows: int) -> str:
    """What the decoder did with the frames the sketch stores."""
    line = _mixture_adaptation(est, rows)
    weight = getattr(est, "density_weight_", None)
    if weight is not None and np.isfinite(weight):
        line += (f"; centroids refined by Lloyd's algorithm on those frames and draws of the density model "
                 f"weighing {weight:g} times as much (cross-validation)")
    return line


def _mixture_adaptation(est: Any, rows: int) -> str:
    relevance, scale, adaptation = est.sample_relevance_, est.feature_variance_scale_, est.adaptation_
    if relevance is None:
        return "decoded from the sketch alone (no adaptation to stored frames)"
    if adaptation is not None and adaptation.refit:
        return (f"fitted to the sketch's {rows} stored frames alone (EM from a k-means start): on held-out frames it "
                "beat the decoded model and its adaptations (cross-validation)")
    if np.isinf(relevance) and scale is None:
        return f"decoded model kept: adapting it to the sketch's {rows} stored frames did not help on held-out frames"
    steps = ([] if scale is None else ["per-feature variance scales"]) + \
        ([] if np.isinf(relevance) else [f"MAP with relevance {relevance:g}"])
    return f"adapted to the sketch's {rows} stored frames ({' then '.join(steps)}, chosen by cross-validation)"


def _predict(args: argparse.Namespace) -> int:
    """Applies a model file to audio files: segments, frame labels or per-file scores."""
    import contextlib
    import csv
    import json

    from sketchcore.audio.features import AudioDecodeError, find_audio_files
    from sketchcore.audio.predict import model_features, predict_file
    from sketchcore.learning.model_file import read_model

    model = read_model(args.model)
    cfg = model_features(model)
    gmm = model.kind == "gmm"
    if args.posteriors and not gmm:
        raise InvalidParameterError("--posteriors needs a GMM (k-means assigns each frame to one centroid)")
    fmt = args.format or ("json" if str(args.output).lower().endswith(".json") else "csv")
    score_name = "log_likelihood" if gmm else "mean_sq_distance"
    k = len(model.estimator.weights_)
    files = find_audio_files(args.paths)
    if not files:
        raise AudioDecodeError("no audio files under the given paths")
    results, skipped = [], []
    with contextlib.ExitStack() as stack:
        out = sys.stdout if args.output == "-" else stack.enter_context(open(args.output, "w", newline=""))
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            if args.per == "segment":
                writer.writerow(["file", "start", "end", "label"])
            elif args.per == "frame":
                writer.writerow(["file", "frame", "time", "label"]
                                + ([f"p{j}" for j in range(k)] if args.posteriors else []))
            else:
                writer.writerow(["file", "frames", "seconds", score_name])
        for path in files:
            try:
                res = predict_file(model, path, posteriors=args.posteriors, features=cfg)
            except (AudioDecodeError, OSError, ValueError) as exc:
                why = str(exc).replace("\n", " ")
                skipped.append((str(path), why))
                print(f"warning: skipping {path}: {why}", file=sys.stderr)
                continue
            score = res.log_likelihood if gmm else res.mean_sq_distance
            if writer is not None:
                if args.per == "segment":
                    writer.writerows([res.path, f"{a:.3f}", f"{b:.3f}", lab] for a, b, lab in res.segments())
                elif args.per == "frame":
                    for i, lab in enumerate(res.labels):
                        row = [res.path, i, f"{i * res.frame_seconds:.3f}", int(lab)]
                        if res.posteriors is not None:
                            row += [f"{v:.6g}" for v in res.posteriors[i]]
                        writer.writerow(row)
                else:
                    writer.writerow([res.path, res.n_frames, f"{res.seconds:.3f}", f"{score:.6f}"])
                continue
            entry = {"file": res.path, "frames": res.n_frames, "seconds": res.seconds,
                     "frame_seconds": res.frame_seconds, score_name: score}
            if args.per == "segment":
                entry["segments"] = [{"start": a, "end": b, "label": lab} for a, b, lab in res.segments()]
            elif args.per == "frame":
                entry["labels"] = res.labels.tolist()
                if res.posteriors is not None:
                    entry["posteriors"] = res.posteriors.tolist()
            results.append(entry)
        if fmt == "json":
            json.dump({"model": str(args.model), "kind": model.kind, "n_components": k,
                       "frame_seconds": None if cfg.sample_rate == "native" else cfg.hop_length / int(cfg.sample_rate),
                       "files": results,
                       "skipped": [{"file": f, "reason": why} for f, why in skipped]}, out, indent=1)
            out.write("\n")
    if len(skipped) == len(files):
        raise AudioDecodeError(f"none of the {len(files)} audio files could be read")
    if args.output != "-":
        print(f"{len(files) - len(skipped)} files, {len(skipped)} skipped; wrote {args.output}", file=sys.stderr)
    return 0


def _merge(args: argparse.Namespace) -> int:
    """Merges sketch files of disjoint data made with one operator."""
    from sketchcore.audio.pipeline import _check_output

    seen: dict[Path, str] = {}
    for p in args.inputs:
        key = Path(p).resolve()
        if key in seen:
            raise OverlappingDataError(f"{p} is given twice (as {seen[key]}): its data would be counted twice")
        seen[key] = p
    _check_output(Path(args.output), False, args.force)
    total = Sketch.merge(Sketch.load(p) for p in args.inputs)
    total.save(args.output, metadata={"merged_from": [str(p) for p in args.inputs]})
    print(f"merged {len(args.inputs)} sketches ({total.count} samples, weight {total.weight:g}) into {args.output}")
    return 0


def _info(args: argparse.Namespace) -> int:
    """Prints a summary of sketch files (or their full headers as JSON)."""
    import json

    from sketchcore.io.sketch_file import read_sketch_header

    if args.json:
        headers = {str(path): read_sketch_header(path) for path in args.files}
        doc = next(iter(headers.values())) if len(headers) == 1 else headers
        print(json.dumps(doc, indent=1, sort_keys=True))
        return 0
    for path in args.files:
        sk = Sketch.load(path)
        header = read_sketch_header(path)
        print(f"{_printable(path)}:")
        rows = _info_rows(sk, header)
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:<{width}}  {_clip(_printable(v))}")
    return 0


#: Longest value ``sketchcore info`` prints on one line (the full header: --json).
_INFO_WIDTH = 100


def _clip(text: str, width: int = _INFO_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _info_rows(sk: Sketch, header: dict) -> list[tuple[str, str]]:
    """The summary lines of ``sketchcore info``: one short line per item."""
    op = sk.operator
    meta = sk.metadata
    nonlinearity = ("1-bit quantized" if op.quantize else "complex exponential") + (
        ", dithered" if op.has_dither else "")
    samples = f"{sk.count}" + (" frames" if "features" in meta else "")
    if sk.weight != sk.count:
        samples += f", total weight {sk.weight:g}"
    rows = [
        ("samples", samples),
        ("operator", f"{op.kind}, dim {op.dim}, sketch size {op.sketch_size}, sigma {op.sigma:.4g}, "
                     f"{nonlinearity}, seed {op.seed}"),
        ("fingerprint", op.fingerprint),
    ]
    feats = meta.get("features")
    if isinstance(feats, dict):
        rows.append(("features", _describe_features(feats)))
    if "files_done" in meta or "skipped" in meta:
        done, skipped = meta.get("files_done") or [], meta.get("skipped") or []
        rows.append(("files", f"{len(done)} sketched, {len(skipped)} skipped"))
    if "feature_moments" in meta:
        rows.append(("standardisation", "feature means and variances recorded (fit standardises by default)"))
    if "max_components" in meta:
        rows.append(("sized for", f"up to {meta['max_components']} components"))
    if "merged_from" in meta and isinstance(meta["merged_from"], list):
        rows.append(("merged from", f"{len(meta['merged_from'])} sketch files"))
    if sk.decay != 1:
        rows.append(("forgetting", f"{sk.decay} per sample"))
    privacy = sk.privacy
    rows.append(("privacy", "none" if not privacy else
                 f"{privacy.get('mechanism')}, epsilon {privacy.get('epsilon')}, delta {privacy.get('delta')}"))
    rows.append(("data box", f"[{np.min(sk.lower):.4g}, {np.max(sk.upper):.4g}] (overall)"))
    created = header.get("created")
    if created:
        rows.append(("created", f"{created} by sketchcore {header.get('sketchcore_version', '?')}"))
    known = {"features", "files_done", "skipped", "feature_moments", "max_components", "merged_from"}
    other = sorted(k for k in meta if k not in known)
    if other:
        rows.append(("other metadata", ", ".join(f"{k}={_clip(str(meta[k]), 40)}" for k in other)))
    return rows


def _describe_features(f: dict) -> str:
    kind = f.get("kind")
    if kind == "mfcc":
        what = f"MFCC, {f.get('n_mfcc')} coefficients" + (" with deltas" if f.get("deltas") else "")
    else:
        what = f"log-mel, {f.get('n_mels')} bands"
    rate, hop = f.get("sample_rate"), f.get("hop_length")
    step = f" ({1000 * hop / rate:.1f} ms)" if isinstance(rate, int) and isinstance(hop, int) and rate > 0 else ""
    rate_text = f"{rate} Hz" if isinstance(rate, int) else f"{rate} rate"
    text = f"{what}, {rate_text}, FFT {f.get('n_fft')}, hop {hop}{step}"
    if f.get("stack"):
        text += f", {f['stack']} neighbouring frames stacked on each side"
    return text


#: ``sketch`` options that set the features: option dest -> (FeatureConfig field, option).
_FEATURE_OPTIONS = {
    "features": ("kind", "--features"),
    "sample_rate": ("sample_rate", "--sample-rate"),
    "hop_length": ("hop_length", "--hop-length"),
    "n_mfcc": ("n_mfcc", "--n-mfcc"),
    "deltas": ("deltas", "--deltas"),
    "n_mels": ("n_mels", "--n-mels"),
    "stack": ("stack", "--stack"),
}


def _check_inherited(args: argparse.Namespace, ref: Sketch, how: str, source: str) -> None:
    """``--resume`` and ``--like`` take the features and the operator from a
    sketch file; options given explicitly must agree (the error names them)."""
    from sketchcore.audio.features import FeatureConfig

    explicit: set[str] = getattr(args, "explicit", set())
    op = ref.operator
    if not isinstance(op, SketchOperator):
        raise InvalidParameterError(f"{how} {source}: a sketch of raw features is needed, not a standardised one")
    try:
        saved = FeatureConfig.from_dict(ref.metadata["features"]).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{how} {source}: the file records no audio feature settings ({exc})") from None
    conflicts = []
    for dest, (field, option) in _FEATURE_OPTIONS.items():
        if dest in explicit and getattr(args, dest) != saved[field]:
            conflicts.append(f"{option} {getattr(args, dest)} (it has {saved[field]})")
    if "sketch_size" in explicit and args.sketch_size != op.sketch_size:
        conflicts.append(f"--sketch-size {args.sketch_size} (it has {op.sketch_size})")
    if "operator" in explicit and args.operator != op.kind:
        conflicts.append(f"--operator {args.operator} (it has {op.kind})")
    if "seed" in explicit and args.seed != op.seed:
        conflicts.append(f"--seed {args.seed} (it has {op.seed})")
    if "sigma" in explicit and (isinstance(args.sigma, str) or args.sigma != op.sigma):
        conflicts.append(f"--sigma {args.sigma} (it has {op.sigma:.6g})")
    if "max_components" in explicit and how == "--resume":
        conflicts.append("--max-components (recorded in the checkpoint)")
    if conflicts:
        raise InvalidParameterError(
            f"{how} takes the feature settings and the operator from {source}; these options differ from it: "
            + "; ".join(conflicts) + ". Drop them"
        )


def _int_at_least(minimum: int):
    """argparse type: an integer >= ``minimum``."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)


def _seconds(text: str) -> float:
    """A finite number of seconds >= 0 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def _sigma(text: str) -> float | str:
    """--sigma: a strategy name or a positive finite number (argparse type)."""
    if text in ("auto", "feature-std", "envelope"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'feature-std', 'envelope' or a positive number, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _explicit_options(argv: Sequence[str] | None) -> set[str]:
    """The option dests given on the command line (not left to their defaults)."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif action.option_strings:
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _printable(value: object) -> str:
    """Text from a file made safe for a terminal: control characters (ANSI
    escapes included) shown as escapes, never sent raw."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default in its help (options without a help text
    too), except for flags and unset (None) defaults."""

    @staticmethod
    def _has_default(action: argparse.Action) -> bool:
        default = action.default
        return (bool(action.option_strings) and default is not None and default is not False
                and default != argparse.SUPPRESS and action.help != argparse.SUPPRESS)

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and self._has_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not self._has_default(action):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose help shows defaults; sub-commands inherit it (add_subparsers uses the parser's class)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sketchcore",
        description="Compressive learning: sketch data in one pass, learn models from the sketch.",
    )
    parser.add_argument("--version", action="version", version=f"sketchcore {_core.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="the main job on a built-in synthetic audio corpus: sketch, fit k-means and a GMM, compare with "
        "scikit-learn",
        description="Synthesises a small deterministic audio corpus (notes of several timbres and pitches, noise "
        "bursts, speech-like vowel sequences, silences), sketches its log-mel frames in one pass, fits "
        "CompressiveKMeans and CompressiveGMM from the sketch, compares with scikit-learn on the same frames "
        "and writes a figure.",
    )
    demo.add_argument("--out", default="sketchcore-demo", help="folder for the corpus, sketch and figure")
    demo.add_argument("-k", "--clusters", type=_positive_int, default=8)
    demo.add_argument("--quick", action="store_true", help="a smaller corpus (for CI)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    sketch = sub.add_parser(
        "sketch",
        help="sketch the audio frames of files and folders into one .sketch file",
        description="Walks PATHS for audio files (wav, flac, ogg, mp3, aiff...), extracts frame features, and "
        "sketches them in one pass. Unreadable files are skipped with a warning and listed in OUTPUT.log. "
        "OUTPUT is rewritten atomically at every checkpoint; --resume continues an interrupted run.",
    )
    sketch.add_argument("paths", nargs="+", metavar="PATH")
    sketch.add_argument("-o", "--output", required=True,
                        help="output .sketch file (also the checkpoint); an existing file that is not a sketch "
                        "is never overwritten without --force")
    sketch.add_argument("--force", action="store_true", help="overwrite OUTPUT even if it is not a sketch file")
    sketch.add_argument("--like", metavar="SKETCH",
                        help="reuse the operator and feature settings of SKETCH (so the two sketches merge: "
                        "sites sketch their data --like one reference sketch)")
    sketch.add_argument("--features", choices=["mfcc", "logmel"], default="mfcc")
    sketch.add_argument("--n-mfcc", type=_positive_int, default=20)
    sketch.add_argument("--deltas", action="store_true", help="append MFCC deltas and delta-deltas")
    sketch.add_argument("--n-mels", type=_positive_int, default=64)
    sketch.add_argument("--stack", type=_count, default=0, help="neighbouring frames stacked on each side")
    sketch.add_argument("--sample-rate", type=_sample_rate, default=22050,
                        help="Hz the audio is resampled to, or 'native': each file at its own rate (a warning "
                        "tells when a file is upsampled)")
    sketch.add_argument("--hop-length", type=_positive_int, default=512)
    sketch.add_argument("--max-components", type=int, default=None, metavar="K",
                        help="the largest number of components you will fit from this sketch: sizes it "
                        f"(m = 5 (2d+1) K; default K = {DEFAULT_MAX_COMPONENTS}) and is recorded, so that "
                        "'fit' warns beyond it")
    sketch.add_argument("--sketch-size", type=_positive_int, default=None,
                        help="frequencies m (default: 5 (2d+1) K for --max-components K)")
    sketch.add_argument("--operator", choices=["sparse", "dense", "structured"], default="sparse",
                        help="frequency law: sparse (4 features per frequency; per-feature spreads identifiable), "
                             "dense, or structured (fast transforms for large dimensions)")
    sketch.add_argument("--sigma", type=_sigma, default="auto",
                        help="'feature-std' or 'auto' (1.2 x the features' typical standard deviation), "
                        "'envelope' (the published heuristic) or a positive number")
    sketch.add_argument("--seed", type=_count, default=0)
    sketch.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT if it exists, with its feature settings and operator")
    sketch.add_argument("--checkpoint-every", type=_seconds, default=30.0, metavar="SECONDS")
    group = sketch.add_mutually_exclusive_group()
    group.add_argument("--dask", metavar="SCHEDULER_ADDRESS", help="run on a Dask cluster (tcp://host:8786)")
    group.add_argument("--workers", type=_positive_int, help="run on a local Dask cluster of N worker processes")
    sketch.add_argument("--quiet", action="store_true",
                        help="no progress bar (drawn only when standard error is a terminal)")
    sketch.set_defaults(func=_sketch)

    fit = sub.add_parser("fit", help="learn k-means centroids or a diagonal GMM from a .sketch file")
    fit.add_argument("model", choices=["kmeans", "gmm"])
    fit.add_argument("sketch", metavar="SKETCH")
    fit.add_argument("-k", "--components", type=_positive_int, required=True)
    fit.add_argument("-o", "--output", required=True, help="model file (.json or .npz)")
    fit.add_argument("--no-standardize", action="store_true",
                     help="decode in raw feature units (default: standardised by the corpus statistics)")
    fit.add_argument("--replicates", type=_positive_int, default=None,
                     help="independent decodings (default: the estimator's, 2 for kmeans and 3 for gmm)")
    fit.add_argument("--method", choices=["auto", "clompr", "split", "batch"], default="auto",
                     help="decoder (auto: CL-OMPR up to 15 components, hierarchical splitting above)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--no-adapt", action="store_true",
                     help="decode from the sketch alone (default: adapt the decoded mixture to the frames the "
                     "sketch stores when cross-validation on them says it helps)")
    fit.set_defaults(func=_fit)

    predict = sub.add_parser(
        "predict",
        help="apply a model from 'fit' to audio files: segments, frame labels or posteriors, per-file scores",
        description="Computes the frame features MODEL was fitted on (the settings of its sketch), standardised as "
        "it was, and writes per file: segments (runs of frames with one label: start, end, label), per-frame labels "
        "(and GMM component posteriors with --posteriors), or a per-file score: the GMM mean log-likelihood per "
        "frame in raw feature units (the difference between a speaker model's and a background model's is the "
        "speaker-verification score) or the k-means mean squared distance to the nearest centroid.",
    )
    predict.add_argument("model", metavar="MODEL", help="model file written by 'sketchcore fit' (.json or .npz)")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (walked recursively)")
    predict.add_argument("-o", "--output", default="-", help="output file ('-': standard output)")
    predict.add_argument("--format", choices=["csv", "json"],
                         help="output format (default: json when OUTPUT ends with .json, else csv)")
    predict.add_argument("--per", choices=["segment", "frame", "file"], default="segment",
                         help="one row per segment, per frame, or per file (the file's score)")
    predict.add_argument("--posteriors", action="store_true",
                         help="GMM, with --per frame: the posterior probability of each component")
    predict.set_defaults(func=_predict)

    speed = sub.add_parser("speed", help="sketch generated data and compare speed and accuracy with NumPy")
    speed.add_argument("--n-samples", type=int, default=1_000_000, help="rows of generated data")
    speed.add_argument("--dim", type=int, default=10, help="features")
    speed.add_argument("--n-clusters", type=int, default=10, help="mixture components")
    speed.add_argument("--sketch-size", type=int, default=1000, help="frequencies m")
    speed.add_argument("--reference-rows", type=int, default=20_000,
                       help="rows the slow NumPy reference is timed on (scaled to all rows)")
    speed.add_argument("--seed", type=int, default=0)
    speed.set_defaults(func=_speed)

    merge = sub.add_parser("merge", help="merge sketch files of disjoint data (same operator)")
    merge.add_argument("inputs", nargs="+", metavar="SKETCH", help="input .sketch files")
    merge.add_argument("-o", "--output", required=True, help="output .sketch file (written atomically)")
    merge.add_argument("--force", action="store_true", help="overwrite OUTPUT even if it is not a sketch file")
    merge.set_defaults(func=_merge)

    info = sub.add_parser("info", help="describe sketch files",
                          description="A summary of each sketch file: frames, operator, feature settings, files, "
                          "privacy, creation. --json prints the full header instead.")
    info.add_argument("files", nargs="+", metavar="SKETCH")
    info.add_argument("--json", action="store_true",
                      help="print the full header as JSON (one object; keyed by file when several)")
    info.set_defaults(func=_info)

    simd = sub.add_parser("simd", help="show the SIMD level and threads the kernels use")
    simd.set_defaults(func=_simd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sketchcore`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sketch":
        args.explicit = _explicit_options(argv)
    # The library reports through logging: its warnings (e.g. skipped files) go to stderr.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except (SketchcoreError, OSError) as exc:
        print(f"sketchcore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sketchcore: interrupted", file=sys.stderr)
        if args.command == "sketch":
            print(f"{args.output} holds the last checkpoint (written every {args.checkpoint_every:g} s): run the "
                  "same command with --resume to continue from it", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (e.g. "| head"): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
