//! Negative sampling (unigram^0.75, alias method), frequent-word subsampling, the Huffman tree
//! of hierarchical softmax and the tabulated logistic function.

/// Vose's alias table: O(1) exact draws from a discrete distribution (probabilities kept to
/// 32 bits). Each slot packs its threshold and alias into 8 bytes, so a draw touches one cache
/// line: the table is read for every negative and is larger than L1.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    /// `(threshold, alias)`: keep slot `i` when the low 32 random bits are below `threshold`.
    slots: Vec<(u32, u32)>,
}

impl Alias {
    /// A table for weights `w` (not all zero).
    pub(crate) fn new(w: &[f64]) -> Self {
        let n = w.len();
        let total: f64 = w.iter().sum();
        let mut prob: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| prob[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            prob[i] = 1.0;
            alias[i] = i as u32;
        }
        let slots = prob
            .iter()
            .zip(alias)
            .map(|(&p, a)| ((p * 4_294_967_296.0).min(4_294_967_295.0) as u32, a))
            .collect();
        Self { slots }
    }

    /// A draw from two uniform numbers: `u64` random bits.
    #[inline]
    pub(crate) fn sample(&self, bits: u64) -> usize {
        let i = ((bits >> 32) as usize * self.slots.len()) >> 32;
        let (threshold, alias) = self.slots[i];
        // a select, not a branch: the outcome is random, so a branch would mispredict often
        let keep = usize::from((bits as u32) < threshold);
        keep * i + (1 - keep) * alias as usize
    }
}

/// word2vec.c's linear congruential generator (`next_random * 25214903917 + 11`).
#[derive(Debug, Clone)]
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(25_214_903_917).wrapping_add(11);
        self.0
    }

    /// 64 well-mixed bits (two steps, SplitMix finaliser) for the alias table.
    #[inline]
    pub(crate) fn bits(&mut self) -> u64 {
        let mut z = self.next() ^ (self.next() << 17);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The probability of keeping an occurrence of a word seen `count` times among `total` training
/// words (word2vec.c: `(sqrt(cn / (s * T)) + 1) * (s * T) / cn`, capped at 1).
pub(crate) fn keep_probability(count: u64, total: u64, sample: f64) -> f64 {
    if sample <= 0.0 {
        return 1.0;
    }
    let st = sample * total as f64;
    let cn = count as f64;
    (((cn / st).sqrt() + 1.0) * st / cn).min(1.0)
}

/// word2vec.c's tabulated logistic function: 1000 values of `sigmoid` on `(-max, max)`, looked
/// up by truncation (`expTable`); callers handle |f| >= max themselves.
#[derive(Debug, Clone)]
pub(crate) struct Sigmoid {
    table: Vec<f32>,
    scale: f32,
    max: f32,
}

impl Sigmoid {
    const SIZE: usize = 1000;

    pub(crate) fn new(max: f32) -> Self {
        let table = (0..Self::SIZE)
            .map(|i| {
                let e = ((i as f32 / Self::SIZE as f32 * 2.0 - 1.0) * max).exp();
                e / (e + 1.0)
            })
            .collect();
        Self {
            table,
            scale: Self::SIZE as f32 / max / 2.0,
            max,
        }
    }

    /// `sigmoid(f)` for `-max < f < max` (clamped to the table's ends outside).
    #[inline(always)]
    pub(crate) fn at(&self, f: f32) -> f32 {
        let i = ((f + self.max) * self.scale).max(0.0) as usize;
        self.table[i.min(Self::SIZE - 1)]
    }
}

/// The Huffman tree of hierarchical softmax, built as word2vec.c's `CreateBinaryTree` builds it
/// (words by decreasing count; the two-queue merge; the second-smallest child gets code 1), so
/// word ids, codes and inner-node ids match the C tool's for the same vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Huffman {
    offsets: Vec<usize>,
    codes: Vec<u8>,
    points: Vec<u32>,
}

impl Huffman {
    /// The tree for `counts` (one per word id, at least 2 words).
    pub(crate) fn new(counts: &[u64]) -> Self {
        let v = counts.len();
        assert!(v >= 2, "a Huffman tree needs two words");
        let mut count: Vec<u64> = counts.to_vec();
        count.resize(2 * v, u64::MAX / 4);
        let mut parent = vec![0usize; 2 * v];
        let mut binary = vec![0u8; 2 * v];
        // pos1 walks the leaves from the rarest up, pos2 the merged nodes in creation order
        let (mut pos1, mut pos2) = (v as isize - 1, v);
        let mut smallest = |count: &[u64]| {
            if pos1 >= 0 && count[pos1 as usize] < count[pos2] {
                pos1 -= 1;
                (pos1 + 1) as usize
            } else {
                pos2 += 1;
                pos2 - 1
            }
        };
        for a in 0..v - 1 {
            let min1 = smallest(&count);
            let min2 = smallest(&count);
            count[v + a] = count[min1] + count[min2];
            parent[min1] = v + a;
            parent[min2] = v + a;
            binary[min2] = 1;
        }
        let root = 2 * v - 2;
        let (mut offsets, mut codes, mut points) = (vec![0], Vec::new(), Vec::new());
        let (mut code, mut point) = (Vec::new(), Vec::new());
        for a in 0..v {
            code.clear();
            point.clear();
            let mut b = a;
            while b != root {
                code.push(binary[b]);
                b = parent[b];
                point.push((b - v) as u32);
            }
            // root first: inner node ids count merges, so the root is v - 2
            codes.extend(code.iter().rev());
            points.extend(point.iter().rev());
            offsets.push(codes.len());
        }
        Self {
            offsets,
            codes,
            points,
        }
    }

    /// The codes (branch per level) and inner nodes (rows of `syn1`) from the root to `word`.
    #[inline]
    pub(crate) fn path(&self, word: usize) -> (&[u8], &[u32]) {
        let r = self.offsets[word]..self.offsets[word + 1];
        (&self.codes[r.clone()], &self.points[r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_draws_follow_the_weights() {
        let w = [1.0, 2.0, 3.0, 4.0];
        let a = Alias::new(&w);
        let mut rng = Lcg(1);
        let mut counts = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            counts[a.sample(rng.bits())] += 1;
        }
        for (c, w) in counts.iter().zip(w) {
            let p = *c as f64 / n as f64;
            assert!((p - w / 10.0).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn subsampling_matches_the_c_formula() {
        // a word that is 1 % of the corpus with sample 1e-3: (sqrt(10) + 1) / 10
        let p = keep_probability(10_000, 1_000_000, 1e-3);
        assert!((p - (10f64.sqrt() + 1.0) / 10.0).abs() < 1e-12);
        assert_eq!(keep_probability(5, 1_000_000, 1e-3), 1.0);
        assert_eq!(keep_probability(10_000, 1_000_000, 0.0), 1.0);
    }

    #[test]
    fn the_sigmoid_table_is_close_to_the_function() {
        let s = Sigmoid::new(6.0);
        for i in -599..600 {
            let f = i as f32 / 100.0;
            let exact = 1.0 / (1.0 + (-f).exp());
            // truncation to a 0.012-wide cell: the slope is at most 1/4
            assert!(
                (s.at(f) - exact).abs() < 0.004,
                "{f}: {} vs {exact}",
                s.at(f)
            );
        }
        assert!(s.at(-100.0) < 0.01 && s.at(100.0) > 0.99);
    }

    /// Cost (sum of count x depth) of an optimal prefix code, by the textbook heap algorithm.
    fn optimal_cost(counts: &[u64]) -> u64 {
        use std::cmp::Reverse;
        let mut h: std::collections::BinaryHeap<Reverse<u64>> =
            counts.iter().map(|&c| Reverse(c)).collect();
        let mut cost = 0;
        while h.len() > 1 {
            let (Reverse(a), Reverse(b)) = (h.pop().unwrap(), h.pop().unwrap());
            cost += a + b;
            h.push(Reverse(a + b));
        }
        cost
    }

    #[test]
    fn huffman_codes_are_optimal_prefix_codes_over_valid_nodes() {
        let mut rng = Lcg(3);
        for v in [2usize, 3, 5, 17, 200] {
            // decreasing counts, as the vocabulary is sorted
            let mut counts: Vec<u64> = (0..v).map(|_| 1 + rng.next() % 1000).collect();
            counts.sort_unstable_by(|a, b| b.cmp(a));
            let h = Huffman::new(&counts);
            let mut seen = std::collections::HashSet::new();
            let mut cost = 0;
            for (w, &c) in counts.iter().enumerate() {
                let (codes, points) = h.path(w);
                assert_eq!(codes.len(), points.len());
                assert!(!codes.is_empty());
                assert_eq!(points[0] as usize, v - 2, "paths start at the root");
                assert!(points.iter().all(|&p| (p as usize) < v - 1));
                cost += c * codes.len() as u64;
                let bits: String = codes.iter().map(|b| char::from(b'0' + b)).collect();
                seen.insert(bits);
            }
            assert_eq!(seen.len(), v, "codes are distinct");
            let all: Vec<String> = seen.iter().cloned().collect();
            for a in &all {
                for b in &all {
                    assert!(a == b || !b.starts_with(a.as_str()), "{a} prefixes {b}");
                }
            }
            assert_eq!(cost, optimal_cost(&counts), "v = {v}");
        }
    }

    #[test]
    fn huffman_matches_word2vec_c_on_a_small_vocabulary() {
        // expected paths from a line-by-line Python port of CreateBinaryTree: merges are
        // (1,2)->3 [node 0], (node 0: 3, word 2: 3)->6 [node 1], (4,5)->9 [node 2],
        // (node 1: 6, node 2: 9)->15 [node 3, the root]
        let h = Huffman::new(&[5, 4, 3, 2, 1]);
        assert_eq!(h.path(0), (&[1u8, 1][..], &[3u32, 2][..]));
        assert_eq!(h.path(1), (&[1u8, 0][..], &[3u32, 2][..]));
        assert_eq!(h.path(2), (&[0u8, 1][..], &[3u32, 1][..]));
        assert_eq!(h.path(3), (&[0u8, 0, 1][..], &[3u32, 1, 0][..]));
        assert_eq!(h.path(4), (&[0u8, 0, 0][..], &[3u32, 1, 0][..]));
    }
}
