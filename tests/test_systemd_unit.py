"""Tests of systemd/skylab-watch.service: it loads cleanly in systemd, keeps its
sandbox tight, and holds every directive the daemon relies on.

The checks that run `systemd-analyze` (Debian package `systemd`) are skipped
where it is not installed; the directive checks only read the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "skylab-watch.service"
FOLDERS_EXAMPLE = SYSTEMD_DIR / "skylab-watch.service.d" / "folders.conf.example"

SHIPPED_EXECUTABLE = "/usr/local/bin/skylab-watch"
SHIPPED_KILL = "/bin/kill"
MAX_EXPOSURE = 4.0
"""Highest `systemd-analyze security` exposure accepted (0 = locked down, 10 = unprotected)."""

HARDENING_KEYS = frozenset({
    "NoNewPrivileges", "ProtectSystem", "PrivateMounts", "PrivateTmp", "ProtectHome", "PrivateDevices",
    "DevicePolicy", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc", "ProcSubset",
    "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter",
    "SystemCallErrorNumber", "CapabilityBoundingSet", "AmbientCapabilities", "UMask", "RemoveIPC",
    "PrivateIPC", "KeyringMode", "PrivateUsers", "IPAddressDeny", "IPAddressAllow",
    "MemoryHigh", "MemoryMax", "TasksMax",
})

# systemd-analyze output, stable whatever the caller's environment: warnings
# shown (a stray SYSTEMD_LOG_LEVEL=err would hide them, =debug would flood the
# output with benign lines naming the unit), no colours, no pager.
ANALYZE_ENV = {"SYSTEMD_LOG_LEVEL": "notice", "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_COLORS": "0",
               "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}


# --- helpers ---------------------------------------------------------------

def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Given unit-file text, return {section: [(key, value), ...]} in file order.

    Keys may repeat (systemd accumulates most of them), so this is not a
    configparser dict. Comments and backslash continuations are handled.
    """
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        line, pending = pending + stripped, ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None and "=" in line:
            key, value = line.split("=", 1)
            current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    """Return every value given to `key` in a parsed section, in order."""
    return [v for k, v in section if k == key]


def systemd_analyze() -> str:
    """Return the path of systemd-analyze; skip the test if it is not installed."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian/Ubuntu package: systemd)")
    return path


def systemd_version(analyze: str) -> int:
    """Return systemd's major version, e.g. 252 from 'systemd 252 (252.39-1~deb12u2)'."""
    first = subprocess.run([analyze, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.match(r"systemd (\d+)", first)
    return int(match.group(1)) if match else 0


def local_executable() -> str:
    """Return this environment's skylab-watch script, to stand in for /usr/local/bin/skylab-watch.

    Falls back to the interpreter itself: verify only checks that ExecStart
    names an executable file.
    """
    script = shutil.which("skylab-watch", path=str(Path(sys.executable).parent)) or shutil.which("skylab-watch")
    return script or sys.executable


def runnable_copy(folder: Path, text: str | None = None, drop_in: str | None = None) -> Path:
    """Write the unit (or `text`) into `folder` with executables that exist here; return its path.

    `drop_in`, if given, becomes skylab-watch.service.d/folders.conf beside it,
    which systemd-analyze loads like an installed drop-in.
    """
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    text = text.replace(SHIPPED_EXECUTABLE, local_executable())
    if not os.access(SHIPPED_KILL, os.X_OK):
        text = text.replace(SHIPPED_KILL, shutil.which("kill") or shutil.which("true") or sys.executable)
    unit = folder / UNIT.name
    unit.write_text(text, encoding="utf-8")
    if drop_in is not None:
        (folder / f"{UNIT.name}.d").mkdir()
        (folder / f"{UNIT.name}.d" / "folders.conf").write_text(drop_in, encoding="utf-8")
    return unit


def run_analyze(*args: str) -> subprocess.CompletedProcess:
    """Run systemd-analyze with `args` in a fixed environment; return the result, output merged."""
    return subprocess.run([systemd_analyze(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, **ANALYZE_ENV}, text=True, errors="replace", timeout=60)


def verify_problems(unit: Path) -> list[str]:
    """Given a unit file, return what `systemd-analyze verify` objects to in it; [] if nothing.

    verify exits 0 even for unknown keys and unparsable values (it logs
    "..., ignoring" and carries on), so the lines naming the unit count as
    problems too, not just the exit status.
    """
    result = run_analyze("verify", "--man=no", str(unit))
    problems = [line for line in result.stdout.splitlines() if unit.name in line]
    if result.returncode != 0:
        problems.append(f"systemd-analyze verify exited with {result.returncode}:\n{result.stdout}")
    return problems


def exposure(unit: Path) -> float:
    """Given a unit file, return its overall exposure from `systemd-analyze security --offline`."""
    analyze = systemd_analyze()
    if systemd_version(analyze) < 252:
        pytest.skip("systemd-analyze security --offline needs systemd 252 or later")
    threshold = str(round(MAX_EXPOSURE * 10))  # --threshold counts tenths: 40 means 4.0
    result = run_analyze("security", "--offline=yes", f"--threshold={threshold}", "--no-pager", str(unit))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no overall exposure in the output of systemd-analyze security:\n{result.stdout}"
    figure = float(match.group(1))
    assert result.returncode == 0 or figure > MAX_EXPOSURE, result.stdout
    return figure


def uncommented_examples(text: str) -> str:
    """Return a drop-in example with every commented-out directive (`#Key=value`) switched on."""
    return re.sub(r"(?m)^#(?=[A-Z][A-Za-z]*=)", "", text)


# --- systemd-analyze verify ------------------------------------------------

def test_unit_passes_systemd_analyze_verify(tmp_path):
    assert verify_problems(runnable_copy(tmp_path)) == []


@pytest.mark.parametrize("old, new", [
    ("Type=notify", "Type=notifyy"),
    ("ProtectSystem=strict", "ProtectSytem=strict"),
    ("WatchdogSec=5min", "WatchdogSec=five minutes"),
    (SHIPPED_EXECUTABLE, "/nonexistent/skylab-watch"),
    ("MemoryMax=1536M", "MemoryMax=lots"),
], ids=["bad-value", "misspelt-key", "bad-duration", "missing-executable", "bad-size"])
def test_verify_check_catches_a_broken_unit(tmp_path, old, new):
    text = UNIT.read_text(encoding="utf-8")
    assert old in text
    broken = text.replace(old, new)
    if old == SHIPPED_EXECUTABLE:
        # Write it by hand: runnable_copy would put the real executable back.
        unit = tmp_path / UNIT.name
        unit.write_text(broken, encoding="utf-8")
    else:
        unit = runnable_copy(tmp_path, broken)
    assert verify_problems(unit) != []


def test_folders_drop_in_example_passes_verify_with_every_example_switched_on(tmp_path):
    drop_in = uncommented_examples(FOLDERS_EXAMPLE.read_text(encoding="utf-8"))
    assert "\nReadWritePaths=" in drop_in and "\nRequiresMountsFor=" in drop_in
    assert verify_problems(runnable_copy(tmp_path, drop_in=drop_in)) == []


# --- systemd-analyze security ----------------------------------------------

def test_unit_exposure_is_at_most_4(tmp_path):
    figure = exposure(runnable_copy(tmp_path))
    print(f"systemd-analyze security exposure of {UNIT.name}: {figure}")
    assert figure <= MAX_EXPOSURE


def test_unit_exposure_stays_at_most_4_with_every_documented_relaxation(tmp_path):
    """The relaxations the folders example offers (ProtectHome=read-only, groups, UMask) keep it OK."""
    drop_in = uncommented_examples(FOLDERS_EXAMPLE.read_text(encoding="utf-8"))
    figure = exposure(runnable_copy(tmp_path, drop_in=drop_in))
    print(f"systemd-analyze security exposure with the folders example switched on: {figure}")
    assert figure <= MAX_EXPOSURE


# --- directives the daemon relies on ---------------------------------------

@pytest.fixture(scope="module")
def unit_sections() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def test_unit_runs_the_daemon_as_a_notify_service_with_a_watchdog(unit_sections):
    service = unit_sections["Service"]
    assert values(service, "Type") == ["notify"]
    assert values(service, "NotifyAccess") == ["main"]
    watchdog = values(service, "WatchdogSec")
    assert watchdog and watchdog[-1] not in ("", "0", "infinity")
    assert values(service, "Restart") == ["on-failure"]
    assert values(service, "TimeoutStopSec") == ["40"]


def test_unit_starts_and_reloads_the_installed_daemon(unit_sections):
    service = unit_sections["Service"]
    [exec_start] = values(service, "ExecStart")
    assert exec_start.split()[:3] == [SHIPPED_EXECUTABLE, "run", "--config"]
    [exec_reload] = values(service, "ExecReload")
    assert "-HUP" in exec_reload.split() and "$MAINPID" in exec_reload


def test_unit_gives_a_fixed_user_its_directories_and_api_key(unit_sections):
    service = unit_sections["Service"]
    assert values(service, "User") == ["skylab-watch"]
    assert values(service, "Group") == ["skylab-watch"]
    assert values(service, "DynamicUser") in ([], ["no"])
    assert values(service, "StateDirectory") == ["skylab-watch"]
    assert values(service, "ConfigurationDirectory") == ["skylab-watch"]
    assert any(v.startswith("api_key:") for v in values(service, "LoadCredential"))


def test_unit_keeps_the_core_sandbox(unit_sections):
    service = unit_sections["Service"]
    assert values(service, "NoNewPrivileges") == ["yes"]
    assert values(service, "ProtectSystem") == ["strict"]
    assert values(service, "PrivateTmp") == ["yes"]
    assert values(service, "CapabilityBoundingSet") == [""]


def test_unit_waits_for_the_network_and_remote_filesystems(unit_sections):
    unit = unit_sections["Unit"]
    assert "network-online.target" in " ".join(values(unit, "Wants"))
    after = " ".join(values(unit, "After")).split()
    assert "network-online.target" in after and "remote-fs.target" in after
    assert values(unit_sections["Install"], "WantedBy") == ["multi-user.target"]


def test_every_hardening_line_is_explained_by_a_comment():
    """Each hardening directive follows its own comment (a repeated key may share one)."""
    lines = [line.strip() for line in UNIT.read_text(encoding="utf-8").splitlines()]
    unexplained = []
    for number, line in enumerate(lines):
        key = line.split("=", 1)[0]
        if line.startswith("#") or key not in HARDENING_KEYS:
            continue
        previous = lines[number - 1] if number else ""
        if not (previous.startswith("#") or previous.split("=", 1)[0] == key):
            unexplained.append(f"line {number + 1}: {line}")
    assert unexplained == []


def test_the_stop_grace_is_one_figure_in_the_code_the_readmes_and_the_unit(unit_sections):
    from skylab_watch.daemon import STOP_GRACE_SECONDS
    grace = f"{STOP_GRACE_SECONDS:g} s"
    readme = (SYSTEMD_DIR.parent / "README.md").read_text(encoding="utf-8")
    assert f"for up to {grace}" in readme
    assert f"a grace of {grace}" in (SYSTEMD_DIR / "README.md").read_text(encoding="utf-8")
    assert f"a grace of {grace}" in " ".join(UNIT.read_text(encoding="utf-8").split())
    [stop] = values(unit_sections["Service"], "TimeoutStopSec")
    assert int(stop) >= STOP_GRACE_SECONDS + 5 + 10, "room for the grace, the exit and a slow disk"


# --- limits (issue 11) -----------------------------------------------------

MEASURED_PEAK_BYTES = 200 << 20
"""Peak memory measured for 8 photos of 27 MP at the default concurrency with VIPS_CONCURRENCY=4
(systemd/README.md, "Limits"); the limits must leave the daemon several times that."""
MEASURED_PEAK_THREADS = 40


def size_in_bytes(value: str) -> int:
    """Given a systemd size (1536M, 1G, 512K, or plain bytes), return bytes."""
    match = re.fullmatch(r"(\d+)([KMGT]?)", value)
    assert match, f"not a plain size: {value}"
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[match.group(2)]


def test_unit_caps_memory_well_above_the_measured_peak(unit_sections):
    service = unit_sections["Service"]
    [high], [most] = values(service, "MemoryHigh"), values(service, "MemoryMax")
    assert 4 * MEASURED_PEAK_BYTES <= size_in_bytes(high) < size_in_bytes(most) <= 4 << 30
    assert "VIPS_CONCURRENCY=4" in values(service, "Environment"), "what keeps the peak the same on any machine"


def test_unit_caps_tasks_well_above_the_measured_threads(unit_sections):
    [tasks] = values(unit_sections["Service"], "TasksMax")
    assert 4 * MEASURED_PEAK_THREADS <= int(tasks) <= 4096


def test_unit_umask_keeps_outputs_group_readable_and_closed_to_others(unit_sections):
    [umask] = values(unit_sections["Service"], "UMask")
    mask = int(umask, 8)
    assert mask & 0o070 == 0o020, "the group reads (and enters folders), never writes"
    assert mask & 0o007 == 0o007, "other users get nothing"


def test_every_limit_is_explained_in_the_systemd_readme():
    readme = (SYSTEMD_DIR / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Limits"):]
    for name in ("MemoryHigh=", "MemoryMax=", "TasksMax=", "UMask=", "VIPS_CONCURRENCY="):
        assert name in section, f"{name} is not explained under Limits"


def test_a_run_under_the_unit_umask_and_vips_setting_writes_group_readable_outputs(tmp_path, unit_sections):
    from support import make_image, plain_studio
    from daemon_helpers import REPO, write_config
    service = unit_sections["Service"]
    [umask] = values(service, "UMask")
    env = dict(v.split("=", 1) for v in values(service, "Environment"))
    with plain_studio() as emu:
        cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": tmp_path / "in", "output": tmp_path / "out",
                                                "profile": "plain"}])
        make_image(tmp_path / "in" / "a.jpg")
        proc = subprocess.run([sys.executable, "-m", "skylab_watch", "run", "--config", str(cfg), "--once"],
                              env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=str(REPO),
                              preexec_fn=lambda: os.umask(int(umask, 8)), capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 0, proc.stderr
    output = tmp_path / "out" / "a.jpg"
    assert output.stat().st_mode & 0o777 == 0o640
