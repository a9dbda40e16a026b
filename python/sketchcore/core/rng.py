"""Platform-independent random numbers for generating operators.

The same seed must give bit-identical frequencies on every machine, operating
system and backend. NumPy's ``Generator`` distributions make no such promise
(its normal sampler calls the platform's ``exp``/``log`` on rare paths, and
NumPy reserves the right to change streams between versions). So the
frequencies are derived from the raw 64-bit output of ``PCG64`` seeded by
``SeedSequence`` -- both stable by NumPy's policy -- using only IEEE-754 basic
operations (``+ - * /`` and ``sqrt``, all correctly rounded) and ``frexp``
(exact). Transcendental functions are replaced by fixed polynomial series
evaluated with those operations.
"""

from __future__ import annotations

import numpy as np

_LN2 = 0.6931471805599453  # float64 nearest to log(2)
_TWO_53 = 2.0**-53


def _log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive finite ``x`` with basic operations only.

    ``x = mant * 2**e`` with ``mant`` in [sqrt(1/2), sqrt(2)); then
    ``log(mant) = 2 atanh(f)`` with ``f = (mant - 1) / (mant + 1)``,
    ``|f| <= 0.172``, summed to 14 terms (relative error ~1e-16).
    """
    mant, exp = np.frexp(x)  # mant in [0.5, 1)
    small = mant < 0.7071067811865476
    mant = np.where(small, mant * 2.0, mant)
    exp = np.where(small, exp - 1, exp).astype(np.float64)
    f = (mant - 1.0) / (mant + 1.0)
    f2 = f * f
    acc = np.full_like(f, 1.0 / 27.0)
    for k in range(12, -1, -1):
        acc = acc * f2 + 1.0 / (2 * k + 1)
    return exp * _LN2 + 2.0 * f * acc


class StableRandom:
    """Seeded stream of uniforms and normals, identical on every platform.

    Parameters
    ----------
    seed : int
        Any non-negative integer (passed to ``numpy.random.SeedSequence``).
    """

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence(seed))

    def uniform(self, n: int) -> np.ndarray:
        """``n`` uniforms in [0, 1) with 53 random bits each."""
        raw = self._bits.random_raw(n) if n else np.zeros(0, np.uint64)
        return (np.asarray(raw, np.uint64) >> np.uint64(11)).astype(np.float64) * _TWO_53

    def normal(self, n: int) -> np.ndarray:
        """``n`` standard normals (Marsaglia's polar method)."""
        out = np.empty(n, np.float64)
        filled = 0
        while filled < n:
            need = n - filled
            pairs = (need + 1) // 2
            batch = int(pairs * 1.3) + 16  # acceptance rate pi/4
            u = self.uniform(2 * batch) * 2.0 - 1.0
            a, b = u[0::2], u[1::2]
            s = a * a + b * b
            ok = (s > 0.0) & (s < 1.0)
            a, b, s = a[ok], b[ok], s[ok]
            scale = np.sqrt(-2.0 * _log(s) / s)
            z = np.empty(2 * a.size)
            z[0::2] = a * scale
            z[1::2] = b * scale
            take = min(need, z.size)
            out[filled : filled + take] = z[:take]
            filled += take
        return out
