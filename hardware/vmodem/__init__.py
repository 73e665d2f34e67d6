"""Our virtual GSM modem: a pseudo-terminal that answers 3GPP TS 27.005/27.007 AT commands the
way a USB modem does, delivers sent texts to virtual handsets and accepts texts "from" any number.

It is part of the product (the embedded default and the virtual phone page), not a test mock:
python-gsmmodem and Gammu talk to it over a real serial device. Profiles play particular modem
models; failure injection (CMS errors, network loss, silence, the port vanishing or moving,
garbage bytes, a locked or missing SIM) lets the gateway's recovery be tested.
"""
from .errors import ModemError
from .modem import VirtualModem, main
from .network import Delivered
from .profiles import PROFILES, Profile

__all__ = ["PROFILES", "Delivered", "ModemError", "Profile", "VirtualModem", "main"]
