//! The inputs of inference, parsed once by the caller: tasks match on [`Input`] instead of
//! parsing strings, and declare the [`InputKind`]s they take so that a wrong input is refused
//! with the kinds that would do, before any model is loaded.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// What kind of thing an inference input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InputKind {
    /// An image file.
    Image,
    /// An audio file.
    Audio,
    /// A text: a query, a question.
    Text,
    /// A sample of the task's own data set, by split and index.
    Sample,
}

impl InputKind {
    /// How the command line spells an input of this kind.
    pub fn spelling(self) -> &'static str {
        match self {
            InputKind::Image => "an image file",
            InputKind::Audio => "an audio file (.wav, .flac, .ogg, .mp3)",
            InputKind::Text => "text:WORDS",
            InputKind::Sample => "SPLIT:INDEX (train, val or test)",
        }
    }
}

/// One input of inference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An image file.
    Image(PathBuf),
    /// An audio file.
    Audio(PathBuf),
    /// A text.
    Text(String),
    /// Sample `index` of split `split` of the task's data set.
    Sample {
        /// `train`, `val` or `test`.
        split: String,
        /// 0-based index within the split.
        index: usize,
    },
}

/// File extensions read as audio; any other file is an image.
const AUDIO_EXTENSIONS: [&str; 4] = ["wav", "flac", "ogg", "mp3"];

impl Input {
    /// Parses the command line's spelling: `text:WORDS`, `SPLIT:INDEX` for a split named
    /// `train`, `val` or `test`, else a file path, audio by its extension and an image
    /// otherwise.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(t) = s.strip_prefix("text:") {
            if t.trim().is_empty() {
                return Err(Error::InvalidParameter {
                    name: "input",
                    reason: format!("`{s}`: the text is empty"),
                });
            }
            return Ok(Input::Text(t.to_owned()));
        }
        if let Some((split, index)) = s.split_once(':')
            && ["train", "val", "test"].contains(&split)
        {
            let index = index.parse().map_err(|_| Error::InvalidParameter {
                name: "input",
                reason: format!("`{s}`: expected {split}:INDEX with a non-negative index"),
            })?;
            return Ok(Input::Sample {
                split: split.to_owned(),
                index,
            });
        }
        if s.is_empty() {
            return Err(Error::InvalidParameter {
                name: "input",
                reason: "an empty input".into(),
            });
        }
        let path = PathBuf::from(s);
        let audio = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        Ok(if audio {
            Input::Audio(path)
        } else {
            Input::Image(path)
        })
    }

    /// The kind of this input.
    pub fn kind(&self) -> InputKind {
        match self {
            Input::Image(_) => InputKind::Image,
            Input::Audio(_) => InputKind::Audio,
            Input::Text(_) => InputKind::Text,
            Input::Sample { .. } => InputKind::Sample,
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Image(p) | Input::Audio(p) => write!(f, "{}", p.display()),
            Input::Text(t) => write!(f, "text:{t}"),
            Input::Sample { split, index } => write!(f, "{split}:{index}"),
        }
    }
}

/// An error unless every input is of a kind in `accepted` (and there is at least one).
pub fn check_kinds(task: &str, inputs: &[Input], accepted: &[InputKind]) -> Result<()> {
    let takes = || {
        accepted
            .iter()
            .map(|k| k.spelling())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if accepted.is_empty() {
        return Err(Error::InvalidParameter {
            name: "input",
            reason: format!("{task} takes no inference inputs"),
        });
    }
    if inputs.is_empty() {
        return Err(Error::InvalidParameter {
            name: "input",
            reason: format!("give {task} an input: {}", takes()),
        });
    }
    if let Some(i) = inputs.iter().find(|i| !accepted.contains(&i.kind())) {
        return Err(Error::InvalidParameter {
            name: "input",
            reason: format!("`{i}` is {}; {task} takes {}", i.kind().spelling(), takes()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_parse_to_their_kinds_and_print_back() {
        for (s, kind) in [
            ("test:3", InputKind::Sample),
            ("val:0", InputKind::Sample),
            ("text:a red circle", InputKind::Text),
            ("cat.png", InputKind::Image),
            ("dir/clip.WAV", InputKind::Audio),
            ("song.mp3", InputKind::Audio),
            ("c:/photo.jpg", InputKind::Image),
        ] {
            let i = Input::parse(s).unwrap();
            assert_eq!(i.kind(), kind, "{s}");
            assert_eq!(i.to_string(), s, "{s}");
        }
        assert_eq!(
            Input::parse("test:3").unwrap(),
            Input::Sample {
                split: "test".into(),
                index: 3
            }
        );
        for bad in ["test:x", "test:-1", "text:  ", ""] {
            assert!(Input::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inputs_of_other_kinds_are_refused_with_what_the_task_takes() {
        let takes = [InputKind::Image, InputKind::Sample];
        let ok = [
            Input::parse("a.png").unwrap(),
            Input::parse("test:1").unwrap(),
        ];
        check_kinds("captioning", &ok, &takes).unwrap();
        let e = check_kinds("captioning", &[Input::parse("x.wav").unwrap()], &takes)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`x.wav` is an audio file") && e.contains("an image file, SPLIT:INDEX"),
            "{e}"
        );
        let e = check_kinds("captioning", &[], &takes)
            .unwrap_err()
            .to_string();
        assert!(e.contains("give captioning an input"), "{e}");
        assert!(check_kinds("blobs", &ok, &[]).is_err());
    }
}
