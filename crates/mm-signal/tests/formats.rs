//! FLAC, Ogg Vorbis and MP3 input through symphonia (feature `formats`), on fixtures made by
//! `scripts/make_format_fixtures.sh`: 0.25 s of 440 Hz (left) and 660 Hz (right) at 16 kHz.
#![cfg(feature = "formats")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mm_signal::{Error, Stft, StftConfig, decode_audio, read_audio};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/formats")
        .join(name)
}

/// The frequency of the loudest bin, averaged over frames.
fn peak_hz(y: &[f32], sr: u32) -> f64 {
    let stft = Stft::new(&StftConfig {
        n_fft: 2048,
        hop_length: Some(512),
        ..Default::default()
    })
    .unwrap();
    let p = stft.power(y).unwrap();
    let energy: Vec<f32> = p.rows().into_iter().map(|r| r.sum()).collect();
    let k = (0..energy.len())
        .max_by(|&a, &b| energy[a].total_cmp(&energy[b]))
        .unwrap();
    k as f64 * f64::from(sr) / 2048.0
}

#[test]
fn flac_decodes_to_exactly_the_wav_samples() {
    let wav = read_audio(&fixture("tone.wav")).unwrap();
    let flac = read_audio(&fixture("tone.flac")).unwrap();
    assert_eq!(flac.sample_rate, 16000);
    assert_eq!(flac.samples, wav.samples);
    assert_eq!(flac.samples.dim(), (2, 4000));
}

#[test]
fn lossy_formats_keep_rate_channels_length_and_pitch() {
    for name in ["tone.ogg", "tone.mp3"] {
        let a = read_audio(&fixture(name)).unwrap();
        assert_eq!(a.sample_rate, 16000, "{name}");
        assert_eq!(a.channels(), 2, "{name}");
        // encoders may add up to a frame of padding
        assert!(
            (3900..=5200).contains(&a.frames()),
            "{name}: {} frames",
            a.frames()
        );
        let left: Vec<f32> = a.samples.row(0).to_vec();
        let right: Vec<f32> = a.samples.row(1).to_vec();
        assert!((peak_hz(&left, 16000) - 440.0).abs() < 10.0, "{name} left");
        assert!(
            (peak_hz(&right, 16000) - 660.0).abs() < 10.0,
            "{name} right"
        );
    }
}

#[test]
fn corrupt_and_unknown_files_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let junk = dir.join("junk.flac");
    std::fs::write(&junk, b"fLaC\x00\x00\x00\x22 this is not a flac stream").unwrap();
    assert!(matches!(
        read_audio(&junk),
        Err(Error::Decode { .. } | Error::UnsupportedFormat { .. })
    ));
    let text = dir.join("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    let e = read_audio(&text).unwrap_err();
    assert!(e.to_string().contains("notes.txt"), "{e}");
    let mut cut = std::fs::read(fixture("tone.mp3")).unwrap();
    cut.truncate(cut.len() / 2);
    let half = dir.join("half.mp3");
    std::fs::write(&half, cut).unwrap();
    // a truncated MP3 decodes its complete frames (as decoders do) or fails typed; never panics
    if let Ok(a) = read_audio(&half) {
        assert!(a.frames() < 4000);
    }
}

#[test]
fn bytes_in_memory_decode_as_the_files_do() {
    for (name, ext) in [
        ("tone.wav", "wav"),
        ("tone.flac", "flac"),
        ("tone.ogg", "ogg"),
        ("tone.mp3", "mp3"),
    ] {
        let path = fixture(name);
        let bytes = std::fs::read(&path).unwrap();
        let from_file = read_audio(&path).unwrap();
        let hinted = decode_audio(bytes.clone(), Some(ext), &path).unwrap();
        assert_eq!(hinted, from_file, "{name}");
        if ext != "wav" {
            // symphonia finds the format from the contents alone
            assert_eq!(
                decode_audio(bytes, None, &path).unwrap(),
                from_file,
                "{name}"
            );
        }
    }
    let e = decode_audio(b"fLaC nonsense".to_vec(), Some("flac"), Path::new("x.flac")).unwrap_err();
    assert!(e.to_string().contains("x.flac"), "{e}");
}

/// Found by fuzz/audio_decode (2026-12-08): small files whose FLAC picture or comment block
/// declares gigabytes (a 2.5 GB media type; the same 5 bytes in; a 2.2 GB comment 16 bytes in),
/// which symphonia 0.5 allocates before reading (an abort where memory is not overcommitted,
/// an out-of-memory under the fuzzer). The stream symphonia would open is checked first now: a
/// typed error naming the file, nothing allocated.
#[test]
fn a_flac_block_that_declares_gigabytes_is_refused_before_allocating() {
    // the last two start their FLAC stream a few bytes in, where symphonia's probe finds it
    for (name, block) in [
        ("flac_bomb.flac", "picture"),
        ("flac_bomb_offset.flac", "picture"),
        ("flac_comment_bomb.flac", "comment"),
    ] {
        let path = fixture(name);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() < 4000);
        let e = decode_audio(bytes, Some("flac"), &path).unwrap_err();
        let msg = format!("{e:?}");
        let what = format!("{block} block declares");
        assert!(msg.contains(name) && msg.contains(&what), "{msg}");
        assert!(read_audio(&path).is_err());
    }
}

/// A capped decode stops once the frames pass the cap (compressed formats can hold hours in
/// kilobytes); under the cap it decodes as before.
#[test]
fn a_capped_decode_stops_at_its_cap() {
    let path = fixture("tone.flac");
    let tone = std::fs::read(&path).unwrap();
    let e = mm_signal::decode_audio_capped(tone.clone(), Some("flac"), &path, 1000).unwrap_err();
    assert!(format!("{e:?}").contains("more than 1000 frames"), "{e:?}");
    let a = mm_signal::decode_audio_capped(tone, Some("flac"), &path, 1 << 20).unwrap();
    assert_eq!(a.frames(), 4000);
}

/// Found by fuzz/audio_decode (2026-12-08): a WAVE_FORMAT_EXTENSIBLE header with 65,535
/// channels under an `.ogg` name, and the same 29 bytes into a file, made symphonia's RIFF
/// reader overflow a shift (a panic in debug builds). WAV content at the start now goes to
/// hound whatever the extension, and a WAV header further in is refused: typed errors.
#[test]
fn wav_content_under_another_name_is_read_as_wav() {
    let path = fixture("extensible_65535_channels.ogg");
    let bytes = std::fs::read(&path).unwrap();
    assert!(matches!(
        decode_audio(bytes, Some("ogg"), &path),
        Err(Error::Decode { .. } | Error::UnsupportedFormat { .. })
    ));
    assert!(read_audio(&path).is_err());
    // the same header 29 bytes in, where symphonia's probe would find it
    let path = fixture("extensible_65535_channels_offset.mp3");
    let e = decode_audio(std::fs::read(&path).unwrap(), Some("mp3"), &path).unwrap_err();
    assert!(format!("{e:?}").contains("RIFF header at byte 29"), "{e:?}");
    // a real WAV named .ogg reads as the WAV it is
    let tmp = tempfile::tempdir().unwrap();
    let renamed = tmp.path().join("tone.ogg");
    std::fs::copy(fixture("tone.wav"), &renamed).unwrap();
    assert_eq!(
        read_audio(&renamed).unwrap(),
        read_audio(&fixture("tone.wav")).unwrap()
    );
}
