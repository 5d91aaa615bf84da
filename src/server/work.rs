//! CPU-heavy work (password hashing, token counting, Markdown) runs off the async workers, on the
//! blocking pool, but only as many at once as there are cores: 1,000 log-ins at once must not
//! start 1,000 argon2 hashes of 19 MiB each. Password hashing also bounds its queue: past it a
//! request is refused at once (503 `busy`) instead of waiting with its memory held.

use crate::api::error::{AppError, ErrorCode};
use crate::server::error::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// A limit on CPU-heavy work: `running` at once, `queued` more waiting (`None`: no bound on
/// the queue, for work whose callers already hold bounded input).
pub struct Pool {
    name: &'static str,
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: Option<usize>,
}

impl Pool {
    pub fn new(name: &'static str, running: usize, max_waiting: Option<usize>) -> Self {
        Self {
            name,
            permits: Semaphore::new(running.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Takes a place in the queue, or answers 503 when it is full. A caller with other work
    /// to do first (a log-in reads the database before checking the password) takes its place
    /// before that work, so that a burst past the bound is refused before it costs anything.
    pub fn place(&self) -> Result<Place<'_>> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = Place(self);
        if self.max_waiting.is_some_and(|max| waiting >= max) {
            tracing::debug!(pool = self.name, waiting, "refused: too much work queued");
            return Err(busy());
        }
        Ok(place)
    }

    /// [`Pool::run`] for work whose input is `bytes` long: at most [`INLINE_BYTES`] it runs
    /// here, on the async worker. Counting a short prompt's tokens takes a few microseconds;
    /// handing it to another thread and back costs more than that in thread switches.
    pub async fn run_sized<T: Send + 'static>(
        &self,
        bytes: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        if bytes <= INLINE_BYTES {
            return Ok(work());
        }
        self.run(work).await
    }

    /// Runs `work` on the blocking pool once a permit is free; a full queue is a 503.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.place()?.run(work).await
    }
}

/// The most input [`Pool::run_sized`] works on in place: 8 KiB of text, about 2,000 tokens,
/// counted here in well under a millisecond.
pub const INLINE_BYTES: usize = 8 << 10;

/// A place in a [`Pool`]'s queue, given up when its work starts (or when it is dropped).
pub struct Place<'a>(&'a Pool);

impl Place<'_> {
    /// Runs `work` on the blocking pool once a permit is free.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let pool = self.0;
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| Error::internal("work pool closed"))?;
        drop(self);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::internal(format!("{} task: {e}", pool.name)))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

fn busy() -> Error {
    AppError::new(
        ErrorCode::Busy,
        "the server is busy; try again in a few seconds",
    )
    .into()
}

/// Makes glibc return big allocations to the system when they are freed. Each password check
/// allocates 19 MiB (argon2); glibc serves an allocation that big with its own mapping, but
/// after the first is freed it raises that threshold to the size freed, so later ones come
/// from per-thread arenas that keep the memory: 1,000 log-ins at once took the server from 74
/// to 657 MB for 40 password checks. A fixed 1 MiB threshold keeps every such buffer a mapping
/// of its own, returned when freed. Called once at start, before the runtime's threads.
pub fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; M_MMAP_THRESHOLD takes a byte
    // count (fixing it also turns off the dynamic adjustment).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Password hashing and checking: one core left free for everything else (one at a time on
/// two cores: with both hashing, a burst of log-ins made `/healthz` wait 20 ms at p99), 16 per
/// core waiting at most.
pub fn hashing() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::new(
            "hashing",
            cores().saturating_sub(1).max(1),
            Some(16 * cores()),
        )
    })
}

/// Work on chat text: counting the tokens of prompts and replies, rendering stored replies'
/// Markdown. One per core; the inputs are bounded by the chat request's caps and what is
/// stored, so the queue is not.
pub fn text() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new("text", cores(), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_a_bounded_number_and_refuses_past_the_queue() {
        let pool = Arc::new(Pool::new("test", 2, Some(3)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => done += 1,
                Err(Error::App(e)) if e.code == ErrorCode::Busy => busy += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert!(most.load(Ordering::SeqCst) <= 2, "at most 2 at once");
        assert!(busy > 0, "some were refused");
        assert!(done >= 2, "some ran: {done}");
        assert_eq!(done + busy, 20);
        // Once the queue drains, work is taken again.
        pool.run(|| ()).await.unwrap();
    }

    #[tokio::test]
    async fn short_work_runs_in_place_and_long_work_on_the_pool() {
        let pool = Pool::new("test", 1, None);
        let here = std::thread::current().id();
        let short = pool
            .run_sized(INLINE_BYTES, || std::thread::current().id())
            .await
            .unwrap();
        assert_eq!(short, here);
        let long = pool
            .run_sized(INLINE_BYTES + 1, || std::thread::current().id())
            .await
            .unwrap();
        assert_ne!(long, here);
    }

    #[tokio::test]
    async fn a_place_taken_early_counts_until_its_work_starts() {
        let pool = Pool::new("test", 1, Some(2));
        let first = pool.place().unwrap();
        let second = pool.place().unwrap();
        // Both places are held (their callers still reading the database): a third is refused
        // before it does anything.
        assert!(pool.place().is_err());
        drop(second);
        let third = pool.place().unwrap();
        assert_eq!(first.run(|| 1).await.unwrap(), 1);
        // The first's work started, so its place is free again.
        let fourth = pool.place().unwrap();
        assert!(pool.place().is_err());
        drop((third, fourth));
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
    }
}
