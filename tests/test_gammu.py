"""A second, independent modem client: Gammu's AT driver must work against the virtual modem."""
import shutil
import subprocess

import pytest

from hardware.virtual_modem import VirtualModem

from .modem_helpers import wait_until


@pytest.fixture
def gammu(tmp_path):
    if shutil.which("gammu") is None:
        pytest.fail("gammu is missing: scripts/test installs Debian's gammu package")
    modem = VirtualModem(tmp_path / "ttyVM0", latency=0).start()
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {modem.port}\nconnection = at115200\n")

    def run(*args):
        result = subprocess.run(["gammu", "-c", str(rc), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run.modem = modem
    yield run
    modem.stop()


def test_gammu_identifies_sends_and_reads(gammu):
    identity = gammu("--identify")
    assert "Manufacturer         : Seed" in identity and "IMEI                 : 356938035643809" in identity

    sent = gammu("sendsms", "TEXT", "+995555123456", "-text", "Hello from Gammu")
    assert "message reference=1" in sent
    delivered = wait_until(lambda: gammu.modem.messages_for("+995555123456"))
    assert delivered[0]["body"] == "Hello from Gammu"

    gammu.modem.inject("+819012345678", "こんにちは Gammu")
    listing = gammu("getallsms")
    assert '"+819012345678"' in listing and "こんにちは Gammu" in listing and "Unicode" in listing
