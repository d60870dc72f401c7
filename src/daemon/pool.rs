//! The queue between the dispatcher and the workers, and the elastic pool
//! of worker threads that drains it.
//!
//! The queue is unbounded: a connection that completed its pre-auth
//! handshake is never dropped because a queue is full (each one costs a
//! socket and its AP-REQ; the dispatcher's pre-auth limits bound how many
//! can exist). `QueueSize` is the length above which the daemon says so in
//! its log. `Workers` threads always run. A worker waiting for its client
//! (the next request, a slow reader) says so ([`Pool::block_begin`]); when
//! connections are queued and fewer than `Workers` threads are free to
//! work, one more thread is started, up to [`MAX_THREADS`]; an extra thread
//! exits after [`IDLE_EXIT`] without work. So sessions that keep their
//! worker waiting (idle or slow authenticated clients) cannot starve the
//! others, while a CPU-bound burst is served by `Workers` threads from the
//! queue instead of hundreds of threads competing for the cores.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most worker threads at once (when `Workers` is smaller).
pub const MAX_THREADS: usize = 256;
/// Time an extra worker waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

struct Inner<T> {
    queue: VecDeque<T>,
    threads: usize,
    idle: usize,
    /// Threads waiting for their client.
    blocked: usize,
    min: usize,
    max: usize,
    closed: bool,
    peak: usize,
}

/// The queue plus the thread accounting.
pub struct Pool<T> {
    inner: Mutex<Inner<T>>,
    work: Condvar,
    gone: Condvar,
}

/// What [`Pool::push`] asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Queue length after the push.
    pub len: usize,
    /// Start one more worker thread (already counted: call
    /// [`Pool::spawn_failed`] if it cannot be started).
    pub spawn: bool,
}

impl<T> Pool<T> {
    /// A pool that wants `min` permanent workers (started by the caller
    /// through [`Pool::reserve_min`]).
    pub fn new(min: usize) -> Self {
        let min = min.max(1);
        Pool {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                blocked: 0,
                min,
                max: MAX_THREADS.max(min),
                closed: false,
                peak: 0,
            }),
            work: Condvar::new(),
            gone: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Change the number of permanent workers (reload); returns how many
    /// threads the caller must start now (already counted).
    pub fn set_min(&self, min: usize) -> usize {
        let mut g = self.lock();
        g.min = min.max(1);
        g.max = MAX_THREADS.max(g.min);
        let missing = g.min.saturating_sub(g.threads);
        g.threads += missing;
        // Extra threads above the new minimum exit when idle.
        self.work.notify_all();
        missing
    }

    /// Threads to start at the beginning (already counted).
    pub fn reserve_min(&self) -> usize {
        let g = self.lock();
        let min = g.min;
        drop(g);
        self.set_min(min)
    }

    /// A thread counted by [`Pool::push`] or [`Pool::set_min`] could not be
    /// started.
    pub fn spawn_failed(&self) {
        let mut g = self.lock();
        g.threads = g.threads.saturating_sub(1);
        self.gone.notify_all();
    }

    /// Queue one item.
    pub fn push(&self, item: T) -> Pushed {
        let mut g = self.lock();
        g.queue.push_back(item);
        let len = g.queue.len();
        g.peak = g.peak.max(len);
        let spawn = Self::wants_thread(&mut g);
        self.work.notify_one();
        Pushed { len, spawn }
    }

    /// Whether queued work waits for a thread that is not coming: no idle
    /// worker, fewer than `min` threads not blocked on a client. Counts the
    /// thread to start.
    fn wants_thread(g: &mut Inner<T>) -> bool {
        let free = g.threads.saturating_sub(g.blocked);
        let spawn = !g.closed && g.idle < g.queue.len() && free < g.min && g.threads < g.max;
        if spawn {
            g.threads += 1;
        }
        spawn
    }

    /// The calling worker starts waiting for its client. Returns true when
    /// the caller must start one more thread (already counted) because
    /// queued work would otherwise wait.
    pub fn block_begin(&self) -> bool {
        let mut g = self.lock();
        g.blocked += 1;
        Self::wants_thread(&mut g)
    }

    /// The calling worker's wait for its client is over.
    pub fn block_end(&self) {
        let mut g = self.lock();
        g.blocked = g.blocked.saturating_sub(1);
    }

    /// Worker side: the next item, waiting for one; None means "exit now"
    /// (pool closed and drained, or an extra thread idle for too long).
    pub fn next(&self) -> Option<T> {
        let mut g = self.lock();
        let mut idle_since = Instant::now();
        loop {
            if let Some(item) = g.queue.pop_front() {
                return Some(item);
            }
            let surplus = g.threads > g.min;
            if g.closed || (surplus && idle_since.elapsed() >= IDLE_EXIT) {
                g.threads -= 1;
                self.gone.notify_all();
                return None;
            }
            g.idle += 1;
            let (ng, _) = self
                .work
                .wait_timeout(g, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            g = ng;
            g.idle -= 1;
            if !surplus {
                idle_since = Instant::now();
            }
        }
    }

    /// Refuse new work; workers drain the queue and exit.
    pub fn close(&self) {
        self.lock().closed = true;
        self.work.notify_all();
    }

    /// Wait (at most `max`) until every worker thread has exited.
    pub fn wait_gone(&self, max: Duration) -> bool {
        let until = Instant::now() + max;
        let mut g = self.lock();
        while g.threads > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .gone
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// (queued, threads, idle, peak queue length) for statistics; see also
    /// [`Pool::blocked`].
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let g = self.lock();
        (g.queue.len(), g.threads, g.idle, g.peak)
    }

    /// Threads waiting for their client.
    pub fn blocked(&self) -> usize {
        self.lock().blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run_workers(p: &Arc<Pool<u32>>, n: usize, out: &Arc<Mutex<Vec<u32>>>) {
        for _ in 0..n {
            let (p, out) = (Arc::clone(p), Arc::clone(out));
            std::thread::spawn(move || {
                while let Some(x) = p.next() {
                    out.lock().unwrap().push(x);
                }
            });
        }
    }

    #[test]
    fn nothing_is_dropped_and_busy_workers_are_not_multiplied() {
        let p = Arc::new(Pool::new(2));
        assert_eq!(p.reserve_min(), 2);
        // Two threads, not blocked on clients: the queue just grows.
        let mut spawns = 0;
        for i in 0..1000 {
            let r = p.push(i);
            assert_eq!(r.len, i as usize + 1);
            spawns += usize::from(r.spawn);
        }
        assert_eq!(spawns, 0);
        let out = Arc::new(Mutex::new(Vec::new()));
        run_workers(&p, 2, &out);
        p.close();
        assert!(p.wait_gone(Duration::from_secs(10)));
        let mut got = out.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn workers_blocked_on_clients_are_replaced() {
        let p: Pool<u32> = Pool::new(2);
        assert_eq!(p.reserve_min(), 2);
        assert!(!p.block_begin(), "nothing queued");
        assert!(p.push(1).spawn, "one of two blocked, work queued: one more");
        assert!(p.block_begin(), "two of three blocked: one more");
        assert_eq!(p.stats().1, 4);
        assert!(!p.push(2).spawn, "two threads free");
        p.block_end();
        p.block_end();
        assert_eq!(p.blocked(), 0);
        // Up to the maximum only.
        for _ in 0..2 * MAX_THREADS {
            if p.block_begin() {
                p.push(0);
            }
        }
        assert_eq!(p.stats().1, MAX_THREADS);
    }

    #[test]
    fn an_idle_worker_is_used_before_a_new_one() {
        let p = Arc::new(Pool::new(1));
        assert_eq!(p.reserve_min(), 1);
        let out = Arc::new(Mutex::new(Vec::new()));
        run_workers(&p, 1, &out);
        let t = Instant::now();
        while p.stats().2 == 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!p.push(1).spawn);
        p.close();
        assert!(p.wait_gone(Duration::from_secs(5)));
        assert_eq!(*out.lock().unwrap(), vec![1]);
    }

    #[test]
    fn set_min_starts_the_missing_threads() {
        let p: Pool<u32> = Pool::new(2);
        assert_eq!(p.reserve_min(), 2);
        assert_eq!(p.set_min(5), 3);
        assert_eq!(p.set_min(3), 0);
        p.spawn_failed();
        assert_eq!(p.stats().1, 4);
    }
}
