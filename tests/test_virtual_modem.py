"""The virtual modem answers like a real one: by hand over its pty, and through python-gsmmodem."""
import pytest
from gsmmodem.exceptions import CmsError, IncorrectPinError, PinRequiredError, TimeoutException
from gsmmodem.modem import GsmModem

from hardware.virtual_modem import VirtualModem

from .modem_helpers import RawPort, wait_until

from .modem_helpers import JA, KA


@pytest.fixture
def raw(vm):
    port = RawPort(vm.port)
    yield port
    port.close()


@pytest.fixture
def library(vm):
    received = []
    modem = GsmModem(vm.port, 115200, smsReceivedCallbackFunc=received.append)
    modem.connect()
    modem.received = received
    yield modem
    modem.close()


def test_basic_dialogue_with_echo(raw):
    assert raw.command("AT").endswith("OK\r\n")
    assert "AT\r" in raw.command("AT")  # echo is on until ATE0, as on a real modem
    raw.command("ATE0")
    answer = raw.command("AT+CGMI")
    assert "AT+CGMI" not in answer and "Seed" in answer
    assert "+CSQ: 21,99" in raw.command("AT+CSQ")
    assert "+CREG: 0,1" in raw.command("AT+CREG?")
    assert '+COPS: 0,0,"Seed Virtual"' in raw.command("AT+COPS?")


def test_errors_follow_cmee(raw):
    raw.command("ATE0")
    assert raw.command("AT+NOPE").strip() == "ERROR"
    raw.command("AT+CMEE=1")
    assert "+CME ERROR: 4" in raw.command("AT+NOPE")
    assert "+CMS ERROR: 321" in raw.command("AT+CMGR=42")


def test_text_mode_send_and_read(raw, vm):
    raw.command("ATE0")
    raw.command("AT+CMGF=1")
    raw.command("AT+CNMI=2,1,0,0")
    prompt = raw.command(f'AT+CMGS="{KA}"', until=(b"> ",))
    assert prompt.endswith("> ")
    raw.serial.write(b"Plain text mode\x1a")
    assert "+CMGS: 1" in raw.read_until((b"OK\r\n",))
    assert vm.messages_for(KA)[0]["body"] == "Plain text mode"

    vm.inject(JA, "Hello from the handset")
    assert '+CMTI: "ME",1' in raw.read_until((b"+CMTI",))
    listing = raw.command('AT+CMGL="ALL"')
    assert f'+CMGL: 1,"REC UNREAD","{JA}"' in listing and "Hello from the handset" in listing
    assert '"REC READ"' in raw.command("AT+CMGR=1")
    raw.command("AT+CMGD=1")
    assert "+CMS ERROR: 321" in raw.command("AT+CMGR=1")


def test_pin(tmp_path):
    with VirtualModem(tmp_path / "pin", latency=0, pin="1234") as vm:
        for pin, refusal in ((None, PinRequiredError), ("0000", IncorrectPinError)):
            modem = GsmModem(vm.port)
            with pytest.raises(refusal):
                modem.connect(pin=pin)
            modem.close()
            assert not vm.pin_ok
        modem = GsmModem(vm.port)
        modem.connect(pin="1234")
        assert modem.signalStrength == 21
        modem.close()


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("Your ticket A012: 3 people ahead, about 12 min.", "GSM-7", 1),
        ("{curly} [brackets] ~ and € count double in GSM-7" * 4, "GSM-7", 2),
        ("ticket 受付番号 A012 です。あと3人、約12分お待ちください。", "UCS-2", 1),
        ("თქვენი ბილეთი A012. თქვენამდე 3 ადამიანია, დაახლოებით 12 წუთი. გთხოვთ, დაელოდოთ.", "UCS-2", 2),
        ("x" * 400, "GSM-7", 3),
    ],
)
def test_library_sends_arrive_intact(library, vm, text, encoding, parts):
    library.sendSms(KA, text)
    delivered = wait_until(lambda: vm.messages_for(KA), message="delivery")
    assert delivered[-1]["body"] == text
    assert (delivered[-1]["encoding"], delivered[-1]["parts"]) == (encoding, parts)


def test_inbound_single_and_multipart_through_the_library(library, vm):
    library.write("AT+CNMI=0,0,0,0")  # read them by listing, not behind our back on +CMTI
    long_reply = "ჩემი პასუხი ძალიან გრძელია " * 5  # 140 characters: 3 UCS-2 parts of 67
    vm.inject(KA, "C")
    vm.inject(JA, "少し遅れます")
    vm.inject(KA, long_reply)
    wait_until(lambda: sum(len(s) for s in vm.storage.values()) >= 5, message="storage")
    stored = library.listStoredSms(memory="ME")
    texts = sorted(s.text for s in stored)
    assert "C" in texts and "少し遅れます" in texts
    parts = [s for s in stored if s.udh]
    assert len(parts) == 3 and "".join(p.text for p in sorted(parts, key=lambda p: p.udh[0].number)) == long_reply


def test_status_reports_are_stored_and_announced(raw, vm):
    raw.command("ATE0")
    raw.command("AT+CNMI=2,1,0,2")
    raw.command("AT+CSMP=49,167,0,0")
    raw.command("AT+CMGF=1")
    raw.command(f'AT+CMGS="{KA}"', until=(b"> ",))
    raw.serial.write(b"report please\x1a")
    answer = raw.read_until((b"+CDSI",))
    assert '+CDSI: "SR",1' in answer
    raw.command('AT+CPMS="SR"')
    assert raw.command("AT+CMGR=1").count('"REC UNREAD",6,1') == 1


def test_failure_injection(library, vm):
    vm.fail_next_sends(1, code=500)
    with pytest.raises(CmsError) as refused:
        library.sendSms(KA, "first")
    assert refused.value.code == 500
    library.sendSms(KA, "second")

    vm.lose_network(0.5)
    assert "+CREG: 0,2" in library.write("AT+CREG?")[0]
    with pytest.raises(CmsError) as no_network:
        library.sendSms(KA, "third")
    assert no_network.value.code == 331
    wait_until(lambda: vm.network_up, message="network back")
    library.sendSms(KA, "fourth")
    assert [m["body"] for m in vm.messages_for(KA)] == ["second", "fourth"]

    vm.go_silent(1.5)
    with pytest.raises(TimeoutException):
        library.write("AT", timeout=0.5)


def test_port_vanishes_and_comes_back(vm, tmp_path):
    link = tmp_path / "ttyVM0"
    first = link.resolve()
    vm.vanish(0.3)
    assert not link.exists()
    wait_until(link.exists, message="port back")
    port = RawPort(str(link))
    assert port.command("AT").endswith("OK\r\n")
    port.close()
    assert link.resolve() != first or link.exists()


def test_full_memory_holds_texts_in_the_network(vm, raw):
    vm.capacity = 2
    for i in range(3):
        vm.inject(KA, f"text {i}")
    assert sum(len(s) for s in vm.storage.values()) == 2 and len(vm.waiting_in_network) == 1
    raw.command("ATE0")
    raw.command("AT+CMGD=1")
    assert [m.text for m in vm.storage["ME"].values()] == ["text 1", "text 2"]
