//! `cargo xtask bench`: the side-by-side benchmarks of `docs/benchmarks.md` in one command.
//!
//! Each benchmark runs its committed script (or criterion) with the flags that
//! `docs/benchmarks.md` documents, after installing the peers it compares against (librosa,
//! torchaudio, h5py) into the PyTorch venv and building the release binaries. Output goes to the
//! terminal and to `runs/bench/NAME.log`, headed by the date, commit and machine. A failing
//! benchmark does not stop the others; the task fails at the end if any did.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{build_release_tools, cargo, output, project_root, run as exec, step};

/// The peers the scripts import, beyond PyTorch and torchvision (versions as in
/// `scripts/requirements-ref.txt`).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("torchaudio", "2.11.0"),
    ("librosa", "0.11.0"),
    ("h5py", "3.16.0"),
];

/// Where the training benchmarks' data set is generated when missing.
const SYNTHAV: &str = "data/synthav.h5";
/// The word2vec corpus and evaluation files `benches/w2v/build_corpus.sh` makes.
const W2V_CORPUS: &str = "data/w2v/corpus.txt";
const W2V_ANALOGIES: &str = "data/w2v/questions-words.txt";
const W2V_SIMILARITY: &str = "data/w2v/wordsim353.tsv";

pub const USAGE: &str = "\
cargo xtask bench [--quick] [--threads N] [NAME...]

NAME: signal vision retrieval vqa captioning (the default set), criterion, word2vec, or all.
  signal      W1/W2 audio features: mm against librosa and torchaudio, 1 and N threads
  vision      backbone forward, batch 8: mm against PyTorch (ResNet-18/50, VGG-16)
  retrieval, vqa, captioning
              training throughput on SynthAV: mm against the equivalent PyTorch script
  criterion   cargo bench -p mm-benches (our own stages)
  word2vec    mm, gensim and word2vec.c on data/w2v/corpus.txt (benches/w2v/build_corpus.sh
              makes it; gensim from /opt/venv-w2v, word2vec.c from $WORD2VEC_C, each skipped
              when absent)
--quick       a smoke test: small sizes, one repeat (the numbers are not for the record)
--threads N   the multi-threaded column (default: every core)
Logs: runs/bench/NAME.log";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bench {
    Signal,
    Vision,
    Retrieval,
    Vqa,
    Captioning,
    Criterion,
    Word2vec,
}

impl Bench {
    const ALL: [Bench; 7] = [
        Bench::Signal,
        Bench::Vision,
        Bench::Retrieval,
        Bench::Vqa,
        Bench::Captioning,
        Bench::Criterion,
        Bench::Word2vec,
    ];
    /// What a bare `cargo xtask bench` runs: the side-by-side comparisons that need no
    /// downloaded corpus (criterion and word2vec take long and are asked for by name).
    const DEFAULT: [Bench; 5] = [
        Bench::Signal,
        Bench::Vision,
        Bench::Retrieval,
        Bench::Vqa,
        Bench::Captioning,
    ];

    fn name(self) -> &'static str {
        match self {
            Bench::Signal => "signal",
            Bench::Vision => "vision",
            Bench::Retrieval => "retrieval",
            Bench::Vqa => "vqa",
            Bench::Captioning => "captioning",
            Bench::Criterion => "criterion",
            Bench::Word2vec => "word2vec",
        }
    }

    fn parse(s: &str) -> Option<Bench> {
        Bench::ALL.into_iter().find(|b| b.name() == s)
    }

    fn trains(self) -> bool {
        matches!(self, Bench::Retrieval | Bench::Vqa | Bench::Captioning)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Options {
    quick: bool,
    threads: usize,
    benches: Vec<Bench>,
}

fn parse_args(args: &[String], cores: usize) -> Result<Options> {
    let mut quick = false;
    let mut threads = cores;
    let mut benches = Vec::new();
    let mut it = args.iter().map(String::as_str).filter(|a| *a != "--");
    while let Some(arg) = it.next() {
        match arg {
            "--quick" => quick = true,
            "--threads" => {
                let v = it.next().context("--threads needs a number")?;
                threads = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => bail!("--threads takes a positive whole number, not `{v}`"),
                };
            }
            "all" => benches.extend(Bench::ALL),
            flag if flag.starts_with('-') => bail!("unknown flag `{flag}`\n\n{USAGE}"),
            name => match Bench::parse(name) {
                Some(b) => benches.push(b),
                None => bail!("unknown benchmark `{name}`\n\n{USAGE}"),
            },
        }
    }
    if benches.is_empty() {
        benches.extend(Bench::DEFAULT);
    }
    let mut seen = Vec::new();
    benches.retain(|b| {
        let new = !seen.contains(b);
        seen.push(*b);
        new
    });
    Ok(Options {
        quick,
        threads,
        benches,
    })
}

/// One command of the plan, kept as data so that the plan can be tested without running it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
}

impl Cmd {
    fn new(program: impl Into<String>, args: &[&str]) -> Self {
        Self {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
    }

    fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    fn args_from(mut self, a: &[&str]) -> Self {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }

    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn command(&self, root: &Path) -> Command {
        let mut c = if self.program == "cargo" {
            cargo()
        } else {
            Command::new(&self.program)
        };
        c.current_dir(root).args(&self.args);
        for k in &self.env_remove {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// The command as a shell line that runs it (`env -u VAR ...` where it unsets some).
    fn display(&self) -> String {
        let mut s = String::new();
        if !self.env_remove.is_empty() {
            s += "env ";
        }
        for k in &self.env_remove {
            s += &format!("-u {k} ");
        }
        for (k, v) in &self.env {
            s += &format!("{k}={v} ");
        }
        s += &self.program;
        for a in &self.args {
            s += " ";
            s += a;
        }
        s
    }
}

/// The command that runs `bench`, with the flags `docs/benchmarks.md` records.
fn plan(bench: Bench, opts: &Options, python: &str) -> Cmd {
    let (n, quick) = (opts.threads.to_string(), opts.quick);
    // the one-thread column, and the multi-threaded one unless that is one thread too
    let one_and_n = if opts.threads == 1 {
        "1".to_string()
    } else {
        format!("1,{n}")
    };
    match bench {
        Bench::Signal => {
            let mut c = Cmd::new(
                python,
                &["scripts/bench_signal.py", "--threads", &one_and_n],
            )
            .arg("--repeat")
            .arg(if quick { "1" } else { "3" })
            .env("MM_SIGNAL_BENCH", "target/release/signal-workloads");
            if quick {
                c = c.arg("--quick");
            }
            // numpy's OpenBLAS picks its best kernel only when these are unset
            c.env_remove = vec!["OPENBLAS_CORETYPE".into(), "OPENBLAS_L2_SIZE".into()];
            c
        }
        Bench::Vision => {
            let c = Cmd::new(python, &["scripts/bench_vision.py", "--threads", &n])
                .env("MM_VISION_BENCH", "target/release/vision-workloads");
            if !quick {
                // each arch twice: the script alternates which side goes first per row, and on
                // a small VM the second side of a row runs a few per cent slower
                let archs = "resnet18,resnet18,resnet50,resnet50,vgg16,vgg16";
                c.args_from(&["--archs", archs, "--repeat", "15"])
            } else {
                c.args_from(&["--archs", "resnet18", "--repeat", "3", "--batch", "2"])
            }
        }
        Bench::Retrieval | Bench::Vqa | Bench::Captioning => {
            let script = format!("scripts/bench_{}.py", bench.name());
            let c = Cmd::new(python, &[&script, "--data", SYNTHAV])
                .args_from(&["--mm", "target/release/mm", "--threads", &n])
                // the allocator settings `mm` makes for itself, given to PyTorch too
                .env("MALLOC_MMAP_THRESHOLD_", "1073741824")
                .env("MALLOC_TRIM_THRESHOLD_", "1073741824");
            if quick {
                c.args_from(&["--steps", "30", "--repeat", "1"])
            } else {
                c
            }
        }
        Bench::Criterion => {
            // the criterion targets by name: libtest (the library's and binaries' test
            // harness) refuses criterion's flags such as --quick
            let c = Cmd::new("cargo", &["bench", "--locked", "-p", "mm-benches"])
                .args_from(&["--bench", "signal", "--bench", "vision", "--bench", "train"]);
            if quick {
                c.args_from(&["--", "--quick"])
            } else {
                c
            }
        }
        Bench::Word2vec => Cmd::new(python, &["benches/w2v/bench_word2vec.py"])
            .args_from(&["--corpus", W2V_CORPUS, "--analogies", W2V_ANALOGIES])
            .args_from(&["--similarity", W2V_SIMILARITY])
            .args_from(&["--mm", "target/release/mm", "--tools", "ours,gensim,c"])
            .args_from(&["--threads", &one_and_n])
            .args_from(&["--iter", if quick { "1" } else { "5" }]),
    }
}

/// Date, commit and machine, for the head of each log.
fn header(root: &Path) -> String {
    let text = |cmd: &mut Command| {
        output(cmd)
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let date = text(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let commit = text(
        Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "--short", "HEAD"]),
    );
    let dirty = text(Command::new("git").current_dir(root).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "# {date}; commit {commit}{}; {cpu}, {cores} cores\n",
        if dirty.is_empty() || dirty == "?" {
            ""
        } else {
            " (with uncommitted changes)"
        }
    )
}

/// Runs `cmd`, copying its output (stdout and stderr, interleaved) to the terminal and to
/// `log`, which is written under a temporary name and renamed when the command ends.
fn run_logged(cmd: &mut Command, head: &str, log: &Path) -> Result<std::process::ExitStatus> {
    let tmp = log.with_extension("log.part");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(head.as_bytes())?;
    let (mut reader, writer) = std::io::pipe().context("creating a pipe")?;
    cmd.stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {:?}", cmd.get_program()))?;
    // the Command holds the pipe's write ends: drop them, or the read never ends
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut buf = [0u8; 8192];
    let mut stdout = std::io::stdout();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the benchmark's output"),
        };
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
        file.write_all(&buf[..n])
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    let status = child.wait()?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, log)
        .with_context(|| format!("renaming {} to {}", tmp.display(), log.display()))?;
    Ok(status)
}

pub fn run(args: &[String]) -> Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = parse_args(args, cores)?;
    let root = project_root();
    crate::setup::run()?;
    step("bench: peers (torchaudio, librosa, h5py) in the PyTorch venv");
    let python = crate::setup::venv_python_with(BENCH_PACKAGES, "cargo xtask bench")?;
    let python = python.to_string_lossy().into_owned();

    step("bench: release build");
    build_release_tools()?;

    if opts.benches.iter().any(|b| b.trains()) && !root.join(SYNTHAV).is_file() {
        step("bench: generate SynthAV for the training benchmarks");
        exec(
            Command::new(root.join("target/release/mm"))
                .current_dir(&root)
                .args(["data", "synthav", "--out", SYNTHAV]),
            "generating SynthAV",
        )?;
    }

    let logs = root.join("runs/bench");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut results: Vec<(Bench, String, f64)> = Vec::new();
    for &bench in &opts.benches {
        step(&format!("bench {}", bench.name()));
        if bench == Bench::Word2vec && !root.join(W2V_CORPUS).is_file() {
            println!(
                "skip: {W2V_CORPUS} is missing; `bash benches/w2v/build_corpus.sh` builds it \
                 (see docs/benchmarks.md)"
            );
            results.push((bench, "skipped (no corpus)".into(), 0.0));
            continue;
        }
        let cmd = plan(bench, &opts, &python);
        println!("$ {}", cmd.display());
        let head = format!("{}$ {}\n", header(&root), cmd.display());
        let log = logs.join(format!("{}.log", bench.name()));
        let t0 = Instant::now();
        let outcome = match run_logged(&mut cmd.command(&root), &head, &log) {
            Ok(s) if s.success() => "ok".to_string(),
            Ok(s) => format!("FAILED ({s})"),
            Err(e) => format!("FAILED ({e:#})"),
        };
        results.push((bench, outcome, t0.elapsed().as_secs_f64()));
    }

    step("bench: summary");
    for (bench, outcome, secs) in &results {
        println!(
            "{:<11} {:<24} {:>7.0} s   runs/bench/{}.log",
            bench.name(),
            outcome,
            secs,
            bench.name()
        );
    }
    if opts.quick {
        println!("(--quick: a smoke test; the numbers are not for docs/benchmarks.md)");
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, o, _)| o.starts_with("FAILED"))
        .map(|(b, _, _)| b.name())
        .collect();
    if !failed.is_empty() {
        bail!("{} failed; see runs/bench/<name>.log", failed.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn no_names_means_the_default_set_with_every_core() {
        let o = parse_args(&[], 16).unwrap();
        assert_eq!(o.benches, Bench::DEFAULT.to_vec());
        assert_eq!(o.threads, 16);
        assert!(!o.quick);
    }

    #[test]
    fn names_flags_and_all_parse_without_duplicates() {
        let o = parse_args(&args("-- --quick vision --threads 2 signal vision"), 8).unwrap();
        assert_eq!(o.benches, vec![Bench::Vision, Bench::Signal]);
        assert_eq!((o.quick, o.threads), (true, 2));
        let o = parse_args(&args("criterion all"), 2).unwrap();
        assert_eq!(o.benches[0], Bench::Criterion);
        assert_eq!(o.benches.len(), Bench::ALL.len());
    }

    #[test]
    fn bad_arguments_are_errors_that_say_what_is_wrong() {
        let e = format!("{:#}", parse_args(&args("sgnal"), 2).unwrap_err());
        assert!(e.contains("unknown benchmark `sgnal`"), "{e}");
        assert!(e.contains("word2vec"), "the usage lists the names: {e}");
        for bad in ["--threads 0", "--threads two", "--threads"] {
            let e = format!("{:#}", parse_args(&args(bad), 2).unwrap_err());
            assert!(e.contains("--threads"), "{bad}: {e}");
        }
        let e = format!("{:#}", parse_args(&args("--fast"), 2).unwrap_err());
        assert!(e.contains("unknown flag `--fast`"), "{e}");
    }

    #[test]
    fn the_plan_uses_the_documented_flags() {
        let opts = parse_args(&args("all --threads 2"), 2).unwrap();
        let signal = plan(Bench::Signal, &opts, "py");
        assert_eq!(
            signal.display(),
            "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MM_SIGNAL_BENCH=target/release/signal-workloads \
             py scripts/bench_signal.py --threads 1,2 --repeat 3"
        );
        let vqa = plan(Bench::Vqa, &opts, "py");
        assert_eq!(
            vqa.display(),
            "MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 py \
             scripts/bench_vqa.py --data data/synthav.h5 --mm target/release/mm --threads 2"
        );
        let vision = plan(Bench::Vision, &opts, "py");
        let archs = vision.args.iter().position(|a| a == "--archs").unwrap() + 1;
        for arch in ["resnet18", "resnet50", "vgg16"] {
            let n = vision.args[archs].split(',').filter(|a| *a == arch).count();
            assert_eq!(n, 2, "{arch} runs in both orders: {vision:?}");
        }
        let w2v = plan(Bench::Word2vec, &opts, "py");
        assert!(w2v.args.windows(2).any(|w| w == ["--iter", "5"]), "{w2v:?}");
        // criterion runs every [[bench]] of mm-benches, by name
        let crit = plan(Bench::Criterion, &opts, "py");
        assert_eq!(crit.program, "cargo");
        let mut named: Vec<&str> = crit
            .args
            .windows(2)
            .filter(|w| w[0] == "--bench")
            .map(|w| w[1].as_str())
            .collect();
        let manifest = std::fs::read_to_string(project_root().join("benches/Cargo.toml")).unwrap();
        let mut declared: Vec<&str> = manifest
            .split("[[bench]]")
            .skip(1)
            .filter_map(|t| t.lines().find(|l| l.starts_with("name")))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        named.sort();
        declared.sort();
        assert_eq!(named, declared);
    }

    #[test]
    fn quick_shrinks_every_benchmark_and_one_thread_is_not_run_twice() {
        let opts = parse_args(&args("all --quick --threads 1"), 2).unwrap();
        let signal = plan(Bench::Signal, &opts, "py");
        assert!(signal.args.contains(&"--quick".to_string()));
        assert!(signal.args.windows(2).any(|w| w == ["--threads", "1"]));
        let w2v = plan(Bench::Word2vec, &opts, "py");
        assert!(
            w2v.args.windows(2).any(|w| w == ["--threads", "1"]),
            "{w2v:?}"
        );
        let vision = plan(Bench::Vision, &opts, "py");
        assert!(vision.args.windows(2).any(|w| w == ["--archs", "resnet18"]));
        for b in [Bench::Retrieval, Bench::Vqa, Bench::Captioning] {
            let c = plan(b, &opts, "py");
            assert!(c.args.windows(2).any(|w| w == ["--steps", "30"]), "{c:?}");
        }
        let crit = plan(Bench::Criterion, &opts, "py");
        assert_eq!(crit.args.last().map(String::as_str), Some("--quick"));
    }

    #[test]
    fn a_logged_run_tees_both_streams_into_a_log_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let status = run_logged(&mut cmd, "# head\n", &log).unwrap();
        assert_eq!(status.code(), Some(3));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("# head\n"), "{text}");
        assert!(text.contains("out\n") && text.contains("err\n"), "{text}");
        assert!(!log.with_extension("log.part").exists());
    }
}
