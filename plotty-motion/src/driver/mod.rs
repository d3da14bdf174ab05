//! A blocking loop that runs a [`Session`] over any `embedded_io` port: for a microcontroller
//! main loop, a thread on a host, or a test.
//!
//! The port is an `embedded_io::{Read, Write, ReadReady}`; time comes from the caller's
//! [`Clock`], which also says how to wait. Items come from a [`FeedSource`] (the
//! [`PathFeed`](crate::pipeline::PathFeed) of the pipeline module plans a path on the fly).
//!
//! ```text
//! let mut driver = Driver::new(port, clock, SessionConfig::default())?;
//! let ready = driver.connect()?;              // handshake and set-up
//! match driver.run(&mut source, |event| Flow::Continue)? {
//!     RunEnd::Done { position } => …,         // everything executed, position confirmed
//!     RunEnd::Paused { reason, resume } => …, // resume() and run again (see ResumePoint)
//!     RunEnd::Aborted { position } => …,
//! }
//! ```

use core::fmt;

use embedded_io::{Read, ReadReady, Write};

#[cfg(feature = "async")]
mod asynch;

#[cfg(feature = "async")]
pub use asynch::{AsyncClock, AsyncDriver};

use crate::ebb::limits::MAX_ENCODED_LEN;
use crate::kinematics::MotorSteps;
use crate::session::{
    ConfigError, Event, FeedError, FeedItem, PauseReason, ResumePoint, Session, SessionConfig,
    SessionError, StateError,
};
use crate::time::{Duration, Instant};

/// Where the driver gets the time, and how it waits.
pub trait Clock {
    /// The current time (monotonic).
    fn now(&mut self) -> Instant;

    /// Blocks until `deadline`, or earlier (for example when the port may have received
    /// bytes). The driver never asks for more than its poll interval at a time, so a plain
    /// sleep until `deadline` is a correct implementation.
    fn wait(&mut self, deadline: Instant);
}

/// A source of items to plot.
pub trait FeedSource {
    /// Why it could not produce an item.
    type Error;

    /// The next item, `Ok(None)` at the end.
    fn next_item(&mut self) -> Result<Option<FeedItem>, Self::Error>;
}

/// What a [`Driver::run`] event callback asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Flow {
    /// Carry on.
    Continue,
    /// Pause now ([`Session::pause`]).
    Pause,
    /// Abort now ([`Session::abort`]).
    Abort,
}

/// How a [`Driver::run`] ended.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunEnd {
    /// The source is exhausted and everything executed; `QS` confirmed the position.
    Done {
        /// The final motor position.
        position: MotorSteps,
    },
    /// The session paused. Call [`Session::resume`] (through
    /// [`Driver::session_mut`]), then `run` again: with the same source after a
    /// [`PauseReason::Planned`] pause, with a source re-planned from `resume` otherwise.
    Paused {
        /// Why.
        reason: PauseReason,
        /// Where to continue.
        resume: ResumePoint,
    },
    /// The session aborted.
    Aborted {
        /// Motor position after the stop.
        position: MotorSteps,
    },
}

/// Why the driver stopped.
#[derive(Debug)]
pub enum DriverError<E, S = core::convert::Infallible> {
    /// The port failed.
    Io(E),
    /// The port reached its end (the device went away).
    Closed,
    /// The session failed for good (not an EBB, no answer, unsupported firmware); the error
    /// was also reported as an event.
    Session(SessionError),
    /// The feed source failed.
    Source(S),
    /// The session refused an item (invalid for this firmware).
    Feed(FeedError),
    /// A control call did not apply.
    State(StateError),
}

/// Runs a [`Session`] over `port`. See the [module documentation](self).
#[derive(Debug)]
pub struct Driver<P, C> {
    port: P,
    clock: C,
    session: Session,
    /// Longest wait between port checks.
    poll_interval: Duration,
    feeder: Feeder,
}

/// What both drivers keep between calls: the feed and the last error.
#[derive(Debug, Default)]
pub(crate) struct Feeder {
    /// An item the session refused because it was full.
    staged: Option<FeedItem>,
    /// The source said it has nothing more.
    source_done: bool,
    /// The last session error reported as an event.
    last_error: Option<SessionError>,
}

// The session's errors carry the offending reply text in place (no heap in this crate), which
// makes the error type large; it is returned once, at the end of a run.
#[allow(clippy::result_large_err)]
impl<P, C> Driver<P, C>
where
    P: Read + Write + ReadReady,
    C: Clock,
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
            poll_interval: Duration::from_millis(1),
            feeder: Feeder::default(),
        })
    }

    /// The same driver checking the port at least every `interval` while it waits (default
    /// 1 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
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

    /// Runs the handshake and set-up; returns the position reported with
    /// [`Event::Ready`].
    ///
    /// # Errors
    /// I/O errors, or the session failed (not an EBB, no answer).
    pub fn connect(&mut self) -> Result<MotorSteps, DriverError<P::Error>> {
        loop {
            let event = self.next_event_with(&mut NoSource)?;
            if let Some(position) = self.feeder.connected(&self.session, event)? {
                return Ok(position);
            }
        }
    }

    /// Feeds `source` and runs until it is exhausted and everything executed, or until a pause
    /// or abort. `on_event` sees every event and may ask for a pause or abort.
    ///
    /// # Errors
    /// I/O errors, a source error, a refused item, or the session failed.
    pub fn run<S: FeedSource>(
        &mut self,
        source: &mut S,
        mut on_event: impl FnMut(&Event) -> Flow,
    ) -> Result<RunEnd, DriverError<P::Error, S::Error>> {
        self.feeder.source_done = false;
        loop {
            let event = self.next_event_with(source)?;
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

    /// Blocks until the session reports an event, doing I/O and feeding from `source`
    /// meanwhile.
    ///
    /// # Errors
    /// As for [`run`](Self::run).
    pub fn next_event_with<S: FeedSource>(
        &mut self,
        source: &mut S,
    ) -> Result<Event, DriverError<P::Error, S::Error>> {
        loop {
            if let Some(e) = self.session.poll_event() {
                return Ok(e);
            }
            if self.session.is_failed() {
                return Err(self.feeder.failure());
            }
            let now = self.clock.now();
            let mut busy = self.read(now).map_err(DriverError::into_source)?;
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
                busy = true;
            }
            self.feeder.feed(&mut self.session, source)?;
            busy |= self.write(now).map_err(DriverError::into_source)?;
            if busy || self.session.has_events() {
                continue;
            }
            let mut deadline = now + self.poll_interval;
            if let Some(t) = self.session.poll_timeout()
                && t < deadline
            {
                deadline = t;
            }
            self.clock.wait(deadline);
        }
    }

    /// Reads everything the port has ready into the session.
    fn read(&mut self, now: Instant) -> Result<bool, DriverError<P::Error>> {
        let mut buf = [0u8; 64];
        let mut any = false;
        while self.port.read_ready().map_err(DriverError::Io)? {
            let n = self.port.read(&mut buf).map_err(DriverError::Io)?;
            if n == 0 {
                return Err(DriverError::Closed);
            }
            self.session.handle_rx(now, buf.get(..n).unwrap_or(&[]));
            any = true;
        }
        Ok(any)
    }

    /// Sends everything the session has.
    fn write(&mut self, now: Instant) -> Result<bool, DriverError<P::Error>> {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let mut any = false;
        while let Some(n) = self.session.poll_transmit(now, &mut buf) {
            self.port
                .write_all(buf.get(..n).unwrap_or(&[]))
                .map_err(DriverError::Io)?;
            any = true;
        }
        if any {
            self.port.flush().map_err(DriverError::Io)?;
        }
        Ok(any)
    }
}

#[allow(clippy::result_large_err)]
impl Feeder {
    /// Pushes items while the session accepts them.
    pub(crate) fn feed<E, S: FeedSource>(
        &mut self,
        session: &mut Session,
        source: &mut S,
    ) -> Result<(), DriverError<E, S::Error>> {
        while session.can_accept() {
            let item = match self.staged.take() {
                Some(item) => item,
                None if self.source_done => return Ok(()),
                None => match source.next_item().map_err(DriverError::Source)? {
                    Some(item) => item,
                    None => {
                        self.source_done = true;
                        return Ok(());
                    }
                },
            };
            match session.push(item) {
                Ok(()) => {}
                Err(FeedError::Full) => {
                    self.staged = Some(item);
                    return Ok(());
                }
                Err(e) => return Err(DriverError::Feed(e)),
            }
        }
        Ok(())
    }

    /// An event while connecting: the position once ready.
    pub(crate) fn connected<E>(
        &mut self,
        session: &Session,
        event: Event,
    ) -> Result<Option<MotorSteps>, DriverError<E>> {
        match event {
            Event::Ready { position, .. } => return Ok(Some(position)),
            Event::Error(e) => self.last_error = Some(e),
            _ => {}
        }
        if session.is_failed() {
            return Err(self.failure());
        }
        Ok(None)
    }

    /// Applies the callback's `flow`, then tells whether `event` ends the run.
    pub(crate) fn after_event<E, S>(
        &mut self,
        session: &mut Session,
        event: Event,
        flow: Flow,
        now: Instant,
    ) -> Result<Option<RunEnd>, DriverError<E, S>> {
        match flow {
            Flow::Continue => {}
            Flow::Pause if session.is_ready() => session.pause(now).map_err(DriverError::State)?,
            Flow::Pause => {}
            Flow::Abort => {
                self.staged = None;
                session.abort(now).map_err(DriverError::State)?;
            }
        }
        match event {
            Event::Idle { position } if self.source_done && self.staged.is_none() => {
                return Ok(Some(RunEnd::Done { position }));
            }
            Event::Paused { reason, resume } => {
                if resume.dropped {
                    self.staged = None;
                }
                return Ok(Some(RunEnd::Paused { reason, resume }));
            }
            Event::Aborted { position, .. } => return Ok(Some(RunEnd::Aborted { position })),
            Event::Error(e) => self.last_error = Some(e),
            _ => {}
        }
        if session.is_failed() {
            return Err(self.failure());
        }
        Ok(None)
    }

    /// The error a failed session ended with.
    pub(crate) fn failure<E, S>(&mut self) -> DriverError<E, S> {
        match self.last_error.take() {
            Some(e) => DriverError::Session(e),
            None => DriverError::Session(SessionError::Timeout {
                command: "V",
                waited: Duration::ZERO,
            }),
        }
    }
}

impl<E> DriverError<E, core::convert::Infallible> {
    /// The same error in a driver call with a feed source.
    fn into_source<S>(self) -> DriverError<E, S> {
        match self {
            Self::Io(e) => DriverError::Io(e),
            Self::Closed => DriverError::Closed,
            Self::Session(e) => DriverError::Session(e),
            Self::Source(never) => match never {},
            Self::Feed(e) => DriverError::Feed(e),
            Self::State(e) => DriverError::State(e),
        }
    }
}

/// A source with nothing to feed (for [`Driver::connect`]).
pub(crate) struct NoSource;

impl FeedSource for NoSource {
    type Error = core::convert::Infallible;

    fn next_item(&mut self) -> Result<Option<FeedItem>, Self::Error> {
        Ok(None)
    }
}

/// Feeds items from an iterator.
impl<I: Iterator<Item = FeedItem>> FeedSource for core::iter::Fuse<I> {
    type Error = core::convert::Infallible;

    fn next_item(&mut self) -> Result<Option<FeedItem>, Self::Error> {
        Ok(self.next())
    }
}

impl<E: fmt::Display, S: fmt::Display> fmt::Display for DriverError<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "serial port error: {e}"),
            Self::Closed => f.write_str("the serial port closed (was the plotter unplugged?)"),
            Self::Session(e) => e.fmt(f),
            Self::Source(e) => write!(f, "cannot produce the next plot item: {e}"),
            Self::Feed(e) => e.fmt(f),
            Self::State(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display, S: fmt::Debug + fmt::Display> core::error::Error
    for DriverError<E, S>
{
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

    /// The fake board and virtual time, shared by the port and the clock.
    struct World {
        fw: Fake,
        now: Instant,
        closed: bool,
    }

    struct Port(Rc<RefCell<World>>);
    struct VirtualClock(Rc<RefCell<World>>);

    #[derive(Debug)]
    struct PortError;

    impl fmt::Display for PortError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("port error")
        }
    }

    impl core::error::Error for PortError {}

    impl embedded_io::Error for PortError {
        fn kind(&self) -> embedded_io::ErrorKind {
            embedded_io::ErrorKind::Other
        }
    }

    impl embedded_io::ErrorType for Port {
        type Error = PortError;
    }

    impl Read for Port {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, PortError> {
            let mut w = self.0.borrow_mut();
            if w.closed {
                return Ok(0);
            }
            let out = w.fw.take_output();
            let n = out.len().min(buf.len());
            buf[..n].copy_from_slice(&out[..n]);
            // Keep what did not fit.
            let rest: Vec<u8> = out[n..].to_vec();
            if !rest.is_empty() {
                w.fw.unread(&rest);
            }
            Ok(n)
        }
    }

    impl ReadReady for Port {
        fn read_ready(&mut self) -> Result<bool, PortError> {
            let w = self.0.borrow();
            Ok(w.closed || w.fw.has_output())
        }
    }

    impl Write for Port {
        fn write(&mut self, buf: &[u8]) -> Result<usize, PortError> {
            let mut w = self.0.borrow_mut();
            let now = w.now;
            w.fw.receive(now, buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> Result<(), PortError> {
            Ok(())
        }
    }

    impl Clock for VirtualClock {
        fn now(&mut self) -> Instant {
            self.0.borrow().now
        }

        fn wait(&mut self, deadline: Instant) {
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

    fn driver(fw: Fake) -> (Driver<Port, VirtualClock>, Rc<RefCell<World>>) {
        let world = Rc::new(RefCell::new(World {
            fw,
            now: Instant::from_millis(5),
            closed: false,
        }));
        let d = Driver::new(
            Port(world.clone()),
            VirtualClock(world.clone()),
            SessionConfig::default(),
        )
        .unwrap();
        (d, world)
    }

    #[test]
    fn connects_and_plots_to_the_end() {
        for fw in [Fake::v3(), Fake::v2()] {
            let (mut d, world) = driver(fw);
            assert_eq!(d.connect().unwrap(), MotorSteps::ZERO);
            let points: Vec<_> = (1..=50).map(|i| (i * 80, -i * 40)).collect();
            let mut items = polyline(&points, 20, Pen::Up, 0).into_iter().fuse();
            let mut progress = 0;
            let end = d
                .run(&mut items, |e| {
                    if matches!(e, Event::Progress(_)) {
                        progress += 1;
                    }
                    Flow::Continue
                })
                .unwrap();
            assert_eq!(
                end,
                RunEnd::Done {
                    position: MotorSteps::new(4000, -2000)
                }
            );
            assert_eq!(progress, 50);
            assert_eq!(world.borrow().fw.position(), [4000, -2000]);
        }
    }

    #[test]
    fn pause_from_the_callback_and_abort() {
        let (mut d, world) = driver(Fake::v3());
        d.connect().unwrap();
        let points: Vec<_> = (1..=50).map(|i| (i * 80, 0)).collect();
        let mut items = polyline(&points, 20, Pen::Up, 0).into_iter().fuse();
        let mut n = 0;
        let end = d
            .run(&mut items, |e| {
                if matches!(e, Event::Progress(_)) {
                    n += 1;
                }
                if n == 10 { Flow::Pause } else { Flow::Continue }
            })
            .unwrap();
        let RunEnd::Paused { reason, resume } = end else {
            panic!("{end:?}");
        };
        assert_eq!(reason, PauseReason::Requested);
        let [m1, m2] = world.borrow().fw.position();
        assert_eq!(resume.position, MotorSteps::new(m1 as i32, m2 as i32));
        let now = d.clock_mut().now();
        d.session_mut().abort(now).unwrap();
        let end = d
            .run(&mut core::iter::empty().fuse(), |_| Flow::Continue)
            .unwrap();
        assert!(matches!(end, RunEnd::Aborted { .. }));
    }

    #[test]
    fn not_an_ebb_and_a_closed_port_are_errors() {
        let (mut d, _) = driver(Fake::new(crate::tests::fake::Identity::Other("Hi")));
        match d.connect() {
            Err(DriverError::Session(SessionError::NotAnEbb { .. })) => {}
            other => panic!("{other:?}"),
        }
        let (mut d, world) = driver(Fake::v3());
        world.borrow_mut().closed = true;
        assert!(matches!(d.connect(), Err(DriverError::Closed)));
        let text = std::format!("{}", DriverError::<PortError>::Closed);
        assert!(text.contains("closed"));
    }
}
