#!/usr/bin/env python3
"""Writes a tiny seed corpus for the wav_reader fuzz target into corpus/wav_reader/.

Five small valid WAV files: 16-bit mono, 24-bit stereo, 8-bit mono (via the `wave` module),
32-bit float stereo (WAVE_FORMAT_IEEE_FLOAT) and 24-bit-in-32 stereo WAVE_FORMAT_EXTENSIBLE (both
built by hand; `wave` only writes plain PCM).
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


def extensible24in32(name, channels):
    # WAVE_FORMAT_EXTENSIBLE, 32-bit containers, 24 valid bits (hound reads the low 3 bytes)
    data = b"".join(
        (int(round(tone(i, c) * ((1 << 23) - 1))) & 0xFFFFFF).to_bytes(4, "little")
        for i in range(N)
        for c in range(channels)
    )
    rate, bits = 8000, 32
    block = channels * bits // 8
    pcm_guid = bytes.fromhex("0100000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, 24, 3)
    fmt += pcm_guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


pcm("pcm16_mono.wav", 2, 1)
pcm("pcm24_stereo.wav", 3, 2)
pcm("pcm8_mono.wav", 1, 1)
float32("float32_stereo.wav", 2)
extensible24in32("extensible_24in32_stereo.wav", 2)
print("wrote seeds to", OUT)
