//! Fuzz target(s) firmware_input.

use plotty_fw_sim::{Firmware, FirmwareVersion, NoObserver};

/// `firmware_input`: the input is a sequence of packets, each a control byte then up to 64
/// bytes. The control byte's low 6 bits give the packet length − 1, its top 2 bits the ticks
/// to run after offering it (0, 1, 97 or 2500). A blocked board is offered the rest of the
/// packet again (three times at most) after those ticks. Both firmware versions run the same
/// input.
///
/// Invariants: nothing panics; the board never sends more than 64 bytes per byte it consumed
/// (plus a small constant); its FIFO never holds more than 255 commands; the queries a driver
/// makes between packets (`next_event_in`, `status`) are total.
pub fn firmware_input(data: &[u8]) {
    for version in FirmwareVersion::ALL {
        let mut fw = Firmware::new(version);
        let mut out = Vec::new();
        let mut consumed = 0usize;
        let mut sent = 0usize;
        let mut i = 0;
        while let Some(&ctl) = data.get(i) {
            i += 1;
            let end = (i + usize::from(ctl & 0x3F) + 1).min(data.len());
            let mut packet = &data[i..end];
            i = end;
            let ticks = [0, 1, 97, 2500][usize::from(ctl >> 6)];
            for _ in 0..3 {
                let n = fw.receive(packet);
                assert!(n <= packet.len());
                consumed += n;
                packet = &packet[n..];
                fw.run_ticks(ticks, &mut NoObserver);
                if packet.is_empty() {
                    break;
                }
            }
            fw.take_output(&mut out);
            sent += out.len();
            out.clear();
            let _ = fw.next_event_in();
            let status = fw.status();
            assert!(status.fifo_len <= 255, "FIFO grew to {}", status.fifo_len);
            assert!(
                sent <= 64 * consumed + 256,
                "{sent} bytes sent for {consumed} consumed ({version})"
            );
        }
    }
}
