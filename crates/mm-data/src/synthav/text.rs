//! Captions and questions from a small grammar.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scene::{COLOURS, Object, SHAPES, SIZES, Scene};

/// The kinds of question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuestionType {
    /// "what color is the circle ?"
    Colour = 0,
    /// "what shape is the red object ?"
    Shape = 1,
    /// "how many objects are there ?"
    Count = 2,
    /// "is there a blue square ?"
    Exist = 3,
    /// "is the red circle left of the blue square ?"
    Relation = 4,
}

impl QuestionType {
    /// Names by id.
    pub const NAMES: [&'static str; 5] = ["colour", "shape", "count", "exist", "relation"];
}

const SCENE_PHRASE: [&str; 4] = ["on the beach", "in the forest", "in the city", "at night"];
const NUMBERS: [&str; 3] = ["one", "two", "three"];
const RELATIONS: [&str; 4] = ["left of", "right of", "above", "below"];

/// The fixed vocabulary of every SynthAV text: `<pad> <unk> <start> <end>`, then the grammar's
/// words in sorted order.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    words: Vec<String>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

impl Vocabulary {
    /// The vocabulary.
    pub fn new() -> Self {
        let mut w: Vec<String> = [
            "a", "and", "there", "is", "objects", "object", ":", "?", "what", "color", "shape",
            "the", "how", "many", "are", "yes", "no",
        ]
        .iter()
        .chain(SHAPES.iter())
        .chain(COLOURS.iter())
        .chain(SIZES.iter())
        .chain(NUMBERS.iter())
        .map(|s| s.to_string())
        .chain(
            SCENE_PHRASE
                .iter()
                .chain(RELATIONS.iter())
                .flat_map(|p| p.split(' ').map(str::to_owned)),
        )
        .collect();
        w.sort();
        w.dedup();
        let mut words: Vec<String> = ["<pad>", "<unk>", "<start>", "<end>"]
            .map(String::from)
            .to_vec();
        words.extend(w);
        Self { words }
    }

    /// All words by id.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The id of `w` (`<unk>`'s for an unknown word).
    pub fn id(&self, w: &str) -> i32 {
        self.words.iter().position(|x| x == w).unwrap_or(1) as i32
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

fn np(o: &Object, with_size: bool) -> String {
    if with_size {
        format!(
            "{} {} {}",
            SIZES[o.size], COLOURS[o.colour], SHAPES[o.shape]
        )
    } else {
        format!("{} {}", COLOURS[o.colour], SHAPES[o.shape])
    }
}

fn relation(a: &Object, b: &Object) -> &'static str {
    let (dx, dy) = (b.x as i64 - a.x as i64, b.y as i64 - a.y as i64);
    if dx.abs() >= dy.abs() {
        if dx > 0 { "left of" } else { "right of" }
    } else if dy > 0 {
        "above"
    } else {
        "below"
    }
}

/// One caption of `scene`, in one of several phrasings.
pub fn caption(scene: &Scene, rng: &mut ChaCha8Rng) -> Vec<String> {
    let objs = &scene.objects;
    let place = SCENE_PHRASE[scene.scene_type];
    let list = |with_size: bool| {
        objs.iter()
            .map(|o| format!("a {}", np(o, with_size)))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let text = match rng.random_range(0..3) {
        0 => format!("{} {place}", list(true)),
        1 if objs.len() >= 2 => {
            let (a, b) = (&objs[0], &objs[1]);
            format!(
                "there is a {} {} a {}",
                np(a, true),
                relation(a, b),
                np(b, false)
            )
        }
        1 => format!("there is a {} {place}", np(&objs[0], true)),
        _ => format!(
            "{} {} {place} : {}",
            NUMBERS[objs.len() - 1],
            if objs.len() == 1 { "object" } else { "objects" },
            list(false)
        ),
    };
    words(&text)
}

/// One question about `scene` with its type and one-word answer.
pub fn question(scene: &Scene, rng: &mut ChaCha8Rng) -> (Vec<String>, QuestionType, String) {
    let objs = &scene.objects;
    let unique_shape: Vec<&Object> = objs
        .iter()
        .filter(|o| objs.iter().filter(|p| p.shape == o.shape).count() == 1)
        .collect();
    let unique_colour: Vec<&Object> = objs
        .iter()
        .filter(|o| objs.iter().filter(|p| p.colour == o.colour).count() == 1)
        .collect();
    loop {
        match rng.random_range(0..5) {
            0 => {
                if let Some(o) = unique_shape.choose(rng) {
                    let q = format!("what color is the {} ?", SHAPES[o.shape]);
                    return (words(&q), QuestionType::Colour, COLOURS[o.colour].into());
                }
            }
            1 => {
                if let Some(o) = unique_colour.choose(rng) {
                    let q = format!("what shape is the {} object ?", COLOURS[o.colour]);
                    return (words(&q), QuestionType::Shape, SHAPES[o.shape].into());
                }
            }
            2 => {
                let q = "how many objects are there ?";
                return (
                    words(q),
                    QuestionType::Count,
                    NUMBERS[objs.len() - 1].into(),
                );
            }
            3 => {
                let (shape, colour, answer) = if rng.random_bool(0.5) {
                    let o = objs[rng.random_range(0..objs.len())];
                    (o.shape, o.colour, "yes")
                } else {
                    let (s, c) = loop {
                        let s = rng.random_range(0..SHAPES.len());
                        let c = rng.random_range(0..COLOURS.len());
                        if !objs.iter().any(|o| o.shape == s && o.colour == c) {
                            break (s, c);
                        }
                    };
                    (s, c, "no")
                };
                let q = format!("is there a {} {} ?", COLOURS[colour], SHAPES[shape]);
                return (words(&q), QuestionType::Exist, answer.into());
            }
            _ => {
                if objs.len() >= 2 {
                    let i = rng.random_range(0..objs.len());
                    let j = (i + rng.random_range(1..objs.len())) % objs.len();
                    let (a, b) = (&objs[i], &objs[j]);
                    let asked = RELATIONS[rng.random_range(0..RELATIONS.len())];
                    let answer = if relation(a, b) == asked { "yes" } else { "no" };
                    let q = format!("is the {} {asked} the {} ?", np(a, false), np(b, false));
                    return (words(&q), QuestionType::Relation, answer.into());
                }
            }
        }
    }
}
