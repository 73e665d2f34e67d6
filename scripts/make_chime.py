"""Writes display/static/chime.wav: the two-tone chime the waiting-room display plays before
each call. Bundled so displays work offline; run again only to change the sound."""
import math
import struct
import wave
from pathlib import Path

RATE = 22050
NOTES = [(659.25, 0.0), (523.25, 0.45)]  # E5 then C5: "ding-dong"
LENGTH = 1.3


def sample(t: float) -> float:
    value = 0.0
    for frequency, start in NOTES:
        if t >= start:
            age = t - start
            envelope = math.exp(-3.2 * age) * min(1.0, age / 0.005)
            value += envelope * (math.sin(2 * math.pi * frequency * age) + 0.3 * math.sin(4 * math.pi * frequency * age))
    return value * 0.35


def main():
    path = Path(__file__).resolve().parent.parent / "display" / "static" / "chime.wav"
    frames = b"".join(struct.pack("<h", int(max(-1, min(1, sample(i / RATE))) * 32767)) for i in range(int(RATE * LENGTH)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
