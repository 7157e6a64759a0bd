"""The seven synthetic machine types of the domain-shift corpus: what they sound like under each
operating condition, and how each kind of fault changes that.

Pure functions of a numpy random generator; reads and writes nothing. Each machine type has operating
attributes with several values in the source domain and at least one attribute whose target-domain
values never occur in the source domain (an unseen speed, load, acceleration, microphone position or
site). A clip's sound is the machine as its microphone hears it; `datasets.shift_corpus` adds the
factory background and the random loudness. Fault severities run from 0 (barely there) to 1
(plain); each kind changes the sound's structure (harmonics, modulation, impacts, noise bands),
never just its level. Some faults (fan slip, valve spring, slider drive, gearbox brushes, bearing
preload, compressor timing) make the machine sound as it would in another operating condition: they
are anomalies only to a detector that knows the clip's condition, as in DCASE's domain-shift task.

Mechanisms: rotating (fan: blade-pass harmonics), impulsive (valve: open/close clicks), reciprocating
linear (slider: strokes with motor whine and end-stop knocks), gear mesh (gearbox: mesh harmonics and
sidebands), flow (pump: vane pass and pipe resonances), bearing (modulated high-frequency resonance),
reciprocating piston (compressor: pressure pulses and valve clicks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from datasets.synth_signals import (
    SAMPLE_RATE,
    Microphone,
    bump,
    burst,
    cycles,
    gate,
    harmonic_wave,
    partials_below,
    place,
    place_each,
    poisson_times,
    ringing,
    seconds,
    shaped_noise,
    tilt,
    tone,
    unit_rms,
    wander,
)


@dataclass(frozen=True)
class Attribute:
    """One operating attribute: its values in the source domain and in the target domain."""

    key: str
    source: tuple[str, ...]
    target: tuple[str, ...]

    @property
    def shifted(self) -> bool:
        """The target domain uses values the source domain never has."""
        return not set(self.target) & set(self.source)


@dataclass(frozen=True)
class Fault:
    """An anomaly of one clip: its kind and severity in [0, 1]."""

    kind: str
    severity: float


# (rng, attribute values, fault or None, samples) -> [samples] the machine as its microphone hears it
Sound = Callable[[np.random.Generator, dict[str, str], "Fault | None", int], np.ndarray]


@dataclass(frozen=True)
class MachineType:
    name: str
    attributes: tuple[Attribute, ...]
    faults: tuple[str, ...]
    sound: Sound
    snr_db: tuple[float, float]  # machine-to-background ratio range, drawn per clip
    hidden: bool = False  # file names end in `_noAttribute`, as for some DCASE 2024 machine types
    background: str | None = None  # the attribute whose value names the background; None: any factory hall

    def __post_init__(self) -> None:
        if not any(a.shifted for a in self.attributes):
            raise ValueError(f"{self.name}: no attribute has target values unseen in the source domain")


def _amount(fault: Fault | None, kind: str, low: float, high: float) -> float:
    """How much of `kind` a clip has: 0 if it has another fault or none, else low..high, geometrically
    by severity (a fault is heard on a log scale: each step of severity multiplies it)."""
    return low * (high / low) ** fault.severity if fault is not None and fault.kind == kind else 0.0


def _speed(rng: np.random.Generator, nominal: float, n: int, drift: float = 0.002) -> np.ndarray:
    """[n] a motor's speed: the nominal value off by a unit tolerance (1 %) and drifting slowly."""
    return nominal * (1 + 0.01 * rng.standard_normal()) * (1 + wander(rng, n, drift))


def _revolution_times(cycle_count: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """Times in seconds at which a running cycle count passes `phase` (0..1) of each cycle."""
    crossings = np.nonzero(np.diff(np.floor(cycle_count - phase)) > 0)[0] + 1
    return crossings / SAMPLE_RATE


_FAN_MIC = Microphone(peaks=((900.0, 0.6, 3.0), (3500.0, 0.5, -4.0)), tilt_db_per_octave=-1.0)


def fan(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Axial fan: rotation harmonics, strong blade-pass harmonics, aerodynamic noise that grows with speed."""
    rps, blades = float(a["spd"]), int(a["bl"])
    rps *= 1 - _amount(fault, "slip", 0.03, 0.12)  # a slipping belt: slower, as if set to a lower speed
    speed = _speed(rng, rps, n)
    turns = cycles(speed, n, rng)
    k = np.arange(1, partials_below(speed.max()) + 1)
    amps = np.where(k % blades == 0, (k / blades) ** -1.3, 0.0) * 10 ** (rng.normal(0, 1.0, len(k)) / 20)
    amps[:3] += np.array([0.05, 0.03, 0.015]) * rng.uniform(0.5, 1.5, 3)  # a healthy rotor's residual imbalance
    amps[:3] += _amount(fault, "imbalance", 0.1, 0.4) * np.array([1.0, 0.3, 0.1])
    damaged = (k % blades != 0) & (k < 4 * blades)
    amps[damaged] += _amount(fault, "blade", 0.04, 0.15) * rng.uniform(0.5, 1.0, damaged.sum())
    tonal = unit_rms(harmonic_wave(turns, amps, rng))
    tonal *= 1 + _amount(fault, "imbalance", 0.05, 0.2) * np.sin(2 * np.pi * turns)
    aero = shaped_noise(rng, n, lambda f: bump(f, 250 + 35 * rps, 1.4) + 0.2 * tilt(f, -3))
    x = tonal + 0.6 * (rps / 25) ** 1.5 * aero + 0.05 * tone(100.0, n, rng)
    rub = _amount(fault, "rub", 1.5, 6.0)
    if rub:
        times = _revolution_times(turns, rng.random())
        times = times[rng.random(len(times)) < rng.uniform(0.2, 0.6)]
        x += place_each(
            n, times, rub * rng.uniform(0.5, 1, len(times)), lambda: burst(rng, rng.uniform(0.006, 0.012), 2000, 6500)
        )
    whine = _amount(fault, "whine", 0.1, 0.5)
    if whine:
        x += whine * tone(rng.uniform(2500, 5000) * (1 + wander(rng, n, 0.003, 3)), n, rng)
    return _FAN_MIC.apply(rng, x)


_VALVE_PATTERNS = {  # (open, closed) seconds, repeated
    "00": ((0.25, 0.55),),
    "01": ((0.12, 0.18), (0.12, 0.70)),
    "02": ((0.45, 0.25),),
    "03": ((0.06, 0.10), (0.06, 0.10), (0.06, 0.90)),
}
_VALVE_MICS = {
    "A": Microphone(peaks=((3000.0, 0.7, 3.0),), tilt_db_per_octave=0.5),
    "B": Microphone(peaks=((800.0, 0.5, 4.0),), tilt_db_per_octave=-2.5),
    "C": Microphone(peaks=((2000.0, 0.4, -8.0), (5000.0, 0.5, 4.0)), tilt_db_per_octave=-1.0, reverb_s=0.4),
}


def valve(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Solenoid valve: open and close clicks in a repeating pattern, flow noise while open, pump hum."""
    pattern = _VALVE_PATTERNS[a["pat"]]
    spring = _amount(fault, "spring", 0.1, 0.5)  # a weak return spring holds the valve open longer
    pattern = tuple((o * (1 + spring), max(c - o * spring, 0.02)) for o, c in pattern)
    duration = n / SAMPLE_RATE
    opens, closes, t = [], [], -rng.uniform(0, sum(o + c for o, c in pattern))
    while t < duration:
        for open_s, closed_s in pattern:
            opens.append(t + rng.normal(0, 0.003))
            closes.append(t + open_s + rng.normal(0, 0.003))
            t += open_s + closed_s
    opens, closes = np.array(opens), np.array(closes)
    late = _amount(fault, "sticking", 0.03, 0.12)
    stuck = rng.random(len(closes)) < 0.6 if late else np.zeros(len(closes), dtype=bool)
    closes = closes + stuck * rng.uniform(0.3, 1.0, len(closes)) * late
    modes = list(np.array([1250.0, 2700.0, 4300.0, 6100.0]) * (1 + 0.02 * rng.standard_normal(4)))
    click = (
        ringing(rng, modes, rng.uniform(0.003, 0.006), 0.04)
        + 0.5 * ringing(rng, [rng.uniform(120, 180)], 0.015, 0.08)[:640]
    )
    x = place(n, opens, 0.6 * rng.uniform(0.8, 1.2, len(opens)), click)
    x += place(n, closes, rng.uniform(0.8, 1.2, len(closes)) * np.where(stuck, 0.5, 1.0), click)
    if late:  # the spool drags before a late close
        x += place_each(
            n, closes[stuck] - 0.05, 4 * late * rng.uniform(0.5, 1, stuck.sum()), lambda: burst(rng, 0.05, 300, 2000)
        )
    bounce = _amount(fault, "bounce", 0.4, 1.0)
    for hop in range(1, 4 if bounce else 1):  # the armature bounces up to three times, each weaker
        x += place(
            n,
            closes + hop * rng.uniform(0.006, 0.015, len(closes)),
            bounce**hop * rng.uniform(0.5, 1, len(closes)),
            click,
        )
    is_open = gate(n, list(zip(opens, closes)))
    x += 0.15 * is_open * shaped_noise(rng, n, lambda f: bump(f, 1800, 1.2))
    grit = _amount(fault, "contamination", 0.6, 3.0)
    if grit:
        times = poisson_times(rng, rng.uniform(80, 300), n)
        x += is_open * place_each(
            n, times, grit * rng.uniform(0.2, 1, len(times)), lambda: burst(rng, 0.0008, 3000, 7800)
        )
    leak = _amount(fault, "leak", 0.04, 0.2)
    if leak:
        x += leak * (1 - is_open) * shaped_noise(rng, n, lambda f: bump(f, 5000, 0.6))
    x += 0.03 * harmonic_wave(cycles(50.0, n, rng), np.array([0.3, 1.0, 0.2, 0.4]), rng) + 0.01 * tone(
        400 * rng.uniform(0.98, 1.02), n, rng
    )
    return _VALVE_MICS[a["mic"]].apply(rng, x)


_SLIDER_MIC = Microphone(peaks=((1500.0, 0.8, 2.0),), tilt_db_per_octave=-1.5, reverb_s=0.15)


def _strokes(rng: np.random.Generator, velocity: float, accel: float, n: int) -> tuple[np.ndarray, list[float]]:
    """Velocity profile [n] (m/s, signed) of a slide going back and forth over 0.4 m with trapezoidal
    ramps, and the times in seconds where each stroke starts and stops."""
    length, dwell = 0.4, 0.15
    ramp = min(velocity / accel, np.sqrt(length / accel))  # triangular when the slide never reaches speed
    top = accel * ramp
    cruise = max(length - accel * ramp**2, 0.0) / top
    one = np.concatenate(
        [
            np.linspace(0, top, int(ramp * SAMPLE_RATE)),
            np.full(int(cruise * SAMPLE_RATE), top),
            np.linspace(top, 0, int(ramp * SAMPLE_RATE)),
            np.zeros(int(dwell * SAMPLE_RATE)),
        ]
    )
    period = 2 * len(one)
    start = rng.integers(0, period)
    repeats = (n + start) // period + 1
    profile = np.tile(np.concatenate([one, -one]), repeats)[start : start + n]
    events = [(i * len(one) - start) / SAMPLE_RATE for i in range(2 * repeats + 1)]
    events += [e + (len(one) - int(dwell * SAMPLE_RATE)) / SAMPLE_RATE for e in events]
    return profile, events


def slider(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Linear slide: a servo whine that follows the speed, rolling noise, knocks where strokes start and end."""
    velocity, accel = float(a["vel"]) / 1000, float(a["ac"]) * 9.81
    velocity *= 1 - _amount(fault, "drive", 0.05, 0.2)  # a weak drive falls short of the set speed
    v, events = _strokes(rng, velocity, accel, n)
    speed = np.abs(v) / velocity
    whine_hz = 1800 * np.abs(v) * rng.uniform(0.98, 1.02) + 1.0
    whine = harmonic_wave(cycles(whine_hz, n, rng), np.array([1.0, 0.4, 0.25, 0.1]), rng)
    rolling = shaped_noise(rng, n, lambda f: bump(f, 1200 * np.sqrt(velocity / 0.6), 1.3))
    x = speed * (0.4 * whine + rolling)
    slap = _amount(fault, "belt", 0.3, 1.5)
    if slap:
        times = poisson_times(rng, rng.uniform(8, 15), n)
        times = times[np.interp(times * SAMPLE_RATE, np.arange(n), speed) > 0.3]
        x += place_each(n, times, slap * rng.uniform(0.5, 1, len(times)), lambda: burst(rng, 0.015, 80, 900))
    knock = ringing(rng, [rng.uniform(600, 900), rng.uniform(1800, 2600), rng.uniform(3500, 4500)], 0.008, 0.06)
    x += place(n, np.array(events), 0.8 * np.sqrt(accel / 1.0) * rng.uniform(0.7, 1.0, len(events)), knock)
    scratch = _amount(fault, "scratch", 1.2, 6.0)
    if scratch:  # damage at one place on the rail: heard once per pass
        position = np.cumsum(np.abs(v)) / SAMPLE_RATE
        times = _revolution_times(position / 0.4, rng.uniform(0.2, 0.8))
        x += place_each(
            n, times, scratch * rng.uniform(0.6, 1, len(times)), lambda: burst(rng, rng.uniform(0.01, 0.04), 1000, 6000)
        )
    squeal = _amount(fault, "dry", 0.2, 1.0)
    if squeal:
        x += squeal * speed * tone(rng.uniform(2500, 4500) * (1 + wander(rng, n, 0.01, 4)), n, rng)
    x += 0.02 * tone(2100.0, n, rng) + 0.02 * tone(100.0, n, rng)
    return _SLIDER_MIC.apply(rng, x)


_GEARBOX_MIC = Microphone(peaks=((600.0, 0.6, 3.0), (2800.0, 0.4, 2.0)), tilt_db_per_octave=-1.0)


def gearbox(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Two-stage gearbox on a DC motor: mesh harmonics with shaft sidebands, louder and richer under load."""
    volt, weight = float(a["volt"]), float(a["wt"])
    load = 0.6 + weight / 250
    brush_wear = _amount(fault, "brushes", 0.03, 0.12)  # worn brushes: the motor sags and sparks
    shaft = _speed(rng, 12 * volt * (1 - 0.04 * weight / 200) * (1 - brush_wear), n)
    turns = cycles(shaft, n, rng)
    k = np.arange(1, partials_below(shaft.max()) + 1)
    amps = np.zeros(len(k))
    misalign = _amount(fault, "misalign", 0.15, 0.5)
    amps[1] = misalign  # twice per turn: the bent coupling's pull
    teeth = 29
    mesh_gain = np.array([1.0, 0.5 * load, 0.3 * load, 0.15, 0.1]) * rng.uniform(0.8, 1.2, 5)
    sideband = 0.05 * load + _amount(fault, "wear", 0.08, 0.3)
    for m, g in enumerate(mesh_gain, start=1):
        if m * teeth + 3 <= len(k):
            amps[m * teeth - 1] += g
            for s in (1, 2, 3):
                amps[m * teeth - 1 - s] += g * sideband / s
                amps[m * teeth - 1 + s] += g * sideband / s
    first = harmonic_wave(turns, amps, rng)
    first *= 1 + misalign * np.sin(4 * np.pi * turns)
    out_mesh = shaft * 29 / 71 * 37
    second = harmonic_wave(cycles(out_mesh, n, rng), np.array([0.4, 0.2, 0.1]) * load, rng)
    brushes = shaped_noise(rng, n, lambda f: bump(f, 4000, 1.0))
    x = load * (first + second) + 0.08 * volt * (1 + 10 * brush_wear) * brushes
    broken = _amount(fault, "broken", 0.5, 1.8)
    if broken:
        hit = ringing(rng, [rng.uniform(2200, 3200), rng.uniform(4000, 5000)], 0.003, 0.03)
        x += place(n, _revolution_times(turns, rng.random()), broken * load, hit)
    return _GEARBOX_MIC.apply(rng, x)


_PUMP_MIC = Microphone(peaks=((450.0, 0.5, 3.0), (3000.0, 0.6, -3.0)), tilt_db_per_octave=-0.5, reverb_s=0.25)


def pump(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Centrifugal pump: vane-pass pulsation, motor hum and turbulence ringing the pipe's resonances."""
    flow = float(a["flow"])
    clog = _amount(fault, "clog", 0.06, 0.3)
    rps = _speed(rng, (24 + 0.3 * flow) * (1 - 0.3 * clog), n)
    turns = cycles(rps, n, rng)
    k = np.arange(1, partials_below(rps.max()) + 1)
    amps = np.where(k % 6 == 0, (k / 6) ** -1.5, 0.0) + np.where(k <= 3, 0.05, 0.0)
    amps[11] *= 1 + 3 * clog
    pulsation = unit_rms(harmonic_wave(turns, amps, rng)) * (1 + 2 * clog * np.sin(2 * np.pi * turns))
    pipes = np.array([520.0, 1350.0, 2600.0, 4100.0]) * (1 - 0.3 * clog) * (1 + 0.01 * rng.standard_normal(4))
    gains = np.array([1.0, 0.7, 0.5, 0.3]) * (flow / 35) ** np.array([0.5, 1.0, 1.5, 2.0])
    turbulence = shaped_noise(
        rng, n, lambda f: sum(g * bump(f, c, 0.25) for c, g in zip(pipes, gains)) + 0.15 * tilt(f, -3)
    )
    x = 0.6 * pulsation + (flow / 35) * turbulence + 0.1 * tone(100.0, n, rng)
    cavitation = _amount(fault, "cavitation", 0.8, 4.0)
    if cavitation:
        times = poisson_times(rng, rng.uniform(30, 300), n)
        x += place_each(n, times, cavitation * rng.uniform(0.3, 1, len(times)), lambda: burst(rng, 0.0006, 2500, 7800))
    leak = _amount(fault, "leak", 0.12, 0.6)
    if leak:
        x += leak * shaped_noise(rng, n, lambda f: bump(f, rng.uniform(4000, 6000), 0.5))
    squeal = _amount(fault, "seal", 0.2, 1.0)
    if squeal:
        on = gate(n, [(s, s + rng.uniform(0.3, 1.5)) for s in poisson_times(rng, 0.5, n)], 0.05)
        x += squeal * on * tone(rng.uniform(1500, 3000) * (1 + wander(rng, n, 0.005, 2)), n, rng)
    return _PUMP_MIC.apply(rng, x)


_BEARING_MICS = {
    "A": Microphone(peaks=((3200.0, 0.5, 6.0),), tilt_db_per_octave=0.0),
    "B": Microphone(peaks=((300.0, 0.8, 4.0),), tilt_db_per_octave=-3.0),
    "C": Microphone(
        peaks=((1100.0, 0.4, 5.0), (5500.0, 0.4, 4.0), (3000.0, 0.3, -6.0)), tilt_db_per_octave=-1.0, reverb_s=0.2
    ),
}


def bearing(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Shaft on rolling bearings: motor slot harmonics, rolling noise and a high-frequency housing
    resonance modulated at the shaft and cage rates; race and ball faults strike that resonance."""
    rps = float(a["vel"])
    speed = _speed(rng, rps, n)
    turns = cycles(speed, n, rng)
    t = seconds(n)
    slot = harmonic_wave(cycles(36 * speed, n, rng), np.array([1.0, 0.3, 0.1]), rng)
    hum = harmonic_wave(cycles(50.0, n, rng), np.array([0.2, 1.0, 0.1, 0.3]), rng)
    rolling = shaped_noise(rng, n, lambda f: bump(f, 800, 1.2))
    resonance = rng.uniform(3000, 3400)
    ring = shaped_noise(rng, n, lambda f: bump(f, resonance, 0.25) + 0.1 * bump(f, 6000, 0.5))
    cage = 0.4 * rps
    ring *= (1 + 0.2 * np.sin(2 * np.pi * turns)) * (1 + 0.1 * np.sin(2 * np.pi * cage * t + rng.uniform(0, 6.3)))
    preload = 1 + _amount(fault, "preload", 0.2, 0.8)  # too much preload: rolls and rings as if faster
    x = 0.3 * slot + 0.1 * unit_rms(hum) + 0.5 * preload * (rps / 9) * rolling
    x += (0.3 * preload + _amount(fault, "lubrication", 0.1, 0.4)) * (rps / 9) * ring
    defect = {"outer": (3.58, 0.0), "inner": (5.42, 0.6), "ball": (4.7, 0.4)}
    if fault is not None and fault.kind in defect:
        order, modulation = defect[fault.kind]
        strength = _amount(fault, fault.kind, 0.4, 1.5)
        times = _revolution_times(cycles(order * speed * (1 + 0.005 * rng.standard_normal(n)), n, rng))
        shaft_phase = np.interp(times * SAMPLE_RATE, np.arange(n), turns)
        amps = strength * (1 + modulation * np.sin(2 * np.pi * shaft_phase)) * rng.uniform(0.6, 1, len(times))
        x += place(n, times, amps, ringing(rng, [resonance, 1.6 * resonance], 0.0015, 0.02))
    return _BEARING_MICS[a["loc"]].apply(rng, x)


_COMPRESSOR_MIC = Microphone(peaks=((250.0, 0.7, 3.0), (2200.0, 0.5, 2.0)), tilt_db_per_octave=-1.0, reverb_s=0.3)


def compressor(rng: np.random.Generator, a: dict[str, str], fault: Fault | None, n: int) -> np.ndarray:
    """Piston compressor: a pressure pulse per crank turn, suction and discharge valve clicks whose
    timing and force follow the pressure, intake noise, motor hum and a cooling fan."""
    rpm, bar = float(a["rpm"]), float(a["pres"])
    crank = _speed(rng, rpm / 60 * (1 - 0.01 * bar), n, drift=0.004)  # the motor labours against the pressure
    turns = cycles(crank, n, rng)
    k = np.arange(1, partials_below(crank.max(), 1500.0) + 1)
    pulse = harmonic_wave(turns, k**-0.7 * np.exp(-k * crank.mean() / (150 + 30 * bar)), rng)
    valve_click = ringing(rng, list(np.array([1600.0, 3400.0, 5200.0]) * rng.uniform(0.97, 1.03)), 0.003, 0.03)
    suction = _revolution_times(turns, 0.55)
    # a discharge valve that opens late meets more pressure: it slams as if the tank were fuller
    late = _amount(fault, "timing", 0.01, 0.05)
    discharge = _revolution_times(turns, 0.25 - 0.012 * bar - late)
    x = (
        unit_rms(pulse)
        + place(n, suction, 1.0, valve_click)
        + place(n, discharge, 0.6 + 0.12 * bar + 30 * late, valve_click)
    )
    intake = gate(n, [(s, s + 0.3 / crank.mean()) for s in suction], 0.01)
    x += 0.2 * intake * shaped_noise(rng, n, lambda f: bump(f, 900, 1.0))
    x += 0.03 * bar * tone(100.0, n, rng) + 0.1 * shaped_noise(rng, n, lambda f: bump(f, 2000, 1.5))
    flutter = _amount(fault, "flutter", 0.3, 1.5)
    if flutter:
        for lag in np.cumsum(rng.uniform(0.003, 0.008, 3)):
            x += place(n, discharge + lag, flutter * (0.6 + 0.12 * bar), valve_click)
    leak = _amount(fault, "leak", 0.3, 1.5)
    if leak:
        compressing = gate(n, [(s, s + 0.4 / crank.mean()) for s in suction + 0.45 / crank.mean()], 0.01)
        x += leak * compressing * shaped_noise(rng, n, lambda f: bump(f, 4500, 0.6))
    knock = _amount(fault, "knock", 0.4, 2.0)
    if knock:
        top = _revolution_times(turns, 0.0)
        top = top[rng.random(len(top)) < 0.5 + 0.5 * rng.random()]
        x += place(n, top, knock, ringing(rng, [rng.uniform(1100, 1500), rng.uniform(2600, 3000)], 0.006, 0.05))
    loose = _amount(fault, "loose", 0.08, 0.4)
    if loose:
        x *= 1 + loose * np.sin(np.pi * turns)
        every_other = _revolution_times(turns / 2, 0.8)
        x += place(n, every_other, 3 * loose, ringing(rng, [rng.uniform(300, 500), rng.uniform(900, 1200)], 0.01, 0.06))
    return _COMPRESSOR_MIC.apply(rng, x)


MACHINES = (
    MachineType(
        "ShiftFan",
        (Attribute("spd", ("20", "23", "26", "29"), ("44",)), Attribute("bl", ("5", "7"), ("5", "7"))),
        ("imbalance", "blade", "slip", "rub", "whine"),
        fan,
        snr_db=(8.0, 14.0),
    ),
    MachineType(
        "ShiftValve",
        (Attribute("pat", ("00", "01", "02", "03"), ("01", "02")), Attribute("mic", ("A", "B"), ("C",))),
        ("contamination", "leak", "sticking", "bounce", "spring"),
        valve,
        snr_db=(9.0, 15.0),
    ),
    MachineType(
        "ShiftSlider",
        (
            Attribute("vel", ("300", "500", "700", "900"), ("500", "700")),
            Attribute("ac", ("0.05", "0.1", "0.2"), ("0.4",)),
        ),
        ("scratch", "dry", "belt", "drive"),
        slider,
        snr_db=(8.0, 14.0),
        hidden=True,
    ),
    MachineType(
        "ShiftGearbox",
        (
            Attribute("volt", ("1.0", "1.3", "1.6", "1.9"), ("2.2", "2.5")),
            Attribute("wt", ("0", "100", "200"), ("350",)),
        ),
        ("broken", "wear", "misalign", "brushes"),
        gearbox,
        snr_db=(6.0, 12.0),
        hidden=True,
    ),
    MachineType(
        "ShiftPump",
        (Attribute("flow", ("20", "30", "40", "50"), ("30", "40")), Attribute("bg", ("hall", "workshop"), ("yard",))),
        ("cavitation", "clog", "leak", "seal"),
        pump,
        snr_db=(6.0, 12.0),
        background="bg",
    ),
    MachineType(
        "ShiftBearing",
        (Attribute("vel", ("6", "8", "10", "12"), ("8", "10")), Attribute("loc", ("A", "B"), ("C",))),
        ("outer", "inner", "ball", "lubrication", "preload"),
        bearing,
        snr_db=(9.0, 15.0),
    ),
    MachineType(
        "ShiftCompressor",
        (Attribute("rpm", ("900", "1200", "1500"), ("1200", "1500")), Attribute("pres", ("4", "6", "8"), ("13",))),
        ("leak", "knock", "loose", "flutter", "timing"),
        compressor,
        snr_db=(8.0, 14.0),
    ),
)
