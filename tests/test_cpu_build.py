"""The two llama.cpp builds: the choice between them, the baseline library's instructions, and the engine
answering on the baseline build when it is forced."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from engine import cpu_build
from engine.cpu_build import BASELINE, MAIN, choose, cpu_features
from engine.hardware import sysctl_cpu_flags, windows_cpu_flags
from tests.fixtures.gguf_model import build_cached
from tests.fixtures.vocab import SCRIPT_TEXT

ROOT = Path(__file__).resolve().parents[1]
# /proc/cpuinfo flags of processors without AVX2 (the instruction sets that matter here).
SANDY_BRIDGE = {"sse4_1", "sse4_2", "popcnt", "avx", "pclmulqdq"}
NEHALEM = {"sse4_1", "sse4_2", "popcnt"}
HASWELL = {*SANDY_BRIDGE, "avx2", "fma", "f16c", "bmi2"}
# The baseline fixture compiles llama.cpp when its cache is empty (`make test` fills it first).
pytestmark = pytest.mark.timeout(1800)
x86_only = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                              reason="the baseline build is for x86-64 processors")
linux_x86 = pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                               reason="packaging/llama_baseline.py builds the Linux x86-64 libraries")


def _load(rel: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baseline() -> Path:
    """The baseline libraries, from the cache `make test` fills (built here, minutes, if it is empty)."""
    return _load("packaging/llama_baseline.py").ensure_built()


# Instructions of the sets the baseline build leaves out, as objdump spells them.
FMA = re.compile(r"^v(fn?m(add|sub)|fmaddsub|fmsubadd)")
F16C_BMI2 = re.compile(r"^(vcvtph2ps|vcvtps2ph|pdep|pext|shlx|shrx|sarx|rorx|bzhi|mulx)\b")
# AVX has 256-bit floating point only: a packed-integer ("vp…") instruction on ymm registers is AVX2, but
# for these four, and so are the 128-bit lane moves and gathers.
AVX1_VP = {"vpermilps", "vpermilpd", "vperm2f128", "vptest"}
AVX2_ONLY = re.compile(r"^(vbroadcasti128|vextracti128|vinserti128|v?p?gather|vpbroadcast|vpmaskmov)")


def forbidden_instructions(library: Path, isa: tuple[str, ...]) -> list[str]:
    """Lines of `objdump -d library` with an instruction from outside `isa` (SSE4.2, or SSE4.2 and AVX)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True,
                         text=True, check=True).stdout
    bad = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1].strip():
            continue
        mnemonic, operands = parts[1].split()[0], " ".join(parts[1].split()[1:])
        avx2 = ("%ymm" in operands and mnemonic.startswith("vp") and mnemonic not in AVX1_VP) or \
            AVX2_ONLY.match(mnemonic) or (mnemonic.startswith("vbroadcasts") and operands.startswith("%xmm"))
        if ("%zmm" in operands or FMA.match(mnemonic) or F16C_BMI2.match(mnemonic) or avx2
                or ("AVX" not in isa and ("%ymm" in operands or mnemonic.startswith("v")))):
            bad.append(line.strip())
    return bad


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump comes with binutils (`make dist-deps`)")
@linux_x86
def test_the_baseline_libraries_hold_no_avx2_fma_f16c_or_avx512_instruction(baseline: Path) -> None:
    isa = tuple(json.loads((baseline / "build.json").read_text())["isa"])
    libraries = sorted(baseline.glob("lib*.so*"))
    assert [p.name for p in libraries] == ["libggml-base.so.0", "libggml-cpu.so.0", "libggml.so.0", "libllama.so"]
    for library in libraries:
        assert forbidden_instructions(library, isa)[:5] == [], library.name
    # The check finds what it looks for: the main build's CPU backend is full of FMA and AVX2.
    import llama_cpp

    main_cpu = Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"
    found = forbidden_instructions(main_cpu, isa)
    assert any("vfmadd" in line for line in found) and any("%ymm" in line and "vp" in line for line in found)


@x86_only
def test_this_machine_with_avx2_runs_the_main_build() -> None:
    assert {"avx2", "fma"} <= (cpu_features() or set())
    assert choose(cpu_features()).build == MAIN


@pytest.mark.parametrize("flags", [SANDY_BRIDGE, NEHALEM], ids=["sandy-bridge", "nehalem"])
def test_a_processor_without_avx2_runs_the_baseline_build(flags: set[str]) -> None:
    choice = choose(flags)
    assert choice.build == BASELINE
    assert choice.reason == "this processor lacks AVX2, FMA, F16C, BMI2"


def test_a_processor_lacking_only_fma_still_needs_the_baseline_build() -> None:
    assert choose(HASWELL - {"fma"}).build == BASELINE


def test_the_user_can_force_either_build() -> None:
    assert choose(HASWELL, "baseline").build == BASELINE
    assert choose(SANDY_BRIDGE, "AVX2").build == MAIN
    assert choose(HASWELL, "baseline").reason == "chosen with TINYCHAT_LLAMA_BUILD=baseline"


def test_without_a_baseline_build_the_main_one_runs_and_the_reason_says_so() -> None:
    choice = choose(SANDY_BRIDGE, baseline_present=False)
    assert choice.build == MAIN
    assert choice.reason.endswith("and this installation has no baseline build")
    assert choose(HASWELL, "baseline", baseline_present=False).build == MAIN


def test_unknown_features_a_misspelt_choice_or_another_architecture_keep_the_main_build() -> None:
    assert choose(None).build == MAIN
    assert choose(HASWELL, "fast").build == MAIN
    assert choose(NEHALEM, x86=False).build == MAIN


def test_only_the_baseline_build_puts_a_note_in_the_status_bar() -> None:
    assert cpu_build.status_note(choose(NEHALEM)) == "Slower engine for processors without AVX2"
    assert cpu_build.status_note(choose(HASWELL)) == ""


# `sysctl machdep.cpu.features machdep.cpu.leaf7_features` as published from real Intel Macs: an i5-10400
# (Comet Lake, AVX2) and an Ivy Bridge (family 6, model 58: AVX and F16C, no FMA, AVX2 or BMI2).
MAC_COMET_LAKE = """\
FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFSH DS ACPI MMX FXSR SSE SSE2 SS HTT TM \
PBE SSE3 PCLMULQDQ DTES64 MON DSCPL VMX EST TM2 SSSE3 FMA CX16 TPR PDCM SSE4.1 SSE4.2 x2APIC MOVBE POPCNT AES PCID \
XSAVE OSXSAVE SEGLIM64 TSCTMR AVX1.0 RDRAND F16C
RDWRFSGS TSC_THREAD_OFFSET SGX BMI1 AVX2 SMEP BMI2 ERMS INVPCID FPU_CSDS MPX RDSEED ADX SMAP CLFSOPT IPT PKU SGXLC \
MDCLEAR IBRS STIBP L1DF ACAPMSR SSBD
"""
MAC_IVY_BRIDGE = """\
FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFSH DS ACPI MMX FXSR SSE SSE2 SS HTT TM \
PBE SSE3 PCLMULQDQ DTES64 MON DSCPL VMX EST TM2 SSSE3 CX16 TPR PDCM SSE4.1 SSE4.2 x2APIC POPCNT AES PCID XSAVE \
OSXSAVE TSCTMR AVX1.0 RDRAND F16C
RDWRFSGS SMEP ERMS MDCLEAR IBRS STIBP L1DF SSBD
"""


def test_a_mac_with_avx2_runs_the_main_build_and_an_ivy_bridge_mac_the_baseline() -> None:
    comet_lake = sysctl_cpu_flags(MAC_COMET_LAKE)
    assert comet_lake is not None and {"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"} <= comet_lake
    assert choose(comet_lake).build == MAIN
    ivy_bridge = choose(sysctl_cpu_flags(MAC_IVY_BRIDGE))
    assert (ivy_bridge.build, ivy_bridge.reason) == (BASELINE, "this processor lacks AVX2, FMA, BMI2")


def test_macos_feature_names_read_as_proc_cpuinfo_names() -> None:
    assert sysctl_cpu_flags("SSE3 SSE4.1 SSE4.2 AVX1.0\nAVX2 BMI2 AVX512F") == {
        "pni", "sse4_1", "sse4_2", "avx", "avx2", "bmi2", "avx512f"}
    assert sysctl_cpu_flags(" \n") is None  # sysctl failed: unknown, not "no features"


def _windows(*features: int) -> Callable[[int], int]:
    """IsProcessorFeaturePresent of a Windows reporting `features` (its PF_* numbers)."""
    return lambda feature: int(feature in features)


def test_windows_reports_avx2_and_the_main_build_runs() -> None:
    flags = windows_cpu_flags(_windows(13, 36, 37, 38, 39, 40))  # SSE3 … AVX, AVX2 (a Haswell)
    assert flags == {"pni", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}
    assert choose(flags).build == MAIN


def test_windows_without_avx2_runs_the_baseline_build() -> None:
    flags = windows_cpu_flags(_windows(13, 36, 37, 38, 39))  # a Sandy Bridge
    assert flags == {"pni", "ssse3", "sse4_1", "sse4_2", "avx"}
    assert choose(flags).build == BASELINE


def test_a_windows_that_predates_the_sse4_constants_leaves_the_features_unknown() -> None:
    # Windows Server 2019 answers "no" for SSE4.2, AVX and AVX2 even on processors that have them.
    assert windows_cpu_flags(_windows(13)) is None
    assert choose(None).build == MAIN


def test_every_baseline_target_builds_the_library_the_engine_looks_for() -> None:
    targets = _load("packaging/llama_baseline.py").TARGETS
    assert sorted(targets) == ["darwin-x86_64", "linux-x86_64", "win32-AMD64"]
    for name, target in targets.items():
        assert target.libraries[0] == cpu_build.library_name(name.partition("-")[0])
        assert len(set(target.libraries)) == 4


def test_the_linux_baseline_keeps_its_cache_key_libraries_and_flags() -> None:
    """Builds already cached on developer machines and CI stay valid: their key is this one."""
    llama_baseline = _load("packaging/llama_baseline.py")
    assert llama_baseline.build_key("0.3.36", "linux-x86_64") == "0.3.36-09e45ed1d2d3"
    linux = llama_baseline.TARGETS["linux-x86_64"]
    assert linux.libraries == ("libllama.so", "libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0")
    assert linux.strip == ("strip", "--strip-unneeded")
    # Each operating system's build is cached under its own key.
    keys = {llama_baseline.build_key("0.3.36", name) for name in llama_baseline.TARGETS}
    assert len(keys) == 3


def test_the_targets_are_found_from_the_operating_system_and_processor() -> None:
    target_name = _load("packaging/llama_baseline.py").target_name
    assert target_name("linux", "x86_64") == "linux-x86_64"
    assert target_name("win32", "AMD64") == "win32-AMD64"
    assert target_name("darwin", "x86_64") == "darwin-x86_64"
    assert target_name("darwin", "arm64") is None  # Apple Silicon: one build, no AVX question
    assert target_name("linux", "aarch64") is None


def _forced(baseline: Path, build: str, **extra: str) -> dict[str, str]:
    """The environment of a process told to run `build`, with `baseline` as the baseline build's folder."""
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    return {**env, "TINYCHAT_LLAMA_BUILD": build, "TINYCHAT_LLAMA_BASELINE_DIR": str(baseline),
            "PYTHONPATH": str(ROOT), **extra}


def _run_forced(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


_LOADED = """
import json, sys
from engine import cpu_build
choice = cpu_build.apply()
import llama_cpp
maps = open("/proc/self/maps").read()
print(json.dumps({"build": choice.build, "about": cpu_build.describe(choice),
                  "cpu_libs": sorted({l.split()[-1] for l in maps.splitlines() if "libggml-cpu" in l}),
                  "info": llama_cpp.llama_print_system_info().decode()}))
"""


@linux_x86
@pytest.mark.parametrize("build", ["baseline", "avx2"])
def test_the_forced_build_is_the_library_llama_cpp_loads(baseline: Path, build: str) -> None:
    proc = _run_forced(_forced(baseline, build), _LOADED)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["build"] == build
    in_baseline = [Path(p).parent == baseline for p in seen["cpu_libs"]]
    assert in_baseline == [build == "baseline"]  # exactly one CPU backend, from the chosen folder
    assert ("AVX2 = 1" in seen["info"]) is (build == "avx2")
    if build == "baseline":
        assert seen["about"] == ("baseline build for processors without AVX2 (slower) (SSE4.2, AVX): "
                                 "chosen with TINYCHAT_LLAMA_BUILD=baseline")


@linux_x86
def test_engine_answers_on_the_forced_baseline_build(baseline: Path) -> None:
    model = build_cached("tiny", scripted=True)
    proc = subprocess.run([sys.executable, "-m", "engine", "chat", "--model", str(model), "--temperature", "0"],
                          input='{"messages": [{"role": "user", "content": "Hi"}]}', env=_forced(baseline, "baseline"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SCRIPT_TEXT + "\n"


@linux_x86
def test_the_release_check_tells_the_baseline_build_from_the_main_one(baseline: Path) -> None:
    """release.py's check on the self-test's engine line, fed the line each build really reports."""
    check = _load("packaging/release.py").check_baseline_ran
    code = ("from engine import cpu_build; cpu_build.apply(); from app.shell.self_test import _engine_libraries; "
            "print('ok    engine libraries:', _engine_libraries())")
    reports = {}
    for build in ("baseline", "avx2"):
        proc = _run_forced(_forced(baseline, build), code)
        assert proc.returncode == 0, proc.stderr
        reports[build] = proc.stdout
    check(reports["baseline"])
    with pytest.raises(SystemExit, match="did not run its own libraries"):
        check(reports["avx2"])
    # The baseline's name on the main build's CPU code (ggml libraries of the same names): rejected too.
    with pytest.raises(SystemExit):
        check(reports["avx2"].replace("(avx2 build:", "(baseline build:"))


@linux_x86
def test_a_library_path_the_user_set_is_their_own_build_and_left_alone(baseline: Path) -> None:
    proc = _run_forced(_forced(baseline, "auto", LLAMA_CPP_LIB_PATH=str(baseline)), _LOADED)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["build"] == "baseline"  # the bundled baseline's own folder: recognised
    own = str(Path(__file__).parent)  # any other folder: a custom build, not replaced by the choice
    code = "from engine import cpu_build; c = cpu_build.apply(); print(c.build, c.path)"
    proc = _run_forced(_forced(baseline, "baseline", LLAMA_CPP_LIB_PATH=own), code)
    assert proc.stdout.split() == ["custom", own]
