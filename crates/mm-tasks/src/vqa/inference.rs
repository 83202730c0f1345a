//! `mm infer vqa`: answers to a question about an image, with a picture of where it looked.

use std::path::Path;

use image::{Rgb, RgbImage};
use mm_plot as plot;
use mm_train::{Input, InputKind, Result};
use tch::{Device, Kind};

use super::{Vqa, bad};

impl Vqa {
    /// `mm infer vqa`: the top answers to the question (a text input) about the image (an
    /// image file or `SPLIT:K`), and a picture of the image, each glimpse's attention and the
    /// words it read.
    pub(super) fn answer(&self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        let images: Vec<&Input> = inputs
            .iter()
            .filter(|i| matches!(i.kind(), InputKind::Image | InputKind::Sample))
            .collect();
        let questions: Vec<&str> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Text(q) => Some(q.as_str()),
                _ => None,
            })
            .collect();
        let (&[image], &[question]) = (images.as_slice(), questions.as_slice()) else {
            return Err(bad(format!(
                "give one image (--image IMG or test:K) and one question (--question \"...\"), \
                 got {} and {}",
                images.len(),
                questions.len()
            )));
        };
        let lower = question.to_lowercase();
        let (kept, tokens): (Vec<&str>, Vec<i64>) = question_words(&lower)
            .into_iter()
            .filter_map(|w| self.vocab.get(w).map(|&id| (w, id)))
            .unzip();
        if tokens.is_empty() {
            return Err(bad(format!(
                "`{question}`: no word of the question is in the vocabulary"
            )));
        }
        let pixels = crate::common::input_image(|s| Ok(&self.split(s)?.images), image)?;
        let looked = self.forward(&pixels, &[&tokens], false)?;
        let probs = looked
            .logits
            .f_softmax(-1, Kind::Float)?
            .to_device(Device::Cpu);
        let (v, i) = probs.f_topk(5.min(self.classes.len() as i64), -1, true, true)?;
        let v = Vec::<f32>::try_from(&v.reshape([-1]))?;
        let i = Vec::<i64>::try_from(&i.reshape([-1]))?;
        let top: Vec<(String, f32)> = i
            .iter()
            .zip(&v)
            .map(|(&c, &p)| (self.classes[c as usize].clone(), p))
            .collect();
        // picture: the image x4, then each glimpse's attention; the question, the answers and
        // the word each glimpse read most
        let scale = 4;
        let shown = pixels.get(0);
        let ones = vec![1f32];
        let mut panels = vec![crate::common::attention_panel(
            &shown,
            &ones,
            (1, 1),
            scale,
        )?];
        let mut glimpses = Vec::new();
        // per glimpse, the word it read most
        let mut read = Vec::new();
        if let Some(maps) = &looked.maps {
            let maps = maps.to_device(Device::Cpu);
            let (_, g, mh, mw) = maps.size4()?;
            for k in 0..g {
                let alpha = Vec::<f32>::try_from(&maps.get(0).get(k).reshape([-1]))?;
                let dims = (mh as u32, mw as u32);
                panels.push(crate::common::attention_panel(&shown, &alpha, dims, scale)?);
                let peak = argmax(&alpha).0 as i64;
                let words = match &looked.words {
                    Some(w) => {
                        let w = Vec::<f32>::try_from(&w.get(0).get(k).to_device(Device::Cpu))?;
                        let (i, p) = argmax(&w);
                        read.push(format!(
                            "glimpse {}: \"{}\" {:.0}%",
                            k + 1,
                            kept.get(i).copied().unwrap_or("?"),
                            100.0 * p
                        ));
                        kept.iter()
                            .zip(w)
                            .map(|(&t, x)| serde_json::json!([t, x]))
                            .collect()
                    }
                    None => vec![],
                };
                glimpses.push(serde_json::json!({
                    "peak": [peak / mw, peak % mw],
                    "map_size": [mh, mw],
                    "words": words,
                }));
            }
        }
        let lines: Vec<String> = std::iter::once(format!("Q: {question}"))
            .chain(top.iter().map(|(a, p)| format!("{a}: {:.1}%", 100.0 * p)))
            .chain(read)
            .collect();
        let text_w = lines
            .iter()
            .map(|l| plot::text_width(l, 1))
            .max()
            .unwrap_or(0);
        let (pw, ph) = panels[0].dimensions();
        let row_w = (pw + 4) * panels.len() as u32;
        let mut img = RgbImage::from_pixel(
            row_w.max(text_w + 8),
            ph + 14 * lines.len() as u32 + 8,
            Rgb([255, 255, 255]),
        );
        for (k, p) in panels.iter().enumerate() {
            image::imageops::replace(&mut img, p, k as i64 * (pw + 4) as i64, 0);
        }
        for (k, l) in lines.iter().enumerate() {
            plot::draw_text(&mut img, 4, ph + 4 + 14 * k as u32, l, Rgb([20, 20, 20]), 1);
        }
        let png = out_dir.join("vqa.png");
        plot::save_png_atomic(&img, &png)?;
        Ok(serde_json::json!({
            "question": question,
            "image": image.to_string(),
            "answers": top.iter().map(|(a, p)| serde_json::json!({"answer": a, "probability": p})).collect::<Vec<_>>(),
            "glimpses": glimpses,
            "picture": png,
        }))
    }
}

/// The index and value of the largest entry (`(0, 0.0)` for none).
fn argmax(xs: &[f32]) -> (usize, f32) {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or((0, 0.0), |(i, &x)| (i, x))
}

/// A question's words as the data sets tokenise them: lower case, `?` a word of its own.
fn question_words(question: &str) -> Vec<&str> {
    question
        .split_whitespace()
        .flat_map(|w| match w.strip_suffix('?') {
            Some("") => vec!["?"],
            Some(w) => vec![w, "?"],
            None => vec![w],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_words_split_off_the_question_mark() {
        assert_eq!(
            question_words("is it red? yes ?"),
            ["is", "it", "red", "?", "yes", "?"]
        );
        assert_eq!(question_words("  "), Vec::<&str>::new());
    }
}
