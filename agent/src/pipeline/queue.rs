//! A bounded frame queue between a source's reader thread and its analysis thread, with an
//! explicit overflow policy:
//! - `Block`: the reader waits (replays: every frame is analysed, nothing is dropped);
//! - `DropOldest`: live/realtime: the newest frame wins and each dropped frame is counted and
//!   reported in the window's coverage (`frames_dropped`), never hidden.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Block,
    DropOldest,
}

struct Inner<T> {
    items: VecDeque<T>,
    /// Media times of frames dropped since the last pop.
    dropped: Vec<u64>,
    closed: bool,
}

pub struct BoundedQueue<T> {
    cap: usize,
    policy: Overflow,
    inner: Mutex<Inner<T>>,
    cv: Condvar,
}

/// What `pop_timeout` found.
pub enum Popped<T> {
    /// An item, with the media times of the frames dropped before it.
    Item(T, Vec<u64>),
    Timeout,
    Closed,
}

pub trait Timed {
    fn t_ms(&self) -> u64;
}

impl Timed for vitrine_sensors::Frame {
    fn t_ms(&self) -> u64 {
        self.t_ms
    }
}

impl<T: Timed> BoundedQueue<T> {
    pub fn new(cap: usize, policy: Overflow) -> BoundedQueue<T> {
        BoundedQueue {
            cap: cap.max(1),
            policy,
            inner: Mutex::new(Inner {
                items: VecDeque::with_capacity(cap.max(1)),
                dropped: Vec::new(),
                closed: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panicking holder cannot leave the queue inconsistent (push/pop are single steps).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Push; false if the queue was closed (the consumer is gone).
    pub fn push(&self, item: T) -> bool {
        let mut g = self.lock();
        loop {
            if g.closed {
                return false;
            }
            if g.items.len() < self.cap {
                break;
            }
            match self.policy {
                Overflow::DropOldest => {
                    if let Some(old) = g.items.pop_front() {
                        // Bounded: at most one entry per frame pushed between two pops, and the
                        // list is cut at 4096 (the count stays exact through `dropped_total`).
                        if g.dropped.len() < 4096 {
                            g.dropped.push(old.t_ms());
                        }
                    }
                    break;
                }
                Overflow::Block => g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
            }
        }
        g.items.push_back(item);
        self.cv.notify_all();
        true
    }

    /// Pop the next item, with the media times of frames dropped before it; `None` once the
    /// queue is closed and empty.
    pub fn pop(&self) -> Option<(T, Vec<u64>)> {
        let mut g = self.lock();
        loop {
            if let Some(item) = g.items.pop_front() {
                let dropped = std::mem::take(&mut g.dropped);
                self.cv.notify_all();
                return Some((item, dropped));
            }
            if g.closed {
                return None;
            }
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Like `pop`, but gives up after `wait` (live sources close windows on the clock even
    /// when a camera sends nothing).
    pub fn pop_timeout(&self, wait: std::time::Duration) -> Popped<T> {
        let deadline = std::time::Instant::now() + wait;
        let mut g = self.lock();
        loop {
            if let Some(item) = g.items.pop_front() {
                let dropped = std::mem::take(&mut g.dropped);
                self.cv.notify_all();
                return Popped::Item(item, dropped);
            }
            if g.closed {
                return Popped::Closed;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Popped::Timeout;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T(u64);
    impl Timed for T {
        fn t_ms(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_reports_what_it_dropped() {
        let q = BoundedQueue::new(2, Overflow::DropOldest);
        for i in 0..5 {
            assert!(q.push(T(i)));
        }
        let (item, dropped) = q.pop().unwrap();
        assert_eq!(item.0, 3);
        assert_eq!(dropped, vec![0, 1, 2]);
        let (item, dropped) = q.pop().unwrap();
        assert_eq!((item.0, dropped.len()), (4, 0));
        q.close();
        assert!(q.pop().is_none());
        assert!(!q.push(T(9)), "a closed queue refuses items");
    }

    #[test]
    fn block_loses_nothing() {
        let q = std::sync::Arc::new(BoundedQueue::new(2, Overflow::Block));
        let p = q.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..100 {
                p.push(T(i));
            }
            p.close();
        });
        let mut seen = Vec::new();
        while let Some((item, dropped)) = q.pop() {
            assert!(dropped.is_empty());
            seen.push(item.0);
        }
        producer.join().unwrap();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn pop_timeout_returns_on_time_items_and_close() {
        let q = BoundedQueue::new(2, Overflow::DropOldest);
        assert!(matches!(
            q.pop_timeout(std::time::Duration::from_millis(20)),
            Popped::Timeout
        ));
        q.push(T(7));
        match q.pop_timeout(std::time::Duration::from_millis(20)) {
            Popped::Item(t, d) => assert_eq!((t.0, d.len()), (7, 0)),
            _ => panic!("expected the item"),
        }
        q.close();
        assert!(matches!(
            q.pop_timeout(std::time::Duration::from_secs(5)),
            Popped::Closed
        ));
    }
}
