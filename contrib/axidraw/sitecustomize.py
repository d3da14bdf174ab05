"""Loads plotty_fw_sim_ports into every Python started with this directory on PYTHONPATH,
so that pyserial's port listing (and through it the AxiDraw software) sees the boards that
plotty-fw-sim serves. Then runs the sitecustomize this file hides, if there is one (Debian's,
a virtualenv's), so nothing else changes.
"""

import os
import sys


def _load_shim():
    try:
        import plotty_fw_sim_ports
    except ImportError:
        return
    try:
        plotty_fw_sim_ports.install()
    except ImportError:
        # No pyserial in this Python: nothing to extend.
        pass


def _chain():
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or os.curdir) == here:
            continue
        candidate = os.path.join(entry or os.curdir, "sitecustomize.py")
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as f:
                code = compile(f.read(), candidate, "exec")
            exec(code, {"__name__": "sitecustomize", "__file__": candidate})
            return


_load_shim()
_chain()
