//! Worker thread pools, one per requested thread count, built once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::SketchError;

fn pools() -> &'static Mutex<HashMap<usize, Arc<ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `f` on a pool of `n_threads` workers (0: rayon's global pool, one
/// worker per logical CPU unless `RAYON_NUM_THREADS` says otherwise).
pub fn with_pool<R: Send>(n_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, SketchError> {
    if n_threads == 0 {
        return Ok(f());
    }
    let pool = {
        let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&n_threads) {
            Some(p) => Arc::clone(p),
            None => {
                let p = ThreadPoolBuilder::new()
                    .num_threads(n_threads)
                    .thread_name(|i| format!("sketchcore-{i}"))
                    .build()
                    .map_err(|e| SketchError::ThreadPool(e.to_string()))?;
                let p = Arc::new(p);
                map.insert(n_threads, Arc::clone(&p));
                p
            }
        }
    };
    Ok(pool.install(f))
}

/// Number of threads a call with `n_threads` uses.
pub fn effective_threads(n_threads: usize) -> usize {
    if n_threads == 0 {
        rayon::current_num_threads()
    } else {
        n_threads
    }
}
