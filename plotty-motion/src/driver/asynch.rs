//! The async twin of [`Driver`](super::Driver) (feature `async`): a [`Session`] over an
//! `embedded_io_async` port, waiting for bytes or the session's next deadline, whichever comes
//! first, with the caller's [`AsyncClock`].
//!
//! The port's `read` must be cancel-safe (a `read` future dropped before it completes has read
//! nothing, as `embedded_io_async` encourages): the driver races it against the clock.

use core::future::{Future, poll_fn};
use core::pin::pin;
use core::task::Poll;

use embedded_io_async::{Read, Write};

use super::{DriverError, FeedSource, Feeder, Flow, NoSource, RunEnd};
use crate::ebb::limits::MAX_ENCODED_LEN;
use crate::kinematics::MotorSteps;
use crate::session::{ConfigError, Event, Session, SessionConfig};
use crate::time::Instant;

/// Where the async driver gets the time, and how it sleeps.
// The driver is generic and runs on single-threaded executors too; callers that need `Send`
// futures get them when their clock's are.
#[allow(async_fn_in_trait)]
pub trait AsyncClock {
    /// The current time (monotonic).
    fn now(&mut self) -> Instant;

    /// Completes at `deadline` (or later). Dropped before that when bytes arrive first.
    async fn sleep_until(&mut self, deadline: Instant);
}

/// Runs a [`Session`] over an async `port`. Same API as [`Driver`](super::Driver), `async`.
#[derive(Debug)]
pub struct AsyncDriver<P, C> {
    port: P,
    clock: C,
    session: Session,
    feeder: Feeder,
}

/// What completed first.
enum Woke<R> {
    Read(R),
    Timer,
}

// See `Driver`: the error type is large but returned once.
#[allow(clippy::result_large_err)]
impl<P, C> AsyncDriver<P, C>
where
    P: Read + Write,
    C: AsyncClock,
{
    /// A driver starting a session at the clock's current time (the port is open).
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn new(port: P, mut clock: C, config: SessionConfig) -> Result<Self, ConfigError> {
        let now = clock.now();
        Ok(Self {
            port,
            session: Session::new(config, now)?,
            clock,
            feeder: Feeder::default(),
        })
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, to pause, resume or abort between calls.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The clock.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// The port, the clock and the session.
    pub fn into_parts(self) -> (P, C, Session) {
        (self.port, self.clock, self.session)
    }

    /// Runs the handshake and set-up; returns the position reported with [`Event::Ready`].
    ///
    /// # Errors
    /// I/O errors, or the session failed (not an EBB, no answer).
    pub async fn connect(&mut self) -> Result<MotorSteps, DriverError<P::Error>> {
        loop {
            let event = self.next_event_with(&mut NoSource).await?;
            if let Some(position) = self.feeder.connected(&self.session, event)? {
                return Ok(position);
            }
        }
    }

    /// Feeds `source` and runs until it is exhausted and everything executed, or until a pause
    /// or abort; see [`Driver::run`](super::Driver::run).
    ///
    /// # Errors
    /// I/O errors, a source error, a refused item, or the session failed.
    pub async fn run<S: FeedSource>(
        &mut self,
        source: &mut S,
        mut on_event: impl FnMut(&Event) -> Flow,
    ) -> Result<RunEnd, DriverError<P::Error, S::Error>> {
        self.feeder.source_done = false;
        loop {
            let event = self.next_event_with(source).await?;
            let flow = on_event(&event);
            let now = self.clock.now();
            if let Some(end) = self
                .feeder
                .after_event(&mut self.session, event, flow, now)?
            {
                return Ok(end);
            }
        }
    }

    /// Waits until the session reports an event, doing I/O and feeding from `source`
    /// meanwhile.
    ///
    /// # Errors
    /// As for [`run`](Self::run).
    pub async fn next_event_with<S: FeedSource>(
        &mut self,
        source: &mut S,
    ) -> Result<Event, DriverError<P::Error, S::Error>> {
        let mut rx = [0u8; 64];
        let mut tx = [0u8; MAX_ENCODED_LEN];
        loop {
            if let Some(e) = self.session.poll_event() {
                return Ok(e);
            }
            if self.session.is_failed() {
                return Err(self.feeder.failure());
            }
            let now = self.clock.now();
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
            }
            self.feeder.feed(&mut self.session, source)?;
            let mut wrote = false;
            while let Some(n) = self.session.poll_transmit(now, &mut tx) {
                let bytes = tx.get(..n).unwrap_or(&[]);
                self.port.write_all(bytes).await.map_err(DriverError::Io)?;
                wrote = true;
            }
            if wrote {
                self.port.flush().await.map_err(DriverError::Io)?;
            }
            if self.session.has_events() {
                continue;
            }
            let deadline = self.session.poll_timeout();
            let Self { port, clock, .. } = self;
            let woke = match deadline {
                Some(t) if t <= now => Woke::Timer,
                Some(t) => race(port.read(&mut rx), clock.sleep_until(t)).await,
                None => Woke::Read(port.read(&mut rx).await),
            };
            if let Woke::Read(result) = woke {
                let n = result.map_err(DriverError::Io)?;
                if n == 0 {
                    return Err(DriverError::Closed);
                }
                let now = self.clock.now();
                self.session.handle_rx(now, rx.get(..n).unwrap_or(&[]));
            }
        }
    }
}

/// Polls both futures; the first to complete wins and the other is dropped.
async fn race<R>(read: impl Future<Output = R>, timer: impl Future<Output = ()>) -> Woke<R> {
    let mut read = pin!(read);
    let mut timer = pin!(timer);
    poll_fn(|cx| {
        if let Poll::Ready(r) = read.as_mut().poll(cx) {
            return Poll::Ready(Woke::Read(r));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woke::Timer);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;
    use std::rc::Rc;
    use std::vec::Vec;

    use super::*;
    use crate::plan::Pen;
    use crate::tests::fake::Fake;
    use crate::tests::util::polyline;

    struct World {
        fw: Fake,
        now: Instant,
    }

    struct Port(Rc<RefCell<World>>);
    struct Clock(Rc<RefCell<World>>);

    impl embedded_io_async::ErrorType for Port {
        type Error = core::convert::Infallible;
    }

    impl Read for Port {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            // Pending until the board has output; cancel-safe (takes bytes only when ready).
            poll_fn(|_| {
                let mut w = self.0.borrow_mut();
                if !w.fw.has_output() {
                    return Poll::Pending;
                }
                let out = w.fw.take_output();
                let n = out.len().min(buf.len());
                buf[..n].copy_from_slice(&out[..n]);
                if n < out.len() {
                    w.fw.unread(&out[n..]);
                }
                Poll::Ready(Ok(n))
            })
            .await
        }
    }

    impl Write for Port {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            let mut w = self.0.borrow_mut();
            let now = w.now;
            w.fw.receive(now, buf);
            Ok(buf.len())
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    impl AsyncClock for Clock {
        fn now(&mut self) -> Instant {
            self.0.borrow().now
        }

        async fn sleep_until(&mut self, deadline: Instant) {
            // Virtual time: jump to the deadline, or to the board's next event if sooner (its
            // output then wakes the read on the next poll).
            let mut w = self.0.borrow_mut();
            let t = match w.fw.next_event() {
                Some(e) if e < deadline => e,
                _ => deadline,
            };
            let t = t.max(w.now);
            w.fw.advance_to(t);
            w.now = t;
        }
    }

    /// Runs a future to completion by polling it with a no-op waker (the test futures make
    /// progress on every poll).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
        for _ in 0..10_000_000 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the future made no progress");
    }

    #[test]
    fn connects_and_plots_to_the_end() {
        let world = Rc::new(RefCell::new(World {
            fw: Fake::v3(),
            now: Instant::from_millis(5),
        }));
        let mut d = AsyncDriver::new(
            Port(world.clone()),
            Clock(world.clone()),
            SessionConfig::default(),
        )
        .unwrap();
        assert_eq!(block_on(d.connect()).unwrap(), MotorSteps::ZERO);
        let points: Vec<_> = (1..=30).map(|i| (i * 80, i * 20)).collect();
        let mut items = polyline(&points, 20, Pen::Up, 0).into_iter().fuse();
        let end = block_on(d.run(&mut items, |_| Flow::Continue)).unwrap();
        assert_eq!(
            end,
            RunEnd::Done {
                position: MotorSteps::new(2400, 600)
            }
        );
        assert_eq!(world.borrow().fw.position(), [2400, 600]);
    }
}
