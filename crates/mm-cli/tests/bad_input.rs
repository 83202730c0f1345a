//! The bad-input table of `docs/reliability.md`, run row by row (issue 31, item 4): each row's
//! command with its placeholders filled in must end as the row says (an error, or `ok`), print
//! the row's text (stderr for errors, stdout otherwise), never panic, and, when it fails, write
//! nothing at `{out}`. The table is the test's only list, so the document cannot drift from
//! what `mm` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::mm_command;
use hdf5_metno as hdf5;

/// One row: the command (after `mm`), what it feeds, `error` or `ok`, the text to find.
struct Row {
    command: String,
    input: String,
    error: bool,
    expect: String,
}

/// The table's rows, from the marker comment to the end of the table.
fn rows() -> Vec<Row> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reliability.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let start = text
        .find("<!-- bad-input table")
        .expect("docs/reliability.md has the bad-input table marker");
    let mut rows = Vec::new();
    for line in text[start..].lines().skip(3) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "a row of four cells: {line}");
        let code = |c: &str| {
            c.strip_prefix('`')
                .and_then(|c| c.strip_suffix('`'))
                .unwrap_or_else(|| panic!("`{c}` is not in backticks: {line}"))
                .to_owned()
        };
        let command = code(cells[0]);
        rows.push(Row {
            command: command
                .strip_prefix("mm ")
                .unwrap_or_else(|| panic!("not an mm command: {line}"))
                .to_owned(),
            input: cells[1].to_owned(),
            error: match cells[2] {
                "error" => true,
                "ok" => false,
                other => panic!("exit `{other}` is neither error nor ok: {line}"),
            },
            expect: code(cells[3]),
        });
    }
    rows
}

/// The placeholders' files, made once in `dir`.
fn inputs(dir: &Path) -> BTreeMap<&'static str, String> {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let mut m = BTreeMap::new();
    m.insert("missing", p("missing.wav"));
    std::fs::write(dir.join("empty.wav"), b"").unwrap();
    m.insert("empty", p("empty.wav"));
    std::fs::create_dir(dir.join("folder")).unwrap();
    m.insert("dir", p("folder"));
    std::fs::write(dir.join("notes.txt"), "just some text\n").unwrap();
    m.insert("text", p("notes.txt"));
    std::fs::write(dir.join("picture.png"), "not a picture\n").unwrap();
    m.insert("text_png", p("picture.png"));
    let tone = mm_signal::Audio {
        samples: ndarray::Array2::from_shape_fn((1, 16000), |(_, t)| (t as f32 * 0.07).sin() * 0.4),
        sample_rate: 16000,
    };
    mm_signal::write_wav(&dir.join("tone.wav"), &tone, mm_signal::WavEncoding::Pcm16).unwrap();
    m.insert("wav", p("tone.wav"));
    let bytes = std::fs::read(dir.join("tone.wav")).unwrap();
    std::fs::write(dir.join("cut.wav"), &bytes[..100]).unwrap();
    m.insert("wav_trunc", p("cut.wav"));
    for (name, key, value) in [
        ("nan.wav", "wav_nan", f32::NAN),
        ("huge.wav", "wav_huge", 1e30),
    ] {
        let mut a = tone.clone();
        a.samples[[0, 10]] = value;
        mm_signal::write_wav(&dir.join(name), &a, mm_signal::WavEncoding::Float32).unwrap();
        m.insert(key, p(name));
    }
    std::fs::copy(dir.join("tone.wav"), dir.join("locked.wav")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("locked.wav"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
    }
    m.insert("noperm", p("locked.wav"));
    let h5 = common::synthav(dir, 12);
    m.insert("h5", p("sv.h5"));
    let bytes = std::fs::read(&h5).unwrap();
    std::fs::write(dir.join("cut.h5"), &bytes[..5000]).unwrap();
    m.insert("h5_trunc", p("cut.h5"));
    hdf5::File::create(dir.join("other.h5"))
        .unwrap()
        .new_dataset_builder()
        .with_data(&[1i32, 2, 3])
        .create("x")
        .unwrap();
    m.insert("h5_other", p("other.h5"));
    std::fs::copy(&h5, dir.join("damaged.h5")).unwrap();
    {
        let f = hdf5::File::open_rw(dir.join("damaged.h5")).unwrap();
        let g = f.group("samples/captions").unwrap();
        let mut offsets: Vec<i64> = g.dataset("offsets").unwrap().read_raw().unwrap();
        *offsets.last_mut().unwrap() += 1000;
        g.unlink("offsets").unwrap();
        g.new_dataset_builder()
            .with_data(&offsets)
            .create("offsets")
            .unwrap();
    }
    m.insert("h5_damaged", p("damaged.h5"));
    let corpus: String = (0..300)
        .map(|i| {
            format!(
                "the w{} of w{} and w{}\n",
                i % 17,
                (i * 3) % 19,
                (i * 7) % 23
            )
        })
        .collect();
    std::fs::write(dir.join("corpus.txt"), corpus).unwrap();
    m.insert("corpus", p("corpus.txt"));
    std::fs::write(dir.join("bad.toml"), "[train\nepochs = 1\n").unwrap();
    m.insert("toml_bad", p("bad.toml"));
    m.insert("out", p("out"));
    m
}

fn fill(s: &str, inputs: &BTreeMap<&'static str, String>) -> String {
    inputs
        .iter()
        .fold(s.to_owned(), |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
}

#[test]
fn every_row_of_the_bad_input_table_holds() {
    let rows = rows();
    assert!(rows.len() >= 50, "{} rows", rows.len());
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    // as root, mode 000 does not stop a read: that row cannot be checked here
    let root = std::fs::read(&inputs["noperm"]).is_ok();
    let out = Path::new(&inputs["out"]);
    let mut failures = Vec::new();
    for row in &rows {
        if root && row.input.starts_with("no permission") {
            eprintln!("skipped as root: mm {}", row.command);
            continue;
        }
        let command = fill(&row.command, &inputs);
        assert!(
            !command.contains('{') || command.contains("{train,val}"),
            "unknown placeholder: {command}"
        );
        let args: Vec<&str> = command.split_whitespace().collect();
        let o = mm_command(&args).current_dir(dir.path()).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let expect = fill(&row.expect, &inputs);
        let shown = if row.error { &stderr } else { &stdout };
        let mut why = Vec::new();
        if o.status.success() == row.error {
            why.push(format!("exit {:?}", o.status.code()));
        }
        if !shown.contains(&expect) {
            why.push(format!("no `{expect}`"));
        }
        if stderr.contains("panicked") {
            why.push("a panic".into());
        }
        if row.error && out.exists() {
            why.push(format!("{} was written", out.display()));
        }
        if !why.is_empty() {
            failures.push(format!(
                "mm {command} ({}): {}\n  stdout: {stdout}\n  stderr: {stderr}",
                row.input,
                why.join(", ")
            ));
        }
        if out.is_dir() {
            std::fs::remove_dir_all(out).unwrap();
        } else if out.exists() {
            std::fs::remove_file(out).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
