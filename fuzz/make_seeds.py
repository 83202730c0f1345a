#!/usr/bin/env python3
"""Writes tiny seed corpora for the fuzz targets into corpus/<target>/.

wav_reader: five small valid WAV files: 16-bit mono, 24-bit stereo, 8-bit mono (via the `wave`
module), 32-bit float stereo (WAVE_FORMAT_IEEE_FLOAT) and 24-bit-in-32 stereo
WAVE_FORMAT_EXTENSIBLE (both built by hand; `wave` only writes plain PCM).
audio_decode: FLAC, Ogg Vorbis and MP3 clips (needs the `soundfile` module, e.g. the venv of
`cargo xtask setup`; skipped without it) and the WAV seeds, each behind its hint byte.
word2vec_vectors: a text, a binary and a safetensors vector file, each behind its format byte.
converters: each annotation file of the target's valid tree, behind its file byte (both
skip-bad settings). data_reader takes structured input and starts from an empty corpus.
torch/corpus/: config_layers (the VQA SynthAV configuration and overrides), checkpoint_reader (a
valid checkpoint of the target's small model, with and without its checksums fixed up),
backbone_weights (small ResNet-18-named safetensors files).
"""
import json
import math
import os
import struct
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "wav_reader")
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


def seed(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# audio_decode: hint byte (0 flac, 1 ogg, 2 mp3, 3 wav, 5 none) + file
for name in sorted(os.listdir(OUT)):
    with open(os.path.join(OUT, name), "rb") as f:
        seed("audio_decode", name, bytes([3]) + f.read())
try:
    import io
    import numpy as np
    import soundfile as sf

    t = np.arange(4000) / 8000.0
    clip = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1)
    for hint, fmt, sub in [(0, "FLAC", "PCM_16"), (1, "OGG", "VORBIS"), (2, "MP3", "MPEG_LAYER_III")]:
        for ch in (1, 2):
            buf = io.BytesIO()
            sf.write(buf, clip[:, :ch], 8000, format=fmt, subtype=sub)
            for h in (hint, 5):
                seed("audio_decode", f"{fmt.lower()}_{ch}ch_hint{h}", bytes([h]) + buf.getvalue())
except ImportError:
    print("no soundfile: audio_decode gets the WAV seeds only")

# word2vec_vectors: format byte (0 text, 1 binary, 2 safetensors) + file
words = ["</s>", "the", "straße", "東京"]
vecs = [[0.1 * (i + 1), -0.5 * i, 2.0] for i in range(len(words))]
text = f"{len(words)} 3\n" + "".join(w + " " + " ".join(map(str, v)) + "\n" for w, v in zip(words, vecs))
seed("word2vec_vectors", "text", b"\x00" + text.encode())
binary = f"{len(words)} 3\n".encode() + b"".join(
    w.encode() + b" " + struct.pack("<3f", *v) + b"\n" for w, v in zip(words, vecs))
seed("word2vec_vectors", "binary", b"\x01" + binary)
data = b"".join(struct.pack("<3f", *v) for v in vecs)
header = json.dumps({"__metadata__": {"words": json.dumps(words)},
                     "vectors": {"dtype": "F32", "shape": [len(words), 3], "data_offsets": [0, len(data)]}}).encode()
header += b" " * (-len(header) % 8)
seed("word2vec_vectors", "safetensors", b"\x02" + struct.pack("<Q", len(header)) + header + data)

# converters: file byte (the order of FILES in converters.rs) + skip-bad byte + file
answers = [{"answer": "red", "answer_id": h} for h in range(10)]
conv = [
    json.dumps({"questions": [{"image_id": 1, "question": "what color is it?", "question_id": 10},
                              {"image_id": 2, "question": "is it red?", "question_id": 20}]}),
    json.dumps({"annotations": [{"question_id": q, "image_id": q // 10, "answers": answers,
                                 "multiple_choice_answer": "red", "answer_type": "other",
                                 "question_type": "what color is"} for q in (10, 20)]}),
    "filename,fold,target,category,esc10,src_file,take\n1-100-A-0.wav,1,0,dog,True,100,A\n"
    "2-200-A-1.wav,2,1,rooster,False,200,A\n",
    "a.jpg#0\tA dog runs.\na.jpg#1\tA brown dog.\nb.jpg#0\tA red ball.\n",
    "a.jpg\nb.jpg\n",
    json.dumps({"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"tokens": ["a", "dog"]}]},
                           {"filename": "b.jpg", "split": "val", "sentences": [{"tokens": ["a", "ball"]}]}]}),
    json.dumps({"images": [{"filepath": "train2014", "filename": "COCO_train2014_000000000001.jpg",
                            "split": "restval", "sentences": [{"tokens": ["a", "cat"]}]},
                           {"filepath": "val2014", "filename": "COCO_val2014_000000000007.jpg",
                            "split": "test", "sentences": [{"tokens": ["red"]}]}]}),
]
for i, body in enumerate(conv):
    for skip in (0, 1):
        seed("converters", f"file{i}_skip{skip}", bytes([i, skip]) + body.encode())
print("wrote seeds under", os.path.join(HERE, "corpus"))


# fuzz/torch targets
def torch_seed(target, name, data):
    d = os.path.join(HERE, "torch", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors):
    """tensors: name -> (dtype, shape, raw bytes); safetensors layout built by hand."""
    header, blob = {}, b""
    for k, (dt, shape, raw) in tensors.items():
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(n, v=0.1):
    return struct.pack(f"<{n}f", *([v] * n))


# config_layers: a TOML file, NUL, one --set override per line
with open(os.path.join(HERE, "..", "configs", "vqa", "synthav.toml"), "rb") as f:
    toml = f.read()
torch_seed("config_layers", "synthav", toml + b"\0train.batch_size=16\ntask.fusion=\"concat\"\n")
torch_seed("config_layers", "sets_only", b"\0train.optimizer.lr=1e-3\ntask.widths=[8, 16]\n")

# checkpoint_reader: flags, manifest, NUL, model file, NUL, optimizer file (the fuzz model:
# linear a 3->4, linear b 4->2; Adam keeps two moments per variable and a step count)
shapes = {"a.weight": [4, 3], "a.bias": [4], "b.weight": [2, 4], "b.bias": [2]}
model = safetensors({k: ("F32", s, f32(math.prod(s))) for k, s in shapes.items()})
opt = {f"{k}#{i}": ("F32", s, f32(math.prod(s), 0.0)) for k, s in shapes.items() for i in (0, 1)}
opt["#steps"] = ("F64", [1], struct.pack("<d", 3.0))
opt = safetensors(opt)
state = {"step": 1, "epoch": 0, "seed": 0, "best": 1.5, "best_step": 1,
         "evals_without_improvement": 0, "loss_window": [0.0, 0], "group_loss_window": [],
         "lr": 0.001, "frozen": []}
manifest = json.dumps({"files": {"model.safetensors": "0" * 64, "optimizer.safetensors": "0" * 64},
                       "state": state}).encode()
torch_seed("checkpoint_reader", "valid_fixed_sums", b"\x01" + manifest + b"\0" + model + b"\0" + opt)
torch_seed("checkpoint_reader", "bad_sums", b"\x00" + manifest + b"\0" + model + b"\0" + opt)

# backbone_weights: strict byte + a small safetensors file with some of ResNet-18's names
torch_seed("backbone_weights", "partial", b"\x00" + safetensors({
    "conv1.weight": ("F32", [64, 3, 1, 1], f32(192)),
    "bn1.running_mean": ("F32", [64], f32(64)),
    "fc.bias": ("F32", [1000], f32(1000)),
}))
torch_seed("backbone_weights", "wrong_shape_strict", b"\x01" + safetensors({
    "conv1.weight": ("F16", [2, 2], struct.pack("<4e", 1, 2, 3, 4)),
}))
print("wrote torch seeds under", os.path.join(HERE, "torch", "corpus"))
