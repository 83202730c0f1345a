#!/usr/bin/env bash
# Makes the small compressed-audio fixtures of crates/mm-signal/tests/fixtures/formats with sox
# (Debian: apt-get install sox libsox-fmt-all). Each is 0.25 s of 440 Hz (left) and 660 Hz
# (right) at 16 kHz; tone.wav is the same signal, lossless, to compare the FLAC against.
set -euo pipefail
out="$(dirname "$0")/../crates/mm-signal/tests/fixtures/formats"
mkdir -p "$out"
synth=(synth 0.25 sine 440 sine 660 gain -6 remix 1 2)
sox -n -r 16000 -c 2 -b 16 "$out/tone.wav" "${synth[@]}"
# from the WAV, without dither, so that the FLAC holds exactly the same samples
sox -D "$out/tone.wav" "$out/tone.flac"
sox "$out/tone.wav" "$out/tone.ogg"
sox "$out/tone.wav" "$out/tone.mp3"
ls -l "$out"
