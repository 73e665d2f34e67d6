"""The virtual modem answers like a real one: by hand over its pty, and through python-gsmmodem."""
import time
from datetime import datetime

import pytest
from gsmmodem.exceptions import CmsError, IncorrectPinError, PinRequiredError, TimeoutException
from gsmmodem.modem import GsmModem
from gsmmodem.pdu import _encodeAddressField, decodeSmsPdu, unpackSeptets
from gsmmodem.util import SimpleOffsetTzInfo

from hardware.pdu import deliver_pdus
from hardware.virtual_modem import PROFILES, VirtualModem

from .modem_helpers import JA, KA, RawPort, wait_until


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


# --- the wire format ------------------------------------------------------------------------------


def read_bytes(port, marker=b"OK\r\n", timeout=5.0) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not data.endswith(marker):
        data += port.serial.read(256)
    return data


def test_a_multi_line_answer_is_framed_like_a_real_modems(vm, raw):
    """One CRLF between lines, not two: an empty line in a listing ends smsd's CMGL parsing."""
    vm.inject(KA, "C")
    raw.command("ATE0")
    stored = vm.storage["ME"][1]
    raw.serial.write(b"AT+CMGL=4\r")
    assert read_bytes(raw) == f"\r\n+CMGL: 1,0,,{stored.tpdu_length}\r\n{stored.pdu}\r\n\r\nOK\r\n".encode()
    vm.inject(JA, "D")
    second = vm.storage["ME"][2]
    raw.serial.write(b"AT+CMGL=4\r")
    assert read_bytes(raw) == (f"\r\n+CMGL: 1,1,,{stored.tpdu_length}\r\n{stored.pdu}\r\n"
                               f"+CMGL: 2,0,,{second.tpdu_length}\r\n{second.pdu}\r\n\r\nOK\r\n").encode()
    raw.serial.write(b"AT\r")
    assert read_bytes(raw) == b"\r\nOK\r\n"


# --- the SIM ----------------------------------------------------------------------------------------


def test_three_wrong_pins_lock_the_sim_until_its_puk(tmp_path):
    with VirtualModem(tmp_path / "ttyPIN", latency=0, pin="1234") as vm:
        port = RawPort(vm.port)
        port.command("ATE0")
        port.command("AT+CMEE=1")
        for left in (2, 1, 0):
            assert "+CME ERROR: 16" in port.command('AT+CPIN="0000"')
            assert vm.pin_attempts_left == left
        assert "+CPIN: SIM PUK" in port.command("AT+CPIN?")
        assert "+CME ERROR: 12" in port.command("AT+CMGL=4")
        assert "+CME ERROR: 12" in port.command('AT+CPIN="1234"')  # the right PIN is too late now
        assert vm.pin_attempts == 4 and not vm.pin_ok
        assert "356938035643809" in port.command("AT+CGSN")  # the modem itself still answers
        port.command('AT+CPIN="12345678","4321"')
        assert "+CPIN: READY" in port.command("AT+CPIN?") and vm.pin == "4321" and vm.pin_attempts_left == 3
        port.close()


def test_no_sim(tmp_path):
    with VirtualModem(tmp_path / "ttyNOSIM", latency=0, no_sim=True) as vm:
        port = RawPort(vm.port)
        port.command("ATE0")
        assert port.command("AT+CPIN?").strip() == "ERROR"  # CMEE=0: no reason given
        port.command("AT+CMEE=1")
        assert "+CME ERROR: 10" in port.command("AT+CPIN?")
        assert "+CME ERROR: 10" in port.command("AT+CIMI")
        assert "+CREG: 0,0" in port.command("AT+CREG?")
        port.close()


def test_each_modem_has_its_own_imei_and_imsi(tmp_path):
    with VirtualModem(tmp_path / "a", latency=0, imei="490154203237518", imsi="282010000000001") as a, \
            VirtualModem(tmp_path / "b", latency=0) as b:
        pa, pb = RawPort(a.port), RawPort(b.port)
        assert "490154203237518" in pa.command("AT+CGSN") and "282010000000001" in pa.command("AT+CIMI")
        assert "356938035643809" in pb.command("AT+CGSN") and "234150000000000" in pb.command("AT+CIMI")
        pa.close()
        pb.close()


def test_port_moves_to_another_name_with_the_same_imei(tmp_path):
    by_id = tmp_path / "by-id" / "usb-Seed_Virtual_356938035643809-if00-port0"
    with VirtualModem(tmp_path / "ttyUSB0", latency=0, pin="1234", by_id=by_id) as vm:
        port = RawPort(str(by_id))
        port.command('AT+CPIN="1234"')
        port.close()
        vm.move(tmp_path / "ttyUSB2", seconds=0.3)
        assert not (tmp_path / "ttyUSB0").exists() and not by_id.exists()
        wait_until((tmp_path / "ttyUSB2").exists, message="port back under its new name")
        assert vm.port == str(tmp_path / "ttyUSB2") and not (tmp_path / "ttyUSB0").exists()
        assert by_id.resolve() == (tmp_path / "ttyUSB2").resolve()
        port = RawPort(vm.port)
        assert "356938035643809" in port.command("AT+CGSN")
        assert "+CPIN: SIM PIN" in port.command("AT+CPIN?")  # powered up afresh: the PIN again
        port.close()


# --- profiles ---------------------------------------------------------------------------------------


@pytest.fixture
def modem_of(tmp_path):
    started = []

    def start(profile, **options):
        vm = VirtualModem(tmp_path / f"tty{len(started)}", latency=0, profile=profile, **options).start()
        port = RawPort(vm.port)
        port.command("ATE0")
        started.append((vm, port))
        return vm, port

    yield start
    for vm, port in started:
        port.close()
        vm.stop()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_python_gsmmodem_works_with_every_profile(tmp_path, profile):
    with VirtualModem(tmp_path / "ttyVM0", latency=0, profile=profile) as vm:
        modem = GsmModem(vm.port, 115200, smsReceivedCallbackFunc=lambda sms: None)
        modem.connect()
        try:
            modem.sendSms(KA, "ticket A012")
            assert vm.messages_for(KA)[0]["body"] == "ticket A012"
            modem.write("AT+CNMI=0,0,0,0")
            vm.inject(JA, "on my way")
            memory = vm.memories[0]
            assert [s.text for s in modem.listStoredSms(memory=memory)] == ["on my way"]
        finally:
            modem.close()


def test_sim800_has_only_the_sim_and_speaks_in_words(modem_of):
    vm, port = modem_of("sim800", pin="1234")
    port.command("AT+CMEE=2")
    assert "+CME ERROR: SIM PIN required" in port.command("AT+CMGL=4")
    port.command('AT+CPIN="1234"')
    assert '+CPMS: ("SM"),("SM"),("SM")' in port.command("AT+CPMS=?")
    for memories in ('"ME"', '"SR"', '"SM","SM","ME"'):
        assert "+CMS ERROR: operation not allowed" in port.command(f"AT+CPMS={memories}")
    assert "+CMS ERROR: invalid memory index" in port.command("AT+CMGR=7")
    assert "+CMS ERROR: operation not supported" in port.command("AT+CNMI=2,1,0,2,0")  # no SR
    port.command("AT+CMEE=1")
    assert "+CMS ERROR: 321" in port.command("AT+CMGR=7")
    port.command("AT+CNMI=2,1,0,1,0")
    port.command("AT+CSMP=49,167,0,0")
    port.command("AT+CMGF=1")
    port.command(f'AT+CMGS="{KA}"', until=(b"> ",))
    port.serial.write(b"report please\x1a")
    assert "+CDS: " in port.read_until((b"+CDS: ",))  # straight to the port: there is nowhere to store it
    vm.inject(JA, "hello")
    assert vm.storage["SM"] and not vm.storage["ME"]


def test_huawei_gives_gprs_registration_and_location(modem_of):
    vm, port = modem_of("huawei")
    assert "+CGREG: 0,1" in port.command("AT+CGREG?")
    port.command("AT+CREG=2")
    assert '+CREG: 2,1,"1A2B","00C3D4E5"' in port.command("AT+CREG?")
    vm.lose_network(0.3)
    assert "+CREG: 2\r\n" in port.read_until((b"+CREG: 2",))
    assert '+CREG: 1,"1A2B","00C3D4E5"' in port.read_until((b'+CREG: 1,',))
    assert '+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")' in port.command("AT+CPMS=?")
    assert "+CMS ERROR: 302" in port.command('AT+CPMS="SR"')


def test_default_profile_knows_no_cgreg(modem_of):
    _vm, port = modem_of("default")
    port.command("AT+CMEE=1")
    assert "+CME ERROR: 4" in port.command("AT+CGREG?")


def test_full_sr_drops_new_reports_until_room_is_made(modem_of):
    vm, port = modem_of("full_sr")
    assert "+CPMS: 20,20,0,100,0,100" in port.command('AT+CPMS="SR","SM","SM"')
    assert '+CPMS: "SR",20,20,"SM",0,100' in port.command("AT+CPMS?")
    port.command("AT+CNMI=2,1,0,2,0")
    port.command("AT+CSMP=49,167,0,0")
    port.command("AT+CMGF=1")
    port.command(f'AT+CMGS="{KA}"', until=(b"> ",))
    port.serial.write(b"first\x1a")
    port.read_until((b"OK\r\n",))
    wait_until(lambda: vm.dropped_reports == 1, message="report dropped")
    port.command("AT+CMGD=1")
    port.command(f'AT+CMGS="{KA}"', until=(b"> ",))
    port.serial.write(b"second\x1a")
    assert '+CDSI: "SR",1' in port.read_until((b"+CDSI",))


def test_text_mode_in_ucs2_carries_emoji_and_hex_numbers(modem_of):
    vm, port = modem_of("textmode_ucs2")
    assert "+CMGF: 1" in port.command("AT+CMGF?")  # this model starts in text mode
    port.command('AT+CSCS="UCS2"')
    port.command("AT+CNMI=2,1,0,0,0")
    number = KA.encode("utf-16-be").hex().upper()
    port.command(f'AT+CMGS="{number}"', until=(b"> ",))
    port.serial.write("see you 😀".encode("utf-16-be").hex().upper().encode() + b"\x1a")
    assert "+CMGS: 1" in port.read_until((b"OK\r\n",))
    assert vm.messages_for(KA)[0]["body"] == "see you 😀"
    vm.inject(JA, "ok 👍")
    listing = port.command('AT+CMGL="ALL"')
    assert JA.encode("utf-16-be").hex().upper() in listing
    assert "006F006B0020D83DDC4D" in listing  # "ok " and the thumb as a surrogate pair


# --- what handsets send -----------------------------------------------------------------------------


def decoded(pdus) -> tuple[str, list]:
    parts = [decodeSmsPdu(pdu) for pdu, _ in pdus]
    text = "".join(p["text"] for p in parts)
    # python-gsmmodem gives one code point per UTF-16 unit; join the surrogate pairs back
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le"), parts


WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=SimpleOffsetTzInfo(0))


@pytest.mark.parametrize(("text", "parts"), [
    ("on my way 🏃‍♀️ see you", 1),
    ("😀" * 35, 1),  # 70 units: still one part
    ("😀" * 36, 2),
    ("ჩემი პასუხი 🙂 " * 20, 5),
    ("line\x1bbreak\ttab\x07bell", 1),  # control characters outside GSM-7 go as UCS-2
    ("日本語\x1b\x00テキスト", 1),
])
def test_handset_pdus_are_well_formed_ucs2(text, parts):
    pdus = deliver_pdus(KA, text, WHEN, 9, "+447785016005")
    joined, decoded_parts = decoded(pdus)
    assert joined == text and len(pdus) == parts
    for part in decoded_parts:
        assert len(part["text"]) <= (67 if parts > 1 else 70)
        if parts > 1:
            assert (part["udh"][0].reference, part["udh"][0].parts) == (9, parts)
        units = part["text"].encode("utf-16-le", "surrogatepass")
        assert not 0xD800 <= int.from_bytes(units[-2:], "little") <= 0xDBFF  # no pair split


def test_a_pair_can_be_split_across_parts_when_asked():
    text = "😀" * 40  # 80 units: the 34th emoji would take units 67 and 68
    kept = [decodeSmsPdu(p)["text"] for p, _ in deliver_pdus(KA, text, WHEN, 1, "+447785016005")]
    split = [decodeSmsPdu(p)["text"] for p, _ in deliver_pdus(KA, text, WHEN, 1, "+447785016005", split_pairs=True)]
    assert [len(t) for t in kept] == [66, 14] and [len(t) for t in split] == [67, 13]
    assert 0xD800 <= ord(split[0][-1]) <= 0xDBFF and 0xDC00 <= ord(split[1][0]) <= 0xDFFF
    assert "".join(split).encode("utf-16-le", "surrogatepass").decode("utf-16-le") == text


def test_gsm7_escapes_are_never_split_and_form_feed_is_an_escape():
    text = "x" * 152 + "€" + "y" * 10
    pdus = deliver_pdus(KA, text, WHEN, 3, "+447785016005")
    assert [decodeSmsPdu(p)["text"] for p, _ in pdus] == ["x" * 152, "€" + "y" * 10]
    single = bytearray.fromhex(deliver_pdus(KA, "a\fb", WHEN, 3, "+447785016005")[0][0])
    assert single[-5] == 4 and list(unpackSeptets(single[-4:], 4)) == [0x61, 0x1B, 0x0A, 0x62]


def test_inject_delivers_emoji_through_the_library(library, vm):
    library.write("AT+CNMI=0,0,0,0")
    text = "abc" + "Thanks! 🙏 " * 14  # 157 UTF-16 units: 3 parts, the 6th 🙏 on units 67 and 68
    vm.inject(KA, text, split_pairs=True)
    stored = sorted(library.listStoredSms(memory="ME"), key=lambda s: s.udh[0].number)
    assert len(stored) == 3
    assert 0xD800 <= ord(stored[0].text[-1]) <= 0xDBFF
    joined = "".join(s.text for s in stored)
    assert joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le") == text


def test_an_emoji_sent_in_pdu_mode_reaches_the_handset_whole(raw, vm):
    body = "see you 😀".encode("utf-16-be")
    tpdu = bytes([0x01, 0x00]) + bytes(_encodeAddressField(KA)) + bytes([0x00, 0x08, len(body)]) + body
    raw.command("ATE0")
    raw.command(f"AT+CMGS={len(tpdu)}", until=(b"> ",))
    raw.serial.write(b"00" + tpdu.hex().upper().encode() + b"\x1a")
    assert "+CMGS: " in raw.read_until((b"OK\r\n",))
    assert vm.messages_for(KA)[0]["body"] == "see you 😀" and vm.messages_for(KA)[0]["encoding"] == "UCS-2"
