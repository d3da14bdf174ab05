//! [`Gate`]: poll a future only when it asked to be, so that a `select!` woken by one branch does
//! not poll all the others.
//!
//! `tokio::select!` polls every branch each time its task wakes, whatever woke it. A WebSocket
//! client's task is woken by the broadcast feed for every delivery, and polling its idle branches
//! (the socket's read side, the shutdown token, the settings watch, the heartbeat timer) takes a
//! lock or two each: with 1,000 clients that was about a sixth of the daemon's CPU per broadcast. A
//! future that returned `Pending` has arranged to wake its waker when it can make progress (the
//! `Future` contract), so a gate hands it a waker of its own and polls it again only after that
//! waker fired. The inner future's registration must outlive one `select!` round: it must be
//! pinned outside the loop, or be a poll of a resource that keeps the waker (a stream, a timer),
//! never a future recreated and dropped each round. Several futures may sit behind one gate: a
//! wake of any of them opens it, and then all are polled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Polls the future behind it only if that future's waker fired since it last returned `Pending`.
pub(super) struct Gate {
    signal: Arc<Signal>,
    /// The waker handed to the inner future: sets the flag, then wakes the task.
    waker: Waker,
}

/// What a gate's waker does.
struct Signal {
    /// The inner future may make progress (set at first, so that it is polled once).
    woken: AtomicBool,
    /// The task that polls the gate.
    task: AtomicWaker,
}

impl Gate {
    /// Runs `poll` with the gate's waker if it was woken since the last `Pending`; else
    /// `Pending` at once. Allocates nothing (the task's waker is cloned only when it changes).
    pub(super) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Registered before the flag is read: a wake between the two still reaches the task.
        self.signal.task.register(cx.waker());
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let out = poll(&mut Context::from_waker(&self.waker));
        if out.is_ready() {
            // A future that was ready may be ready again at once (a stream with more frames
            // buffered) without waking anyone: the next round polls it.
            self.signal.woken.store(true, Ordering::Release);
        }
        out
    }
}

impl Default for Gate {
    /// A gate that polls at its first use.
    fn default() -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        }
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts how often it is polled; pending until `ready`, keeping the last waker.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        ready: AtomicBool,
        waker: std::sync::Mutex<Option<Waker>>,
    }

    impl Probe {
        fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }

        fn wake(&self) {
            if let Some(w) = self.waker.lock().unwrap().take() {
                w.wake();
            }
        }
    }

    /// Counts the task's wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_pending_future_is_polled_again_only_after_its_waker_fired() {
        let gate = Gate::default();
        let probe = Probe::default();
        let task = Arc::new(Task::default());
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);

        assert!(gate.poll(&mut cx, |cx| probe.poll(cx)).is_pending());
        assert_eq!(probe.polls.load(Ordering::SeqCst), 1, "the first use polls");
        for _ in 0..3 {
            assert!(gate.poll(&mut cx, |cx| probe.poll(cx)).is_pending());
        }
        assert_eq!(
            probe.polls.load(Ordering::SeqCst),
            1,
            "not woken: not polled"
        );

        probe.ready.store(true, Ordering::SeqCst);
        probe.wake();
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "its wake reaches the task"
        );
        assert!(gate.poll(&mut cx, |cx| probe.poll(cx)).is_ready());
        assert!(
            gate.poll(&mut cx, |cx| probe.poll(cx)).is_ready(),
            "after Ready it is polled again without a wake"
        );
        assert_eq!(probe.polls.load(Ordering::SeqCst), 3);
    }
}
