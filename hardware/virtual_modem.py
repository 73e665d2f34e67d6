"""Where the virtual modem has always been imported from; it lives in `hardware.vmodem`.
`python -m hardware.virtual_modem --link /tmp/ttyVM0` runs one for a terminal or Gammu."""
from .vmodem import PROFILES, Delivered, ModemError, Profile, VirtualModem, main

__all__ = ["PROFILES", "Delivered", "ModemError", "Profile", "VirtualModem", "main"]

if __name__ == "__main__":
    main()
