//! Fuzzes `mm_signal::decode_audio_capped` (what `read_audio` does to a file's bytes): the first input
//! byte picks the extension hint (FLAC, Ogg Vorbis, MP3, WAV or none, all but WAV through
//! symphonia), the rest is the file. Errors are fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HINTS: [Option<&str>; 6] = [
    Some("flac"),
    Some("ogg"),
    Some("mp3"),
    Some("wav"),
    Some("m4a"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = HINTS[pick as usize % HINTS.len()];
    // compressed formats can hold hours in kilobytes (constant FLAC frames): a cap of 2^22
    // frames (95 s at 44.1 kHz) keeps each input inside the fuzzer's memory limit
    let Ok(audio) =
        mm_signal::decode_audio_capped(bytes.to_vec(), hint, std::path::Path::new("fuzz"), 1 << 22)
    else {
        return;
    };
    assert_eq!(audio.to_mono().len(), audio.frames());
    assert!(audio.sample_rate > 0);
});
