//! Local derivatives of feature sequences, as `librosa.feature.delta` computes them: a
//! Savitzky-Golay filter (`scipy.signal.savgol_filter`, `polyorder = order`, `deriv = order`,
//! `mode='interp'`) along the time axis.

use ndarray::{Array2, ArrayView2, Axis};

use crate::error::{Result, invalid};

/// Coefficients `c` such that the degree-`polyorder` least-squares polynomial through samples at
/// offsets `-h..=h` (`h = width / 2`) has its `deriv`-th derivative at offset `t` equal to
/// `sum_j c[j] x[j]`.
fn savgol_weights(width: usize, polyorder: usize, deriv: usize, t: f64) -> Vec<f64> {
    let h = (width / 2) as f64;
    let k = polyorder + 1;
    // normal equations G = A^T A, with A[j][p] = (j - h)^p
    let mut g = vec![vec![0.0f64; k]; k];
    for j in 0..width {
        let x = j as f64 - h;
        for (p, row) in g.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                *v += x.powi((p + q) as i32);
            }
        }
    }
    // v[p] = d^deriv/dt^deriv t^p
    let v: Vec<f64> = (0..k)
        .map(|p| {
            if p < deriv {
                0.0
            } else {
                let fall: f64 = ((p - deriv + 1)..=p).map(|f| f as f64).product();
                fall * t.powi((p - deriv) as i32)
            }
        })
        .collect();
    // solve G z = v (G is symmetric positive definite and tiny): Gaussian elimination
    let mut m = g;
    let mut z = v;
    for col in 0..k {
        let piv = (col..k)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap_or(col);
        m.swap(col, piv);
        z.swap(col, piv);
        let pivot = m[col].clone();
        let zc = z[col];
        for (r, (row, zr)) in m.iter_mut().zip(z.iter_mut()).enumerate() {
            if r != col {
                let f = row[col] / pivot[col];
                for (v, pv) in row.iter_mut().zip(&pivot).skip(col) {
                    *v -= f * pv;
                }
                *zr -= f * zc;
            }
        }
    }
    for (r, zr) in z.iter_mut().enumerate() {
        *zr /= m[r][r];
    }
    // c[j] = sum_p z[p] (j - h)^p
    (0..width)
        .map(|j| {
            let x = j as f64 - h;
            (0..k).map(|p| z[p] * x.powi(p as i32)).sum()
        })
        .collect()
}

/// Delta features of `data` (`[features, frames]`) along frames: `width` odd and `>= 3`, at most
/// the number of frames; `order >= 1` (1 for deltas, 2 for delta-deltas).
pub fn delta(data: ArrayView2<'_, f32>, width: usize, order: usize) -> Result<Array2<f32>> {
    if width < 3 || width.is_multiple_of(2) {
        return Err(invalid(
            "width",
            format!("must be an odd integer >= 3, got {width}"),
        ));
    }
    if order == 0 {
        return Err(invalid("order", "must be a positive integer"));
    }
    let n = data.ncols();
    if width > n {
        return Err(invalid(
            "width",
            format!("{width} exceeds the number of frames ({n})"),
        ));
    }
    let h = width / 2;
    let centre = savgol_weights(width, order, order, 0.0);
    // edges: the polynomial fitted to the first (last) `width` frames, evaluated at the first
    // (last) `h` positions
    let head: Vec<Vec<f64>> = (0..h)
        .map(|i| savgol_weights(width, order, order, i as f64 - h as f64))
        .collect();
    let tail: Vec<Vec<f64>> = (0..h)
        .map(|i| savgol_weights(width, order, order, (i + 1) as f64))
        .collect();
    let mut out = Array2::zeros(data.dim());
    for (row, mut orow) in data.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        let x: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        let dot = |w: &[f64], start: usize| -> f32 {
            w.iter()
                .zip(&x[start..start + width])
                .map(|(a, b)| a * b)
                .sum::<f64>() as f32
        };
        for (i, w) in head.iter().enumerate() {
            orow[i] = dot(w, 0);
        }
        for i in h..n - h {
            orow[i] = dot(&centre, i - h);
        }
        for (i, w) in tail.iter().enumerate() {
            orow[n - h + i] = dot(w, n - width);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn delta_of_a_polynomial_is_its_derivative_everywhere() {
        // x(t) = 3 + 2t: first derivative 2 everywhere, edges included
        let n = 12;
        let lin = Array2::from_shape_fn((1, n), |(_, t)| 3.0 + 2.0 * t as f32);
        let d = delta(lin.view(), 5, 1).unwrap();
        assert!(d.iter().all(|v| (v - 2.0).abs() < 1e-4), "{d}");
        // x(t) = t^2: second derivative 2 everywhere with order 2
        let sq = Array2::from_shape_fn((2, n), |(_, t)| (t * t) as f32);
        let dd = delta(sq.view(), 7, 2).unwrap();
        assert!(dd.iter().all(|v| (v - 2.0).abs() < 1e-3), "{dd}");
    }

    #[test]
    fn classic_delta_weights() {
        // width 5, order 1: weights -2..2 / 10
        let w = savgol_weights(5, 1, 1, 0.0);
        for (a, b) in w.iter().zip([-0.2, -0.1, 0.0, 0.1, 0.2]) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
    }

    #[test]
    fn bad_arguments() {
        let x = Array2::<f32>::zeros((3, 8));
        assert!(delta(x.view(), 4, 1).is_err());
        assert!(delta(x.view(), 1, 1).is_err());
        assert!(delta(x.view(), 9, 1).is_err());
        assert!(delta(x.view(), 5, 0).is_err());
    }
}
