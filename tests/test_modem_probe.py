"""`flask --app run modem probe`: what it tells about a modem, against the virtual modem's profiles."""
import os

import pytest

from app import create_app
from hardware.probe import ATLink, probe
from hardware.virtual_modem import PROFILES, VirtualModem

from .modem_helpers import RawPort


@pytest.fixture
def modem_in(tmp_path):
    started = []

    def start(profile="default", **options):
        vm = VirtualModem(tmp_path / f"ttyVM{len(started)}", latency=0, profile=profile, **options).start()
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.stop()


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_is_ready(modem_in, profile):
    vm = modem_in(profile, imei="490154203237518")
    result = probe(vm.port)
    assert result.ready, result.report()
    assert result.report()[-1] == "Verdict: ready"
    assert (result.imei, result.imsi, result.sim) == ("490154203237518", "234150000000000", "READY")
    assert (result.manufacturer, result.model) == (vm.profile.manufacturer, vm.profile.model)
    assert result.pdu_mode and '"SM"' in result.memories and "UCS2" in result.charsets
    assert (result.signal, result.dbm, result.registration) == (21, -71, "home")
    assert (result.operator, result.smsc) == ("Seed Virtual", "+447785016005")


@pytest.mark.parametrize("profile", ["default", "sim800"])  # numeric and verbose errors
def test_a_sim_asking_for_its_pin_is_reported_and_never_given_one(modem_in, profile):
    vm = modem_in(profile, pin="1234")
    result = probe(vm.port)
    assert result.sim == "SIM PIN" and result.problems == ["SIM needs its PIN: set MODEM_PIN"]
    assert vm.pin_attempts == 0 and vm.pin_attempts_left == 3
    configured = probe(vm.port, pin_configured=True)
    assert configured.ready and "gateway gives MODEM_PIN" in configured.notes[0]
    assert vm.pin_attempts == 0


def test_a_sim_that_wants_its_puk(modem_in):
    vm = modem_in("sim800", pin="1234")
    port = RawPort(vm.port)
    for _ in range(3):
        port.command('AT+CPIN="0000"')
    port.close()
    result = probe(vm.port)
    assert result.sim == "SIM PUK"
    assert result.problems == ["SIM is locked: it needs the PUK; unlock it in a phone"]
    assert vm.pin_attempts == 3


@pytest.mark.parametrize("profile", ["default", "sim800"])
def test_no_sim(modem_in, profile):
    result = probe(modem_in(profile, no_sim=True).port)
    assert result.sim == "no SIM" and result.problems == ["no SIM: put one in (with the modem unplugged)"]
    assert result.imei == "356938035643809"  # the modem answers without a SIM


def test_network_down(modem_in):
    vm = modem_in("huawei")
    vm.lose_network(60)
    result = probe(vm.port)
    assert not result.ready and result.registration == "searching" and result.operator is None
    assert "not registered (searching): check the antenna/SIM credit" in result.problems
    assert any(p.startswith("no signal") for p in result.problems)


def test_registration_denied_and_roaming(modem_in):
    vm = modem_in()
    vm.barred = True
    assert "registration denied" in probe(vm.port).problems[0]
    vm.barred, vm.roaming = False, True
    roaming = probe(vm.port)
    assert roaming.ready and roaming.registration == "roaming" and "roaming" in roaming.notes[0]


def test_no_smsc_on_the_sim(modem_in):
    vm = modem_in(smsc="")
    assert probe(vm.port).problems == ["no SMSC on the SIM: set MODEM_SMSC"]
    assert probe(vm.port, smsc_configured=True).ready


def test_a_port_where_nothing_answers(tmp_path):
    master, slave = os.openpty()
    try:
        result = probe(os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert not result.ready and result.problems[0].startswith("no answer to AT")
    missing = probe(str(tmp_path / "ttyUSB9"))
    assert missing.problems[0].startswith(f"cannot open {tmp_path / 'ttyUSB9'}")


def test_the_link_reads_echo_and_both_error_forms(modem_in):
    vm = modem_in("sim800")
    with ATLink(vm.port) as link:
        answer = link.command("AT+CGMI")  # echo is still on
        assert answer.ok and answer.lines == ["SIMCOM_Ltd"]
        link.command("AT+CMEE=1")
        numeric = link.command("AT+CMGR=9")
        link.command("AT+CMEE=2")
        verbose = link.command("AT+CMGR=9")
        assert (numeric.kind, numeric.code) == (verbose.kind, verbose.code) == ("CMS", 321)
        assert verbose.final == "+CMS ERROR: invalid memory index"


# --- the command ------------------------------------------------------------------------------------


@pytest.fixture
def cli_app(tmp_path):
    def make(**config):
        return create_app({"TESTING": True, "SECRET_KEY": "tests-only", "INSTANCE_PATH": str(tmp_path / "instance"),
                           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'seed.db'}", **config})

    return make


def test_probe_command_without_a_port_probes_a_virtual_modem(cli_app):
    result = cli_app().test_cli_runner().invoke(args=["modem", "probe", "--profile", "sim800"])
    assert result.exit_code == 0, result.output
    assert "temporary virtual modem (sim800)" in result.output and "SIMCOM_SIM800L" in result.output
    assert result.output.rstrip().endswith("Verdict: ready")


def test_probe_command_exits_1_with_what_to_do(cli_app, modem_in):
    vm = modem_in(pin="1234")
    result = cli_app().test_cli_runner().invoke(args=["modem", "probe", vm.port])
    assert result.exit_code == 1
    assert "Verdict: not ready\n  - SIM needs its PIN: set MODEM_PIN" in result.output
    assert vm.pin_attempts == 0


def test_probe_command_finds_a_modem_by_imei(cli_app, modem_in, tmp_path):
    vm = modem_in("huawei", imei="490154203237518")
    modem_in(imei="356938035643809")
    app = cli_app(MODEM_PORT="imei:490154203237518", MODEM_SEARCH_PATHS=(str(tmp_path / "ttyVM*"),))
    result = app.test_cli_runner().invoke(args=["modem", "probe"])
    assert result.exit_code == 0, result.output
    assert f"IMEI 490154203237518 is on {vm.port}" in result.output and "E3131" in result.output
