"""Distributed sketching of .npy feature files on a Dask cluster.

    python examples/dask_cluster.py [SCHEDULER_ADDRESS]     # default: a LocalCluster

On SLURM, replace the LocalCluster by dask_jobqueue.SLURMCluster(...) (README).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

import sketchcore
from sketchcore.backends.dask import sketch_files

client = Client(sys.argv[1]) if len(sys.argv) > 1 else Client(LocalCluster(n_workers=2, threads_per_worker=1))
folder = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
paths = []
for i in range(8):  # stand-ins for per-recording feature files
    path = folder / f"part{i}.npy"
    np.save(path, rng.normal(size=(50_000, 20)) + rng.normal(scale=3, size=20))
    paths.append(path)

op = sketchcore.SketchOperator(20, 2000, sigma=2.0, seed=0)
sketch = sketch_files(paths, op, client=client)     # each file is read and sketched on a worker
print(sketch)
print(sketchcore.CompressiveGMM(8, random_state=0).fit_sketch(sketch).weights_.round(3))
client.close()
