"""`measure predict` says when it extrapolates and carries a calibration to a probed host;
`measure probe` measures this host (real boots)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.model.probe import (
    HOST_DRIFT_SIGMA,
    HOST_SPREAD_SIGMA,
    HostSpeed,
    MemoryPrice,
    ProbeFile,
    load_probe,
)

ROOT = Path(__file__).resolve().parents[1]
OLD = ROOT / "calibration" / "firmware-2026-11-26.json"
PAPER = ROOT / "calibration" / "paper2016.json"


def measure(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "measure.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_prediction_beyond_the_data_warns_and_says_so_in_json() -> None:
    done = measure("predict", "--calibration", OLD, "--count", "2000", "--interval-ms", "0",
                   "--json")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: extrapolation: count 2000 is outside the calibration's data (50-300)",
        "warning: extrapolation: interval 0 ms is outside the calibration's data (1-20 ms)"]
    data = json.loads(done.stdout)
    assert data["extrapolation"] == [w.removeprefix("warning: extrapolation: ")
                                     for w in warnings]


def test_a_prediction_inside_the_data_says_nothing() -> None:
    done = measure("predict", "--calibration", OLD, "--count", "200", "--interval-ms", "5",
                   "--json")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    assert json.loads(done.stdout)["extrapolation"] == []


def probe_file(tmp_path: Path, boot_cpu_s: float, boot: str = "firmware",
               memory: MemoryPrice | None = None) -> Path:
    reference = json.loads(OLD.read_text())["host_reference"]
    probe = ProbeFile(
        boot=boot, accel="kvm", memory_mb=16, created_at="2026-11-30T00:00:00+00:00",
        host={"description": "a test host"}, qemu_version="test", duration_s=12.0,
        speed=HostSpeed(boot_cpu_s=boot_cpu_s, effective_cores=reference["effective_cores"],
                        bursts=5),
        boot_cpu_quartiles_s=(boot_cpu_s, boot_cpu_s), effective_cores_range=(1.8, 1.9),
        launch_lateness_p99_s=0.0001, runs=["r"], memory=memory)
    path = tmp_path / "probe.json"
    path.write_text(probe.model_dump_json())
    return path


def test_a_probe_of_a_faster_host_scales_the_work(tmp_path: Path) -> None:
    reference = json.loads(OLD.read_text())["host_reference"]["boot_cpu_s"]
    args = ("predict", "--calibration", OLD, "--count", "300", "--interval-ms", "1", "--json")
    plain = json.loads(measure(*args).stdout)
    faster = json.loads(measure(*args, "--probe", probe_file(tmp_path, reference * 0.7)).stdout)
    # The probe's reading, weighed against the calibration's by their spreads (log scale):
    # the fraction spread^2 / (spread^2 + drift^2) of its distance from the reference.
    weight = HOST_SPREAD_SIGMA ** 2 / (HOST_SPREAD_SIGMA ** 2 + HOST_DRIFT_SIGMA ** 2)
    assert faster["work_s"] == pytest.approx(plain["work_s"] * 0.7 ** weight)
    assert faster["cores"] == pytest.approx(plain["cores"])
    # 300 at 1 ms saturate the cores: all-ready follows the work per boot.
    assert faster["all_ready_s"] < (0.7 ** weight + 0.02) * plain["all_ready_s"]


def test_a_burst_beyond_the_backed_memory_gets_a_cold_memory_bound(tmp_path: Path) -> None:
    # The host still backs 100 instances' fresh memory; 300 launched at 1 ms saturate the
    # cores, so the 200 beyond it add their extra CPU to the all-ready time over the cores.
    reference = json.loads(OLD.read_text())["host_reference"]["boot_cpu_s"]
    price = MemoryPrice(per_instance_gb=0.014, backed_s_per_gb=0.5, reclaimed_s_per_gb=2.8,
                        backed_gb=1.4, chunk_s_per_gb=[], settle_s=0.0, reporting=True)
    probe = probe_file(tmp_path, reference, memory=price)
    args = ("predict", "--calibration", OLD, "--interval-ms", "1", "--probe", probe)
    data = json.loads(measure(*args, "--count", "300", "--json").stdout)
    cold = data["cold_memory"]
    assert cold["backed_instances"] == pytest.approx(100.0)
    assert cold["extra_cpu_s"] == pytest.approx(0.014 * 2.3)
    added = 200 * cold["extra_cpu_s"] / data["cores"]
    assert cold["all_ready_s"] - data["all_ready_s"] == pytest.approx(added, rel=0.1)
    # The forecast itself is the one of a probe without the memory price.
    (tmp_path / "plain").mkdir()
    plain = json.loads(measure("predict", "--calibration", OLD, "--interval-ms", "1", "--probe",
                               probe_file(tmp_path / "plain", reference), "--count", "300",
                               "--json").stdout)
    assert plain["all_ready_s"] == data["all_ready_s"] and plain["cold_memory"] is None
    # Said in the text output; none when the burst fits in the backed memory.
    assert "if the host has taken back its free memory" in measure(*args, "--count", "300").stdout
    assert json.loads(measure(*args, "--count", "90", "--json").stdout)["cold_memory"] is None


def test_a_probe_cannot_carry_a_calibration_without_a_host_reference(tmp_path: Path) -> None:
    done = measure("predict", "--calibration", PAPER, "--count", "100", "--interval-ms", "5",
                   "--probe", probe_file(tmp_path, 0.03))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no host reference" in lines[0], done.stderr


def test_a_probe_of_another_boot_path_is_refused(tmp_path: Path) -> None:
    done = measure("predict", "--calibration", OLD, "--count", "100", "--interval-ms", "5",
                   "--probe", probe_file(tmp_path, 0.03, boot="bios"))
    assert done.returncode == 2
    assert "probe with --boot firmware" in done.stderr.strip().splitlines()[-1]


def test_a_damaged_probe_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "probe.json"
    bad.write_text('{"schema_version": 1, "boot": "firmware"')
    done = measure("predict", "--calibration", OLD, "--count", "100", "--interval-ms", "5",
                   "--probe", bad)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], done.stderr


def test_a_negative_memory_bound_for_the_probe_is_one_line(tmp_path: Path) -> None:
    done = measure("probe", "--out", tmp_path / "probe.json", "--memory-gb", "-1")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--memory-gb -1" in lines[0], done.stderr
    assert not (tmp_path / "probe.json").exists() and not (tmp_path / "probe-runs").exists()


@pytest.mark.boots
def test_measure_probe_boots_the_probe_configuration(tmp_path: Path, accel: str,
                                                     qemu_installed: None) -> None:
    out = tmp_path / "probe.json"
    done = measure("probe", "--out", out, "--bursts", "1", "--accel", accel, "--memory-gb", "0.5")
    assert done.returncode == 0, done.stderr
    probe = load_probe(out)
    assert probe.speed.bursts == 1 and len(probe.runs) == 1
    # Each instance faulted in fresh memory (its guest RAM is 16 MB; QEMU's heap adds some),
    # and the probe priced two quarter GB chunks of it: too few for a step, so the host still
    # backs at least what it faulted in.
    memory = probe.memory
    assert memory is not None and 0.001 < memory.per_instance_gb < 0.25
    assert len(memory.chunk_s_per_gb) == 2 and memory.backed_gb == 0.5
    assert memory.reclaimed_s_per_gb == memory.backed_s_per_gb
    assert 0.001 < probe.speed.boot_cpu_s < 10.0
    # Effective cores cannot exceed the CPUs the host has.
    assert 0.0 < probe.speed.effective_cores <= (probe.host.get("cores") or 64) + 0.05
    assert (tmp_path / "probe-runs" / "instances.parquet").exists()
