//! Fuzzes `mm_signal::read_wav_from` (hound underneath), then `Audio::to_mono` and a small STFT
//! of the decoded signal. Errors are fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Upper bound on frames passed to the STFT, to keep each execution fast.
const MAX_STFT_FRAMES: usize = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(audio) = mm_signal::read_wav_from(std::io::Cursor::new(data)) else {
        return;
    };
    let mono = audio.to_mono();
    assert_eq!(mono.len(), audio.frames());
    if audio.samples.is_empty() || audio.frames() > MAX_STFT_FRAMES {
        return;
    }
    let cfg = mm_signal::StftConfig {
        n_fft: 64,
        hop_length: Some(16),
        ..Default::default()
    };
    if let Ok(stft) = mm_signal::Stft::new(&cfg) {
        let _ = stft.process(&mono);
    }
});
