//! Negative sampling (unigram^0.75, alias method) and frequent-word subsampling.

/// Vose's alias table: O(1) exact draws from a discrete distribution.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
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
        }
        Self { prob, alias }
    }

    /// A draw from two uniform numbers: `u64` random bits.
    #[inline]
    pub(crate) fn sample(&self, bits: u64) -> usize {
        let n = self.prob.len();
        let i = ((bits >> 32) as usize * n) >> 32;
        let u = (bits & 0xffff_ffff) as f64 / 4_294_967_296.0;
        if u < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
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
}
