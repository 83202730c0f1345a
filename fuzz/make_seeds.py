#!/usr/bin/env python3
"""Writes a tiny seed corpus for the wav_reader fuzz target into corpus/wav_reader/.

Four small valid WAV files: 16-bit mono, 24-bit stereo, 8-bit mono (via the `wave` module) and
32-bit float stereo (WAVE_FORMAT_IEEE_FLOAT, built by hand; `wave` only writes PCM).
"""
import math
import os
import struct
import wave

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "wav_reader")
os.makedirs(OUT, exist_ok=True)
N = 100  # frames per file


def tone(i, ch=0):
    return 0.5 * math.sin(2 * math.pi * (440 + 220 * ch) * i / 8000)


def pcm(name, sampwidth, channels):
    full = 1 << (8 * sampwidth - 1)
    frames = bytearray()
    for i in range(N):
        for c in range(channels):
            v = int(round(tone(i, c) * (full - 1)))
            if sampwidth == 1:
                frames += bytes([v + 128])  # 8-bit WAV is unsigned
            else:
                frames += v.to_bytes(sampwidth, "little", signed=True)
    with wave.open(os.path.join(OUT, name), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(8000)
        w.writeframes(bytes(frames))


def float32(name, channels):
    data = b"".join(struct.pack("<f", tone(i, c)) for i in range(N) for c in range(channels))
    rate, bits = 8000, 32
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, bits)  # 3 = IEEE float
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


pcm("pcm16_mono.wav", 2, 1)
pcm("pcm24_stereo.wav", 3, 2)
pcm("pcm8_mono.wav", 1, 1)
float32("float32_stereo.wav", 2)
print("wrote", sorted(os.listdir(OUT)))
