//! Command dispatch (`parse_packet`): checksum (3.x `CU,54`), the 1–2 letter name, the
//! version's command table, the after-the-fact extra-parameter check and the error lines.
//!
//! Handlers follow the firmware's shape: print the command name first (future mode), extract
//! every parameter (errors accumulate as bits; `!5` prints at once), bail if any error bit is
//! set, act, print the line ending. Queued commands may block the parser ([`Flow::Block`]).
//! Split by topic: [`motion`] (SM … TD, ES, EM, CS), [`pen`] (SP, TP, S2, SC, SR, QR, QP),
//! [`query`] (QS, QG, QM, QE, QB, QC, QL/SL, QN/SN/NI/ND, QT/ST, QU, V, PI/PO/PD, CK, SE),
//! [`config`] (CU, R, RB, BL, CM).

mod config;
mod motion;
mod pen;
mod query;

use crate::firmware::{Firmware, Flow, Pending};
use crate::parser::{ChecksumError, Params, verify_checksum};

impl Firmware {
    /// Parses and runs one command line (without its terminator).
    pub(crate) fn dispatch(&mut self, full: &[u8]) {
        let mut len = full.len();
        if self.version.is_v3() && self.checksums {
            match verify_checksum(full, &mut self.io) {
                Ok(n) => len = n,
                Err(e) => {
                    match e {
                        ChecksumError::NotFound => {
                            self.io.text(b"!10 Err: No checksum found but required");
                        }
                        ChecksumError::Incorrect { expected } => {
                            self.io.fmt(format_args!(
                                "!9 Err: Checksum incorrect, expected {expected}"
                            ));
                        }
                    }
                    self.io.norm_end();
                    if self.io.failed() {
                        self.io.print_errors();
                    }
                    return;
                }
            }
        }
        let line = full.get(..len).unwrap_or(full);
        // An empty command reads its terminator as the name.
        let c1 = line.first().copied().unwrap_or(b'\r').to_ascii_uppercase();
        let c2 = line
            .get(1)
            .copied()
            .filter(|&c| c != b',')
            .map(|c| c.to_ascii_uppercase());
        let start = 1 + usize::from(c2.is_some());
        self.io.set_name(c1, c2);
        let mut p = Params::new(line, start);
        let is_reset = c1 == b'R' && c2.is_none();
        match self.run_command(c1, c2, &mut p) {
            Some(Flow::Done) => self.finish_command(p.has_leftover(), is_reset),
            Some(Flow::Block(wait)) => {
                self.pending = Some(Pending {
                    wait,
                    leftover: p.has_leftover(),
                });
                self.try_resolve();
            }
            Some(Flow::Gone) => {}
            None => {
                self.io.print_unknown(c1, c2);
                self.finish_command(p.has_leftover(), false);
            }
        }
    }

    /// The version's command table; `None` for an unknown command.
    fn run_command(&mut self, c1: u8, c2: Option<u8>, p: &mut Params) -> Option<Flow> {
        let v3 = self.version.is_v3();
        let flow = match (c1, c2.unwrap_or(0)) {
            (b'S', b'M') => self.cmd_sm(p),
            (b'X', b'M') => self.cmd_xm(p),
            (b'H', b'M') => self.cmd_hm(p),
            (b'L', b'M') if self.version.has_lm() => self.cmd_lm(p),
            (b'L', b'T') if self.version.has_lm() => self.cmd_lt(p),
            (b'L', b'3') if v3 => self.cmd_l3(p),
            (b'T', b'3') if v3 => self.cmd_t3(p),
            (b'T', b'D') if v3 => self.cmd_td(p),
            (b'T', b'R') if v3 => self.cmd_tr(p),
            (b'E', b'S') => self.cmd_es(p),
            (b'E', b'M') => self.cmd_em(p),
            (b'C', b'S') => self.cmd_cs(),
            (b'S', b'P') => self.cmd_sp(p),
            (b'T', b'P') => self.cmd_tp(p),
            (b'S', b'2') => self.cmd_s2(p),
            (b'S', b'C') => self.cmd_sc(p),
            (b'S', b'R') => self.cmd_sr(p),
            (b'Q', b'R') => self.cmd_qr(),
            (b'Q', b'P') => self.cmd_qp(),
            (b'Q', b'S') => self.cmd_qs(),
            (b'Q', b'E') if self.version.em_is_queued() => self.cmd_qe(),
            (b'Q', b'M') => self.cmd_qm(),
            (b'Q', b'G') => self.cmd_qg(),
            (b'Q', b'B') => self.cmd_qb(),
            (b'Q', b'C') => self.cmd_qc(),
            (b'Q', b'L') => self.cmd_ql(p),
            (b'S', b'L') => self.cmd_sl(p),
            (b'Q', b'N') => self.cmd_qn(),
            (b'S', b'N') => self.cmd_sn(p),
            (b'N', b'I') => self.cmd_ni(),
            (b'N', b'D') => self.cmd_nd(),
            (b'Q', b'T') => self.cmd_qt(),
            (b'S', b'T') => self.cmd_st(p),
            (b'Q', b'U') if v3 => self.cmd_qu(p),
            (b'S', b'E') => self.cmd_se(p),
            (b'P', b'I') => self.cmd_pi(p),
            (b'P', b'O') => self.cmd_po(p),
            (b'P', b'D') => self.cmd_pd(p),
            (b'C', b'K') => self.cmd_ck(p),
            (b'C', b'U') => self.cmd_cu(p),
            (b'C', b'M') if v3 => self.cmd_cm(),
            (b'V', 0) => self.cmd_v(),
            (b'R', 0) => self.cmd_r(),
            (b'R', b'B') => self.cmd_rb(),
            (b'B', b'L') => self.cmd_bl(),
            _ => return None,
        };
        Some(flow)
    }
}
