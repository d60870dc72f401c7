//! The queue between the dispatcher and the workers, and the elastic pool
//! of worker threads that drains it.
//!
//! The queue is unbounded and first-in first-out: a connection that
//! completed its pre-auth handshake is never dropped because a queue is
//! full (each one costs a socket and its AP-REQ; the dispatcher's pre-auth
//! limits bound how many can exist), and connections are served in the
//! order they became ready. `QueueSize` is the length above which the
//! daemon says so in its log.
//!
//! `Workers` threads always run. A worker waiting for its client (the next
//! request, a slow reader) says so ([`Pool::block_begin`]). When
//! connections are queued and fewer than `Workers` threads are free to
//! work, one more thread is started, up to [`MAX_THREADS`]; an extra thread
//! exits after [`IDLE_EXIT`] without work. A worker counts as taken by its
//! client only once it has waited [`BLOCKED_LONG`]: a client that answers
//! within a few milliseconds (the usual case, even on a loaded machine)
//! does not add threads, so a CPU-bound burst is served by about `Workers`
//! threads in arrival order instead of hundreds of threads competing for
//! the cores (which made the latency tail several times the mean); idle
//! or slow authenticated clients cost the queued work at most
//! [`BLOCKED_LONG`] before another thread takes it ([`Pool::maintain`],
//! called by the dispatcher at least every [`MAINTAIN_EVERY`] while work
//! is queued).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Most worker threads at once (when `Workers` is smaller).
pub const MAX_THREADS: usize = 256;
/// Time an extra worker waits for work before it exits.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);
/// How long a worker must have waited for its client before queued work
/// gets another thread.
pub const BLOCKED_LONG: Duration = Duration::from_millis(50);
/// How often [`Pool::maintain`] must be called while work is queued.
pub const MAINTAIN_EVERY: Duration = Duration::from_millis(10);

struct Inner<T> {
    queue: VecDeque<T>,
    threads: usize,
    /// Threads counted in `threads` that have not called
    /// [`Pool::started`] yet (work they are coming for).
    starting: usize,
    idle: usize,
    /// Since when each waiting worker waits for its client (`None`: a free
    /// slot); a worker's slot is its [`Blocked`] token.
    blocked: Vec<Option<Instant>>,
    /// How long a wait must last before it counts (see [`BLOCKED_LONG`]).
    grace: Duration,
    min: usize,
    max: usize,
    closed: bool,
    peak: usize,
    /// The workers waiting for work, the latest last: work goes to the one
    /// that waited least (its stack and data are still in the CPU's
    /// caches), and the extra threads at the bottom are the ones left idle
    /// long enough to exit.
    sleepers: Vec<Thread>,
}

/// The queue plus the thread accounting.
pub struct Pool<T> {
    inner: Mutex<Inner<T>>,
    gone: Condvar,
}

/// A worker's wait for its client, from [`Pool::block_begin`] to
/// [`Pool::block_end`].
#[derive(Debug)]
pub struct Blocked(usize);

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
        Self::with_grace(min, BLOCKED_LONG)
    }

    /// [`Pool::new`] with another [`BLOCKED_LONG`] (tests).
    pub fn with_grace(min: usize, grace: Duration) -> Self {
        let min = min.max(1);
        Pool {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                threads: 0,
                starting: 0,
                idle: 0,
                blocked: Vec::new(),
                grace,
                min,
                max: MAX_THREADS.max(min),
                closed: false,
                peak: 0,
                sleepers: Vec::new(),
            }),
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
        g.starting += missing;
        // Extra threads above the new minimum exit when idle.
        Self::wake_all(g);
        missing
    }

    /// Threads to start at the beginning (already counted).
    pub fn reserve_min(&self) -> usize {
        let g = self.lock();
        let min = g.min;
        drop(g);
        self.set_min(min)
    }

    /// A thread counted by [`Pool::push`], [`Pool::maintain`] or
    /// [`Pool::set_min`] could not be started.
    pub fn spawn_failed(&self) {
        let mut g = self.lock();
        g.threads = g.threads.saturating_sub(1);
        g.starting = g.starting.saturating_sub(1);
        self.gone.notify_all();
    }

    /// A counted thread runs (first thing it does).
    pub fn started(&self) {
        let mut g = self.lock();
        g.starting = g.starting.saturating_sub(1);
    }

    /// A started thread exits without serving (it could not set itself up).
    pub fn abandon(&self) {
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
        let spawn = Self::wants_thread(&mut g, Instant::now());
        let wake = g.sleepers.pop();
        // Woken after the lock is released: a worker woken under it would
        // at once wait for the lock again (two wake-ups per hand-off).
        drop(g);
        if let Some(t) = wake {
            t.unpark();
        }
        Pushed { len, spawn }
    }

    /// Whether queued work waits for a thread that is not coming: no idle
    /// worker, fewer than `min` threads not taken by a client for long.
    /// Counts the thread to start.
    fn wants_thread(g: &mut Inner<T>, now: Instant) -> bool {
        if g.closed || g.idle + g.starting >= g.queue.len() || g.threads >= g.max {
            return false;
        }
        let grace = g.grace;
        let taken = g
            .blocked
            .iter()
            .flatten()
            .filter(|since| now.saturating_duration_since(**since) >= grace)
            .count();
        let spawn = g.threads.saturating_sub(taken) < g.min;
        if spawn {
            g.threads += 1;
            g.starting += 1;
        }
        spawn
    }

    /// Threads to start now (already counted) because queued work waits
    /// behind workers taken by their clients for [`BLOCKED_LONG`]. Called
    /// by the dispatcher at least every [`MAINTAIN_EVERY`] while
    /// [`Pool::has_queued`].
    pub fn maintain(&self) -> usize {
        let mut g = self.lock();
        let now = Instant::now();
        let mut n = 0;
        while Self::wants_thread(&mut g, now) {
            n += 1;
        }
        n
    }

    /// Whether connections wait in the queue.
    pub fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// The calling worker starts waiting for its client.
    pub fn block_begin(&self) -> Blocked {
        let mut g = self.lock();
        let now = Some(Instant::now());
        match g.blocked.iter().position(Option::is_none) {
            Some(i) => {
                g.blocked[i] = now;
                Blocked(i)
            }
            None => {
                g.blocked.push(now);
                Blocked(g.blocked.len() - 1)
            }
        }
    }

    /// The calling worker's wait for its client is over.
    pub fn block_end(&self, b: Blocked) {
        let mut g = self.lock();
        if let Some(slot) = g.blocked.get_mut(b.0) {
            *slot = None;
        }
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
            let me = std::thread::current();
            g.sleepers.push(me.clone());
            drop(g);
            // Woken by `push` (which took the entry off), `close`,
            // `set_min`, the timeout or spuriously: the loop looks again.
            std::thread::park_timeout(IDLE_EXIT);
            g = self.lock();
            if let Some(i) = g.sleepers.iter().rposition(|t| t.id() == me.id()) {
                g.sleepers.remove(i);
            }
            g.idle -= 1;
            if !surplus {
                idle_since = Instant::now();
            }
        }
    }

    /// Refuse new work; workers drain the queue and exit.
    pub fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        Self::wake_all(g);
    }

    /// Wake every waiting worker (after releasing the lock).
    fn wake_all(mut g: MutexGuard<'_, Inner<T>>) {
        let all = std::mem::take(&mut g.sleepers);
        drop(g);
        for t in all {
            t.unpark();
        }
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
        self.lock().blocked.iter().flatten().count()
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
                p.started();
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
    fn workers_blocked_on_clients_are_replaced_after_the_grace() {
        let p: Pool<u32> = Pool::with_grace(2, Duration::from_millis(100));
        assert_eq!(p.reserve_min(), 2);
        assert!(!p.push(0).spawn, "the two threads are coming");
        assert_eq!(p.next(), Some(0));
        p.started();
        p.started();
        let a = p.block_begin();
        assert!(!p.push(1).spawn, "one of two waits, not for long yet");
        assert_eq!(p.maintain(), 0);
        let b = p.block_begin();
        assert_eq!(p.maintain(), 0, "both wait, within the grace");
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(p.blocked(), 2);
        assert_eq!(
            p.maintain(),
            1,
            "one queued item, two workers taken: one more"
        );
        assert_eq!(p.maintain(), 0, "already coming");
        assert!(p.push(2).spawn, "two queued, one thread coming: one more");
        assert_eq!(p.maintain(), 0);
        assert_eq!(p.stats().1, 4);
        p.started();
        p.started();
        p.block_end(a);
        p.block_end(b);
        assert_eq!(p.blocked(), 0);
        assert!(!p.push(3).spawn, "four threads free");
        // Up to the maximum only.
        let held: Vec<Blocked> = (0..2 * MAX_THREADS).map(|_| p.block_begin()).collect();
        std::thread::sleep(Duration::from_millis(150));
        for _ in 0..2 * MAX_THREADS {
            p.push(0);
        }
        p.maintain();
        assert_eq!(p.stats().1, MAX_THREADS);
        for b in held {
            p.block_end(b);
        }
        assert_eq!(p.blocked(), 0);
    }

    #[test]
    fn queued_items_come_out_in_arrival_order() {
        let p: Pool<u32> = Pool::new(1);
        assert_eq!(p.reserve_min(), 1);
        for i in 0..100 {
            p.push(i);
        }
        p.close();
        let got: Vec<u32> = std::iter::from_fn(|| p.next()).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
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
    fn work_goes_to_the_worker_that_waited_least() {
        let p = Arc::new(Pool::new(3));
        assert_eq!(p.reserve_min(), 3);
        let seen = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            let (p, seen) = (Arc::clone(&p), Arc::clone(&seen));
            std::thread::spawn(move || {
                p.started();
                while let Some(x) = p.next() {
                    seen.lock().unwrap().push((std::thread::current().id(), x));
                }
            });
        }
        let all_idle = |p: &Pool<u32>| {
            let t = Instant::now();
            while p.stats().2 < 3 && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(2));
            }
            assert_eq!(p.stats().2, 3, "workers not idle");
        };
        for i in 0..6 {
            all_idle(&p);
            p.push(i);
            let t = Instant::now();
            while seen.lock().unwrap().len() <= i as usize && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        p.close();
        assert!(p.wait_gone(Duration::from_secs(5)));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        // The first item went to the last worker to wait; each one after
        // it to that same worker, back on top of the others.
        assert!(seen.iter().all(|(id, _)| *id == seen[0].0), "{seen:?}");
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
