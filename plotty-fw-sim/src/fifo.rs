//! The motion FIFO (reference §1.5): a ring of `depth` slots between the parser and the 25 kHz
//! interrupt. The parser waits while it holds `depth` commands; the interrupt pops one when the
//! current command is done.
//!
//! Depth is 1 at boot on both lines; 3.x `CU,4,n` sets 1..32. `CU,4,0` (every later queued
//! command blocks forever) and a negative `n` (cast to a byte; the real board then runs past its
//! 32-slot ring and corrupts RAM) are kept as the byte the firmware stores, so the simulator
//! shows the hang, and holds up to 255 commands instead of corrupting anything.

use std::collections::VecDeque;

use crate::motion::Command;

/// The motion FIFO.
#[derive(Debug, Clone)]
pub(crate) struct Fifo {
    queue: VecDeque<Command>,
    depth: u8,
}

impl Fifo {
    /// Slots the 3.x firmware has (`QU,2`).
    pub(crate) const MAX_DEPTH: u8 = 32;

    /// An empty FIFO of depth 1.
    pub(crate) fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(usize::from(Self::MAX_DEPTH)),
            depth: 1,
        }
    }

    /// Commands waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The depth (`gCurrentFIFOLength`).
    pub(crate) fn depth(&self) -> u8 {
        self.depth
    }

    /// Sets the depth (the caller waited for an empty FIFO, as `CU,4` does).
    pub(crate) fn set_depth(&mut self, depth: u8) {
        self.depth = depth;
    }

    /// True if a parser may copy a command in (`gFIFOLength < gCurrentFIFOLength`).
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < usize::from(self.depth)
    }

    /// Appends a command; the caller checked [`Fifo::has_room`].
    pub(crate) fn push(&mut self, cmd: Command) {
        self.queue.push_back(cmd);
    }

    /// Takes the oldest command.
    pub(crate) fn pop(&mut self) -> Option<Command> {
        self.queue.pop_front()
    }

    /// Empties the FIFO (ES, R).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    /// The oldest command, if any.
    pub(crate) fn front(&self) -> Option<&Command> {
        self.queue.front()
    }

    /// Every waiting command, for in-place rewrites (`SP,3`) and ES's inspection.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Command> {
        self.queue.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::motion::Command;

    #[test]
    fn depth_bounds_room() {
        let mut f = Fifo::new();
        assert!(f.has_room());
        f.push(Command::delay(1));
        assert!(!f.has_room());
        f.set_depth(3);
        f.push(Command::delay(2));
        f.push(Command::delay(3));
        assert!(!f.has_room());
        assert_eq!(f.pop().map(|c| c.delay), Some(1));
        assert!(f.has_room());
        f.set_depth(0);
        f.clear();
        assert!(!f.has_room(), "depth 0 never has room");
    }
}
