"""List plotty-fw-sim boards in pyserial's port listing, as the USB devices they simulate.

The AxiDraw software finds an EiBotBoard, and accepts a port given by name or by nickname,
only among the ports that ``serial.tools.list_ports.comports()`` returns. On Linux that
listing globs fixed names in /dev and reads each port's USB identity from sysfs, which only
the kernel writes: a simulator's pseudo-terminal is never in it, and without root no file
can be put where it looks.

This module adds the simulator's ports to the listing instead. ``plotty-fw-sim serve``
writes a port card for each board it serves (one ``key=value`` file per process, in the
directory ``$PLOTTY_FW_SIM_PORTS``, else ``$XDG_RUNTIME_DIR/plotty-fw-sim``, else
``/tmp/plotty-fw-sim-UID``), and ``install()`` wraps ``comports`` so that every live card
is listed as a USB device 04D8:FD92 with the product string "EiBotBoard" and the board's
nickname as its serial number -- what a real EBB reports, so the search by description,
by USB id, by port name and by nickname all find it. Cards whose process or pty is gone
are skipped.

Python loads it through ``sitecustomize`` when this directory is on ``PYTHONPATH``; see
the README, "Use the simulator with the AxiDraw software".
"""

import glob
import os

PORTS_DIR_ENV = "PLOTTY_FW_SIM_PORTS"


def ports_dir():
    """The port-card directory, chosen as the simulator chooses it."""
    configured = os.environ.get(PORTS_DIR_ENV)
    if configured:
        return configured
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "plotty-fw-sim")
    return os.path.join("/tmp", "plotty-fw-sim-%d" % os.geteuid())


def read_card(path):
    """The card's fields as a dict, or None if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    card = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            card[key.strip()] = value.strip()
    return card


def live(card):
    """Whether a card describes a board being served now."""
    try:
        pid = int(card.get("pid", ""))
    except ValueError:
        return False
    tty = card.get("tty", "")
    device = card.get("device", "")
    if not (os.path.exists("/proc/%d" % pid) and tty and os.path.exists(tty)):
        return False
    # The device is the pty itself or a link to it (gone while the board is off USB).
    return bool(device) and os.path.realpath(device) == os.path.realpath(tty)


def sim_ports():
    """ListPortInfo entries for the boards the simulator serves now."""
    from serial.tools.list_ports_common import ListPortInfo

    ports = []
    for path in sorted(glob.glob(os.path.join(ports_dir(), "*.port"))):
        card = read_card(path)
        if card is None or not live(card):
            continue
        try:
            vid = int(card.get("vid", "04D8"), 16)
            pid = int(card.get("product_id", "FD92"), 16)
        except ValueError:
            continue
        info = ListPortInfo(card["device"], skip_link_detection=True)
        info.vid = vid
        info.pid = pid
        info.product = card.get("product", "EiBotBoard")
        info.serial_number = card.get("serial") or None
        info.location = card.get("location") or None
        # description = product, hwid = "USB VID:PID=04D8:FD92 SER=name LOCATION=..."
        info.apply_usb_info()
        ports.append(info)
    return ports


def install():
    """Wraps pyserial's comports() (in every module that holds it) to add the simulator's
    ports; an entry the system already lists for the same path (a /dev/ttyACM* link made
    as root) is replaced by the one carrying the USB identity. Idempotent."""
    import serial.tools.list_ports as list_ports

    modules = [list_ports]
    for name in ("list_ports_posix", "list_ports_linux"):
        try:
            modules.append(__import__("serial.tools." + name, fromlist=[name]))
        except ImportError:
            pass
    original = list_ports.comports
    if getattr(original, "plotty_fw_sim", False):
        return

    def comports(*args, **kwargs):
        sims = sim_ports()
        devices = {info.device for info in sims}
        listed = [info for info in original(*args, **kwargs) if info.device not in devices]
        return listed + sims

    comports.plotty_fw_sim = True
    comports.__doc__ = original.__doc__
    for module in modules:
        if getattr(module, "comports", None) is original:
            module.comports = comports


if __name__ == "__main__":
    # python3 -m plotty_fw_sim_ports: what the listing shows, as the AxiDraw software reads it.
    install()
    from serial.tools.list_ports import comports as listed

    for port in listed():
        print("%s | %s | %s" % (port.device, port.description, port.hwid))
