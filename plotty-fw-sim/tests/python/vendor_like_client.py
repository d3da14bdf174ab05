"""A serial client that finds and drives a board the way the AxiDraw software does, written
for plotty's tests from that software's documented behaviour (no vendor code).

    vendor_like_client.py LINK FIRST_NAME SECOND_NAME

It lists ports with pyserial and picks boards whose description starts with "EiBotBoard" or
whose hardware id starts with "USB VID:PID=04D8:FD92"; it finds a board by nickname
("SER=name" in the hardware id) or by port name; it opens the port with a 1 s timeout,
flushes the input and checks that "v" answers "EBB..."; it plots a few moves, then writes a
new nickname as the software's "write name" does (ST, then RB without waiting for a reply),
and checks that the board drops off (the open port hangs up at once, the port leaves the
listing) and comes back under its new name, freshly booted.

Run by plotty-fw-sim/tests/axidraw_software.rs with the listing shim of contrib/axidraw on
PYTHONPATH. Exits 0 after printing "vendor-like client: all checks passed".
"""

import os
import sys
import time

import serial
from serial.tools.list_ports import comports


def log(message):
    print(message, flush=True)


def wait_for(what, probe, timeout=10.0):
    """Polls probe() until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def ebb_ports():
    """The listed ports that look like an EiBotBoard, as the software's board search sees them."""
    return [
        port
        for port in comports()
        if port.description.startswith("EiBotBoard")
        or port.hwid.startswith("USB VID:PID=04D8:FD92")
    ]


def find_named(name):
    """The port of the board called `name` (nickname or port name), or None."""
    wanted = name.lower()
    for port in comports():
        if ("ser=" + wanted) in port.hwid.lower() or port.device.lower() == wanted:
            return port.device
    return None


def open_checked(device):
    """Opens `device` and checks that it is an EiBotBoard."""
    port = serial.Serial(device, timeout=1.0)
    port.reset_input_buffer()
    port.write(b"v\r")
    line = port.readline()
    assert line.startswith(b"EBB"), "not an EiBotBoard: %r" % line
    return port


def command(port, text):
    port.write((text + "\r").encode("ascii"))
    reply = port.readline()
    assert reply == b"OK\r\n", "%s answered %r" % (text, reply)


def query(port, text, ok=True):
    """A query's answer line, stripped (and its OK line checked, when it has one)."""
    port.write((text + "\r").encode("ascii"))
    answer = port.readline()
    assert answer, "no answer to " + text
    if ok:
        tail = port.readline()
        assert tail.strip() == b"OK", "%s: %r then %r" % (text, answer, tail)
    return answer.strip().decode("ascii")


def wait_idle(port):
    wait_for("the moves to end", lambda: int(query(port, "QG", ok=False), 16) & 0x08 == 0)


def main():
    link, first, second = sys.argv[1:4]

    # The board search: by description and USB id, then by nickname, then by port name.
    boards = wait_for(
        "the simulator in the port listing",
        lambda: [b for b in ebb_ports() if b.device == link],
    )
    assert find_named(first) == link, "not found by its nickname " + first
    assert find_named(link) == link, "not found by its port name"
    log("listed: %s | %s | %s" % (boards[0].device, boards[0].description, boards[0].hwid))
    log("EiBotBoards listed: " + " ".join(sorted(b.device for b in ebb_ports())))

    port = open_checked(find_named(first))
    version = query(port, "V", ok=False)
    assert "Firmware Version " in version, version
    log("opened by nickname: " + version)

    # A few moves: a 10 mm-side diamond with the pen down, then a move away.
    command(port, "EM,1,1")
    command(port, "SP,0,150")
    for m1, m2 in ((1600, 0), (0, 1600), (-1600, 0), (0, -1600)):
        command(port, "SM,300,%d,%d" % (m1, m2))
    command(port, "SP,1,150")
    command(port, "SM,200,800,800")
    wait_idle(port)
    steps = query(port, "QS")
    assert steps == "800,800", steps
    log("plotted; QS " + steps)

    # "Write name": ST, then RB with a read for the reply, as the software does. A real board
    # drops off USB; the read must end at once (an error or end of file), not time out.
    assert query(port, "QT") == first
    command(port, "ST," + second)
    started = time.monotonic()
    port.write(b"RB\r")
    try:
        reply = port.readline()
        assert reply == b"", "RB answered %r" % reply
    except serial.SerialException:
        pass
    waited = time.monotonic() - started
    assert waited < 0.9, "the read after RB took %.3f s (a timeout, not a hang-up)" % waited
    port.close()
    log("RB: port hung up after %.3f s" % waited)

    wait_for(
        "the board to leave the listing",
        lambda: link not in [b.device for b in ebb_ports()] and not os.path.lexists(link),
    )
    log("gone from the listing")

    device = wait_for("the board back under its new name", lambda: find_named(second))
    assert device == link, device
    assert find_named(first) is None, "the old name is still listed"
    port = open_checked(device)
    assert query(port, "V", ok=False).startswith("EBB")
    name = query(port, "QT")
    assert name == second, name
    # Freshly booted: the step counters are zero again.
    steps = query(port, "QS")
    assert steps == "0,0", steps
    port.close()
    log("back as %s, QT %s, QS %s" % (device, name, steps))
    log("vendor-like client: all checks passed")


if __name__ == "__main__":
    main()
