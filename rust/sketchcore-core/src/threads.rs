//! Worker thread pools, one per requested thread count, built on first use
//! and kept in a small least-recently-used cache.
//!
//! At most [`MAX_CACHED_POOLS`] pools are kept; asking for another thread
//! count drops the least recently used one (its threads exit once no call
//! uses it any more), so alternating thread counts never accumulate
//! threads. Thread counts are bounded by [`MAX_THREADS`].

use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::SketchError;

/// Largest thread count a call may ask for.
pub const MAX_THREADS: usize = 1024;
/// Pools kept alive between calls.
pub const MAX_CACHED_POOLS: usize = 4;

/// Pools by thread count, most recently used last.
type PoolCache = Mutex<Vec<(usize, Arc<ThreadPool>)>>;

/// Cached pools, most recently used last.
fn pools() -> &'static PoolCache {
    static POOLS: OnceLock<PoolCache> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Checks a requested thread count (0: all logical CPUs).
pub fn check_threads(n_threads: usize) -> Result<(), SketchError> {
    if n_threads > MAX_THREADS {
        return Err(SketchError::InvalidArgument(format!(
            "n_threads must be at most {MAX_THREADS}, got {n_threads}"
        )));
    }
    Ok(())
}

/// The pool of `n_threads` workers, from the cache or built (and cached).
fn pool(n_threads: usize) -> Result<Arc<ThreadPool>, SketchError> {
    let mut cache = pools().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = cache.iter().position(|(n, _)| *n == n_threads) {
        let entry = cache.remove(i);
        let p = Arc::clone(&entry.1);
        cache.push(entry);
        return Ok(p);
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(n_threads)
        .thread_name(|i| format!("sketchcore-{i}"))
        .build()
        .map_err(|e| SketchError::ThreadPool(e.to_string()))?;
    let p = Arc::new(p);
    while cache.len() >= MAX_CACHED_POOLS {
        cache.remove(0); // dropped here, or by the last call still using it
    }
    cache.push((n_threads, Arc::clone(&p)));
    Ok(p)
}

/// Runs `f` on a pool of `n_threads` workers (0: rayon's global pool, one
/// worker per logical CPU unless `RAYON_NUM_THREADS` says otherwise).
pub fn with_pool<R: Send>(n_threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, SketchError> {
    check_threads(n_threads)?;
    if n_threads == 0 {
        return Ok(f());
    }
    Ok(pool(n_threads)?.install(f))
}

/// Thread counts of the cached pools, least recently used first.
pub fn cached_pools() -> Vec<usize> {
    pools().lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, _)| *n).collect()
}

/// Number of threads a call with `n_threads` uses.
pub fn effective_threads(n_threads: usize) -> usize {
    if n_threads == 0 {
        rayon::current_num_threads()
    } else {
        n_threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_lru() {
        for n in 1..=10 {
            assert_eq!(with_pool(n, rayon::current_num_threads).unwrap(), n);
        }
        let cached = cached_pools();
        assert!(cached.len() <= MAX_CACHED_POOLS);
        assert_eq!(*cached.last().unwrap(), 10);
        with_pool(cached[0], || ()).unwrap(); // reuse moves it to the back
        assert_eq!(*cached_pools().last().unwrap(), cached[0]);
        assert!(cached_pools().len() <= MAX_CACHED_POOLS);
    }

    #[test]
    fn too_many_threads_is_an_error() {
        assert!(matches!(with_pool(MAX_THREADS + 1, || ()), Err(SketchError::InvalidArgument(_))));
        assert!(with_pool(usize::MAX, || ()).is_err());
    }
}
