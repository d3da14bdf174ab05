//! Step timing: planned blocks to firmware moves with the firmware's own integer arithmetic.

pub mod timing;

#[cfg(test)]
mod oracle;
