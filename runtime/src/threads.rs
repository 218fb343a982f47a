//! A persistent worker pool for splitting one op's work across threads.
//!
//! [`Pool::new`] starts `threads - 1` workers once, when a session is
//! created; the calling thread is the last worker. A session makes its pool
//! *current* for the duration of a run ([`scoped`]); kernels call
//! [`for_each_chunk`] to split their output (pixels, rows) into chunks, which
//! runs inline when no pool is current (1 thread: no synchronisation at all).
//!
//! Dispatching a job allocates nothing: the job is a reference to the
//! caller's closure, published through an atomic pointer, and the caller
//! waits until every worker has finished with it before returning.
//!
//! Workers spin briefly between jobs (ops of one inference follow each other
//! within microseconds), then yield, then park on a condition variable.
//!
//! Each thread owns a contiguous share of a job's tasks (the caller the
//! first), so consecutive ops that split their rows alike find their input
//! rows in the cache of the core that wrote them: on the 2-core dev VM this
//! took MobileNetV2 int8 from 1.25x to 1.5x with 2 threads over claiming
//! tasks first-come from one counter. Tasks are still claimed one at a time,
//! and a thread that finishes its share takes what is left of the others',
//! so a worker the OS has not scheduled (a busy machine) delays nothing.
//!
//! Without `std` there are no threads: [`for_each_chunk`] always runs inline.

use core::ops::Range;

/// Splits `0..n` into `parts` near-equal contiguous ranges, each a multiple
/// of `align` long (except the last), and returns part `i`.
pub fn chunk(n: usize, parts: usize, align: usize, i: usize) -> Range<usize> {
    let align = align.max(1);
    let blocks = n.div_ceil(align);
    let parts = parts.max(1);
    let lo = (blocks * i / parts * align).min(n);
    let hi = (blocks * (i + 1) / parts * align).min(n);
    lo..hi
}

#[cfg(feature = "std")]
mod imp {
    use super::chunk;
    use core::cell::Cell;
    use core::ops::Range;
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;

    /// A job: the caller's closure, run once per task index.
    struct Job<'a> {
        f: &'a (dyn Fn(usize) + Sync),
    }

    /// A share packs the job's epoch (high 32 bits), the end of the share's
    /// tasks (16 bits) and its next unclaimed task (low 16 bits). A task is
    /// claimed by a compare-exchange that also checks the epoch, so a worker
    /// that wakes late (after the job is over) can never claim, and never
    /// touches the job: the caller waits only for tasks that were claimed.
    fn pack(epoch: u32, end: usize, next: usize) -> u64 {
        ((epoch as u64) << 32) | ((end as u64) << 16) | next as u64
    }
    fn epoch_of(s: u64) -> u32 {
        (s >> 32) as u32
    }

    struct Shared {
        /// The current job's epoch; workers watch it for new work.
        epoch: AtomicU32,
        /// Per thread (0 is the caller): its share of the current job.
        shares: Vec<AtomicU64>,
        /// The current job (points into the dispatching caller's stack).
        job: AtomicPtr<Job<'static>>,
        /// Tasks of the current job that have finished.
        done: AtomicUsize,
        shutdown: AtomicBool,
        /// Workers parked on `wake`.
        sleepers: AtomicUsize,
        /// Workers that have started running.
        started: AtomicUsize,
        lock: Mutex<()>,
        wake: Condvar,
    }

    /// Spin iterations before a waiting thread starts yielding its core,
    /// and yields before a worker parks.
    const SPIN: usize = 4_000;
    const YIELDS: usize = 2_000;

    /// Most tasks per job (the task fields of `state` are 16 bits).
    const MAX_TASKS: usize = 1 << 15;

    /// A fixed set of worker threads. Dropping it stops and joins them.
    pub struct Pool {
        shared: Arc<Shared>,
        workers: Vec<JoinHandle<()>>,
        epoch: core::sync::atomic::AtomicU32,
    }

    impl core::fmt::Debug for Pool {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Pool")
                .field("threads", &self.threads())
                .finish()
        }
    }

    /// Claims and runs tasks of job `epoch`: first thread `me`'s own share,
    /// then whatever is left of the others', until none is left.
    fn run_tasks(shared: &Shared, epoch: u32, job: *const Job<'static>, me: usize) {
        let n = shared.shares.len();
        for k in 0..n {
            let share = &shared.shares[(me + k) % n];
            let mut s = share.load(Ordering::Acquire);
            loop {
                let (end, next) = (((s >> 16) & 0xFFFF) as usize, (s & 0xFFFF) as usize);
                if epoch_of(s) != epoch || next >= end {
                    break;
                }
                match share.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        // SAFETY: claiming task `next` of `epoch` succeeded, so
                        // the job is still current: its caller waits for `done`.
                        unsafe { ((*job).f)(next) };
                        shared.done.fetch_add(1, Ordering::Release);
                        s = share.load(Ordering::Acquire);
                    }
                    Err(now) => s = now,
                }
            }
        }
    }

    fn worker(shared: Arc<Shared>, me: usize) {
        // Workers run nothing but kernels: subnormals flushed (see `fpu`).
        crate::fpu::flush_denormals_on_this_thread();
        // The thread's start-up (std's per-thread set-up, which allocates)
        // is over: `Pool::new` may return.
        shared.started.fetch_add(1, Ordering::Release);
        let mut seen = 0u32;
        loop {
            let mut waited = 0usize;
            let epoch = loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                let e = shared.epoch.load(Ordering::Acquire);
                if e != seen {
                    break e;
                }
                waited += 1;
                if waited < SPIN {
                    core::hint::spin_loop();
                } else if waited < SPIN + YIELDS {
                    std::thread::yield_now();
                } else {
                    let guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                    shared.sleepers.fetch_add(1, Ordering::SeqCst);
                    let idle = shared.epoch.load(Ordering::SeqCst) == seen
                        && !shared.shutdown.load(Ordering::SeqCst);
                    let guard = if idle {
                        shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner())
                    } else {
                        guard
                    };
                    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                    waited = 0;
                }
            };
            seen = epoch;
            let job = shared.job.load(Ordering::Acquire);
            run_tasks(&shared, epoch, job, me);
        }
    }

    impl Pool {
        /// Starts `threads - 1` workers (none for `threads <= 1`) and returns
        /// once they all run.
        ///
        /// Errors: the OS refused to start a thread.
        pub fn new(threads: usize) -> std::io::Result<Self> {
            let shared = Arc::new(Shared {
                epoch: AtomicU32::new(0),
                shares: (0..threads.max(1)).map(|_| AtomicU64::new(0)).collect(),
                job: AtomicPtr::new(core::ptr::null_mut()),
                done: AtomicUsize::new(0),
                shutdown: AtomicBool::new(false),
                sleepers: AtomicUsize::new(0),
                started: AtomicUsize::new(0),
                lock: Mutex::new(()),
                wake: Condvar::new(),
            });
            let mut pool = Pool {
                shared,
                workers: Vec::new(),
                epoch: core::sync::atomic::AtomicU32::new(0),
            };
            for i in 1..threads.max(1) {
                let s = pool.shared.clone();
                let h = std::thread::Builder::new()
                    .name(format!("ferrite-worker-{i}"))
                    .spawn(move || worker(s, i))?;
                pool.workers.push(h);
            }
            // Wait until every worker runs, so that a thread starting late
            // (a busy machine) cannot allocate during the first inferences:
            // `invoke` allocates nothing on any thread.
            while pool.shared.started.load(Ordering::Acquire) < pool.workers.len() {
                std::thread::yield_now();
            }
            Ok(pool)
        }

        /// Threads that share a job: the workers plus the caller.
        pub fn threads(&self) -> usize {
            self.workers.len() + 1
        }

        /// Runs `f(i)` for every `i < tasks` on the workers and the calling
        /// thread; returns when all have finished. Allocates nothing. Tasks
        /// no worker has claimed yet are run by the caller, so a worker the
        /// OS has not scheduled never delays the job.
        pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            if self.workers.is_empty() || tasks <= 1 || tasks > MAX_TASKS {
                for i in 0..tasks {
                    f(i);
                }
                return;
            }
            let s = &*self.shared;
            let job = Job { f };
            // `run` takes `&self` but one pool serves one session at a time
            // (`Session::invoke` takes `&mut self`); the epoch counter keeps
            // concurrent callers from sharing an epoch all the same.
            let epoch = self.epoch.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            let ptr = &job as *const Job<'_> as *mut Job<'static>;
            s.job.store(ptr, Ordering::Release);
            s.done.store(0, Ordering::Release);
            let n = s.shares.len();
            for (i, share) in s.shares.iter().enumerate() {
                let r = chunk(tasks, n, 1, i);
                share.store(pack(epoch, r.end, r.start), Ordering::Release);
            }
            s.epoch.store(epoch, Ordering::SeqCst);
            if s.sleepers.load(Ordering::SeqCst) > 0 {
                let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
                s.wake.notify_all();
            }
            run_tasks(s, epoch, ptr, 0);
            let mut waited = 0usize;
            while s.done.load(Ordering::Acquire) < tasks {
                waited += 1;
                if waited < SPIN {
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    impl Drop for Pool {
        fn drop(&mut self) {
            self.shared.shutdown.store(true, Ordering::SeqCst);
            {
                let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                self.shared.wake.notify_all();
            }
            for h in self.workers.drain(..) {
                let _ = h.join();
            }
        }
    }

    std::thread_local! {
        static CURRENT: Cell<*const Pool> = const { Cell::new(core::ptr::null()) };
    }

    /// Runs `f` with `pool` as the current pool of this thread (restoring
    /// the previous one afterwards, also on unwind).
    pub fn scoped<R>(pool: Option<&Pool>, f: impl FnOnce() -> R) -> R {
        struct Restore(*const Pool);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let new = pool.map_or(core::ptr::null(), |p| p as *const Pool);
        let _restore = Restore(CURRENT.with(|c| c.replace(new)));
        f()
    }

    /// Threads available to a kernel on this thread right now.
    pub fn current_threads() -> usize {
        CURRENT.with(|c| {
            let p = c.get();
            // SAFETY: `scoped` keeps the pool alive while it is current.
            if p.is_null() {
                1
            } else {
                unsafe { &*p }.threads()
            }
        })
    }

    /// Calls `f` on contiguous chunks that cover `0..n` (each a multiple of
    /// `align` long except the last), in parallel on the current pool, or
    /// once with `0..n` when there is none. Every index is covered exactly
    /// once, so kernels that write disjoint outputs per index give the same
    /// bytes for any thread count.
    pub fn for_each_chunk(n: usize, align: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
        let p = CURRENT.with(|c| c.get());
        if p.is_null() || n <= align {
            f(0..n);
            return;
        }
        // SAFETY: `scoped` keeps the pool alive while it is current.
        let pool = unsafe { &*p };
        // A few tasks per thread, so whoever is running takes the next one.
        let parts = (pool.threads() * 4).min(n.div_ceil(align.max(1)));
        if parts <= 1 {
            f(0..n);
            return;
        }
        pool.run(parts, &|i| {
            let r = chunk(n, parts, align, i);
            if !r.is_empty() {
                f(r)
            }
        });
    }
}

#[cfg(feature = "std")]
pub use imp::{current_threads, for_each_chunk, scoped, Pool};

/// Without `std`: runs `f(0..n)` on the calling thread.
#[cfg(not(feature = "std"))]
pub fn for_each_chunk(n: usize, _align: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    f(0..n)
}

/// Without `std` there is one thread.
#[cfg(not(feature = "std"))]
pub fn current_threads() -> usize {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_exactly_once() {
        for n in [0, 1, 5, 17, 100] {
            for parts in 1..5 {
                for align in [1, 4, 16] {
                    let mut seen = alloc::vec![0u8; n];
                    for i in 0..parts {
                        for j in chunk(n, parts, align, i) {
                            seen[j] += 1;
                        }
                    }
                    assert!(
                        seen.iter().all(|&c| c == 1),
                        "n {n} parts {parts} align {align}"
                    );
                }
            }
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn pool_runs_every_task_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = Pool::new(3).unwrap();
        assert_eq!(pool.threads(), 3);
        for round in 0..200 {
            let hits: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            scoped(Some(&pool), || {
                for_each_chunk(37, 2, &|r| {
                    for i in r {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "round {round}"
            );
        }
        assert_eq!(current_threads(), 1);
    }
}
