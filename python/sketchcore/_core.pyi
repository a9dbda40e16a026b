"""Type stubs of the compiled extension ``sketchcore._core``."""

import numpy as np
import numpy.typing as npt

__version__: str

_Sums = tuple[
    npt.NDArray[np.float64],  # cos sums (m,)
    npt.NDArray[np.float64],  # sin sums (m,)
    float,  # total weight
    int,  # sample count
    npt.NDArray[np.float64],  # per-feature minimum (d,)
    npt.NDArray[np.float64],  # per-feature maximum (d,)
]

def sketch_dense(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    omega: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    weights: npt.NDArray[np.float64] | None = None,
    *,
    quantize: bool = False,
    simd: str | None = None,
    n_threads: int = 0,
) -> _Sums: ...
def sketch_structured(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    signs: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    scales: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    weights: npt.NDArray[np.float64] | None = None,
    *,
    quantize: bool = False,
    simd: str | None = None,
    n_threads: int = 0,
) -> _Sums: ...
def sketch_sparse(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    index: npt.NDArray[np.uint32],
    value: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    weights: npt.NDArray[np.float64] | None = None,
    *,
    quantize: bool = False,
    simd: str | None = None,
    n_threads: int = 0,
) -> _Sums: ...
def sketch_dense_reference_f64(
    x: npt.NDArray[np.float64],
    omega: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64] | None = None,
    weights: npt.NDArray[np.float64] | None = None,
    *,
    quantize: bool = False,
) -> _Sums: ...
def sin_cos(
    t: npt.NDArray[np.float32] | npt.NDArray[np.float64], *, simd: str | None = None
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]: ...
# Dense d x m frequencies, or a structured operator's (signs, scales, first_column[, row_scales]).
_Frequencies = (
    npt.NDArray[np.float32]
    | npt.NDArray[np.float64]
    | tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]
    | tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int, npt.NDArray[np.float64] | None]
)

def atoms(
    frequencies: _Frequencies,
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    *,
    omega_sq: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    variances: npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def atom_objective(
    frequencies: _Frequencies,
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    z_re: npt.NDArray[np.float64],
    z_im: npt.NDArray[np.float64],
    *,
    omega_sq: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    variances: npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64] | None, npt.NDArray[np.float64]]: ...
def atom_correlation(
    frequencies: _Frequencies,
    dither: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    r_re: npt.NDArray[np.float64],
    r_im: npt.NDArray[np.float64],
    *,
    gradients: bool = False,
    variances: npt.NDArray[np.float64] | None = None,
    omega_sq: npt.NDArray[np.float32] | npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
]: ...
def sparse_atoms(
    index: npt.NDArray[np.uint32],
    value: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    *,
    variances: npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def sparse_atom_objective(
    index: npt.NDArray[np.uint32],
    value: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    z_re: npt.NDArray[np.float64],
    z_im: npt.NDArray[np.float64],
    *,
    variances: npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64] | None, npt.NDArray[np.float64]]: ...
def sparse_atom_correlation(
    index: npt.NDArray[np.uint32],
    value: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64],
    means: npt.NDArray[np.float64],
    r_re: npt.NDArray[np.float64],
    r_im: npt.NDArray[np.float64],
    *,
    gradients: bool = False,
    variances: npt.NDArray[np.float64] | None = None,
    gain: float = 1.0,
    simd: str | None = None,
    n_threads: int = 0,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
    npt.NDArray[np.float64] | None,
]: ...
def simd_level() -> str: ...
def available_simd_levels() -> list[str]: ...
def default_num_threads() -> int: ...
def _panic_for_testing() -> None: ...
