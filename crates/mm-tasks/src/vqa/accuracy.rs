//! VQA accuracy exactly as the official evaluation (`vqaEval.py` of the VQA challenge)
//! computes it, quirks included:
//!
//! - the predicted answer is stripped, then punctuation-processed and digit/article-processed;
//! - the human answers are punctuation-processed **only when they are not all equal**, and
//!   never digit/article-processed;
//! - the accuracy is `min(1, #matches / 3)` averaged over the ten leave-one-human-out subsets;
//! - the period rule is the official regular expression `(?!<=\d)(\.)(?!\d)`, whose lookahead
//!   (meant as a lookbehind) removes every `.` not followed by a digit, at most 32 of them (the
//!   `re.UNICODE` flag lands in `sub`'s `count` argument).
//!
//! A single ground-truth answer (SynthAV) is scored by exact match after normalising both
//! sides (the official formula on one answer would always give 0, its only leave-one-out
//! subset being empty; and its ground truth is not digit-normalised because VQA's released
//! answers already are, while SynthAV says "three").

const PUNCT: [char; 21] = [
    ';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',',
    '?', '!',
];

const MANUAL_MAP: [(&str, &str); 12] = [
    ("none", "0"),
    ("zero", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("ten", "10"),
];

const ARTICLES: [&str; 3] = ["a", "an", "the"];

const CONTRACTIONS: [(&str, &str); 120] = [
    ("aint", "ain't"),
    ("arent", "aren't"),
    ("cant", "can't"),
    ("couldve", "could've"),
    ("couldnt", "couldn't"),
    ("couldn'tve", "couldn't've"),
    ("couldnt've", "couldn't've"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("dont", "don't"),
    ("hadnt", "hadn't"),
    ("hadnt've", "hadn't've"),
    ("hadn'tve", "hadn't've"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("hed", "he'd"),
    ("hed've", "he'd've"),
    ("he'dve", "he'd've"),
    ("hes", "he's"),
    ("howd", "how'd"),
    ("howll", "how'll"),
    ("hows", "how's"),
    ("Id've", "I'd've"),
    ("I'dve", "I'd've"),
    ("Im", "I'm"),
    ("Ive", "I've"),
    ("isnt", "isn't"),
    ("itd", "it'd"),
    ("itd've", "it'd've"),
    ("it'dve", "it'd've"),
    ("itll", "it'll"),
    ("let's", "let's"),
    ("maam", "ma'am"),
    ("mightnt", "mightn't"),
    ("mightnt've", "mightn't've"),
    ("mightn'tve", "mightn't've"),
    ("mightve", "might've"),
    ("mustnt", "mustn't"),
    ("mustve", "must've"),
    ("neednt", "needn't"),
    ("notve", "not've"),
    ("oclock", "o'clock"),
    ("oughtnt", "oughtn't"),
    ("ow's'at", "'ow's'at"),
    ("'ows'at", "'ow's'at"),
    ("'ow'sat", "'ow's'at"),
    ("shant", "shan't"),
    ("shed've", "she'd've"),
    ("she'dve", "she'd've"),
    ("she's", "she's"),
    ("shouldve", "should've"),
    ("shouldnt", "shouldn't"),
    ("shouldnt've", "shouldn't've"),
    ("shouldn'tve", "shouldn't've"),
    ("somebody'd", "somebodyd"),
    ("somebodyd've", "somebody'd've"),
    ("somebody'dve", "somebody'd've"),
    ("somebodyll", "somebody'll"),
    ("somebodys", "somebody's"),
    ("someoned", "someone'd"),
    ("someoned've", "someone'd've"),
    ("someone'dve", "someone'd've"),
    ("someonell", "someone'll"),
    ("someones", "someone's"),
    ("somethingd", "something'd"),
    ("somethingd've", "something'd've"),
    ("something'dve", "something'd've"),
    ("somethingll", "something'll"),
    ("thats", "that's"),
    ("thered", "there'd"),
    ("thered've", "there'd've"),
    ("there'dve", "there'd've"),
    ("therere", "there're"),
    ("theres", "there's"),
    ("theyd", "they'd"),
    ("theyd've", "they'd've"),
    ("they'dve", "they'd've"),
    ("theyll", "they'll"),
    ("theyre", "they're"),
    ("theyve", "they've"),
    ("twas", "'twas"),
    ("wasnt", "wasn't"),
    ("wed've", "we'd've"),
    ("we'dve", "we'd've"),
    ("weve", "we've"),
    ("werent", "weren't"),
    ("whatll", "what'll"),
    ("whatre", "what're"),
    ("whats", "what's"),
    ("whatve", "what've"),
    ("whens", "when's"),
    ("whered", "where'd"),
    ("wheres", "where's"),
    ("whereve", "where've"),
    ("whod", "who'd"),
    ("whod've", "who'd've"),
    ("who'dve", "who'd've"),
    ("wholl", "who'll"),
    ("whos", "who's"),
    ("whove", "who've"),
    ("whyll", "why'll"),
    ("whyre", "why're"),
    ("whys", "why's"),
    ("wont", "won't"),
    ("wouldve", "would've"),
    ("wouldnt", "wouldn't"),
    ("wouldnt've", "wouldn't've"),
    ("wouldn'tve", "wouldn't've"),
    ("yall", "y'all"),
    ("yall'll", "y'all'll"),
    ("y'allll", "y'all'll"),
    ("yall'd've", "y'all'd've"),
    ("y'alld've", "y'all'd've"),
    ("y'all'dve", "y'all'd've"),
    ("youd", "you'd"),
    ("youd've", "you'd've"),
    ("you'dve", "you'd've"),
    ("youll", "you'll"),
    ("youre", "you're"),
    ("youve", "you've"),
];

/// Whether `s` contains `digit , digit` (the official `commaStrip` pattern).
fn has_digit_comma_digit(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b',' && w[2].is_ascii_digit())
}

/// The official `processPunctuation`.
pub fn process_punctuation(input: &str) -> String {
    let comma = has_digit_comma_digit(input);
    let mut out = input.to_string();
    for p in PUNCT {
        let spaced = input.contains(&format!("{p} ")) || input.contains(&format!(" {p}"));
        out = if spaced || comma {
            out.replace(p, "")
        } else {
            out.replace(p, " ")
        };
    }
    // `(?!<=\d)(\.)(?!\d)` with count = 32: drop periods not followed by a digit
    let chars: Vec<char> = out.chars().collect();
    let mut kept = String::with_capacity(out.len());
    let mut removed = 0;
    for (i, &c) in chars.iter().enumerate() {
        let next_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c == '.' && !next_digit && removed < 32 {
            removed += 1;
        } else {
            kept.push(c);
        }
    }
    kept
}

/// The official `processDigitArticle`: lower-case, number words to digits, articles dropped,
/// contractions restored.
pub fn process_digit_article(input: &str) -> String {
    let lower = input.to_lowercase();
    let words: Vec<String> = lower
        .split_whitespace()
        .map(|w| {
            MANUAL_MAP
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w, |(_, v)| v)
                .to_string()
        })
        .filter(|w| !ARTICLES.contains(&w.as_str()))
        .map(|w| {
            CONTRACTIONS
                .iter()
                .find(|(k, _)| *k == w)
                .map_or(w.clone(), |(_, v)| v.to_string())
        })
        .collect();
    words.join(" ")
}

/// The answer normalisation applied to predictions (and to our answer classes).
pub fn normalize_answer(answer: &str) -> String {
    let a = answer.replace(['\n', '\t'], " ");
    process_digit_article(&process_punctuation(a.trim()))
}

/// The official accuracy of `prediction` against the human `answers` (usually 10), in `[0, 1]`.
pub fn vqa_accuracy(prediction: &str, answers: &[String]) -> f64 {
    if answers.is_empty() {
        return 0.0;
    }
    if answers.len() == 1 {
        return f64::from(u8::from(
            normalize_answer(prediction) == normalize_answer(&answers[0]),
        ));
    }
    let pred = normalize_answer(prediction);
    let stripped: Vec<String> = answers
        .iter()
        .map(|a| a.replace(['\n', '\t'], " ").trim().to_string())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = stripped.iter().collect();
    let gts: Vec<String> = if distinct.len() > 1 {
        stripped.iter().map(|a| process_punctuation(a)).collect()
    } else {
        stripped
    };
    let total: f64 = (0..gts.len())
        .map(|left_out| {
            let matches = gts
                .iter()
                .enumerate()
                .filter(|&(j, g)| j != left_out && *g == pred)
                .count();
            (matches as f64 / 3.0).min(1.0)
        })
        .sum();
    total / gts.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalisation_follows_the_official_rules() {
        assert_eq!(normalize_answer("  Two dogs!\t"), "2 dogs");
        assert_eq!(normalize_answer("the red one"), "red 1");
        assert_eq!(normalize_answer("isnt it"), "isn't it");
        assert_eq!(normalize_answer("yes."), "yes");
        assert_eq!(normalize_answer("3.5"), "3.5");
        // punctuation next to a space is deleted, elsewhere it becomes a space
        assert_eq!(process_punctuation("black-and-white"), "black and white");
        assert_eq!(process_punctuation("black - white"), "black  white");
        // with a digit,comma,digit anywhere, punctuation is deleted
        assert_eq!(process_punctuation("1,000 a-b"), "1000 ab");
        assert_eq!(process_digit_article("An Apple"), "apple");
    }

    #[test]
    fn accuracy_averages_the_leave_one_out_subsets() {
        // 10 humans, 3 say "2": each subset of 9 has 2 or 3 matches -> (7 x 1 + 3 x 2/3) / 10
        let mut a = s(&["2", "2", "2"]);
        a.extend(s(&["3"; 7]));
        assert!((vqa_accuracy("two", &a) - 0.9).abs() < 1e-12);
        assert!((vqa_accuracy("3", &a) - 1.0).abs() < 1e-12);
        // 1 of 10: 9 subsets hold it once (1/3), one subset not at all -> 0.3
        let mut b = s(&["cat"]);
        b.extend(s(&["dog"; 9]));
        assert!((vqa_accuracy("cat", &b) - 0.3).abs() < 1e-12);
        assert_eq!(vqa_accuracy("bird", &b), 0.0);
        // answers all equal: not normalised, so "yes." never matches the stripped "yes" ...
        assert_eq!(vqa_accuracy("yes", &s(&["yes."; 10])), 0.0);
        // ... but when answers differ they are punctuation-processed
        let mut c = s(&["yes."; 9]);
        c.push("no".into());
        assert!((vqa_accuracy("yes", &c) - 1.0).abs() < 1e-12);
        // digit/article processing is applied to the prediction only
        let d = s(&["the dog", "the dog", "the dog", "cat"]);
        assert_eq!(vqa_accuracy("the dog", &d), 0.0);
        // a single answer: exact match after normalisation
        assert_eq!(
            vqa_accuracy("Red", &s(&["red"])),
            1.0,
            "one answer = ten agreeing humans"
        );
        assert_eq!(vqa_accuracy("blue", &s(&["red"])), 0.0);
        assert_eq!(vqa_accuracy("x", &[]), 0.0);
    }
}
