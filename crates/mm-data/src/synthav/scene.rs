//! Scene layout and rendering.

use ndarray::{Array2, Array3};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{IMAGE, MAX_OBJECTS};

/// Object shapes (class ids are indices).
pub const SHAPES: [&str; 3] = ["circle", "square", "triangle"];
/// Object colours.
pub const COLOURS: [&str; 5] = ["red", "green", "blue", "yellow", "purple"];
/// Object sizes.
pub const SIZES: [&str; 2] = ["small", "large"];
/// Scene types (backgrounds and ambiences).
pub const SCENE_TYPES: [&str; 4] = ["beach", "forest", "city", "night"];

const RGB: [[u8; 3]; 5] = [
    [220, 40, 40],
    [40, 170, 60],
    [50, 80, 225],
    [235, 205, 40],
    [150, 60, 190],
];

/// One object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// Index into [`SHAPES`].
    pub shape: usize,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Index into [`SIZES`].
    pub size: usize,
    /// Centre column.
    pub x: usize,
    /// Centre row.
    pub y: usize,
    /// Whether it makes its sound in the clip.
    pub sounding: bool,
}

impl Object {
    /// Half-width in pixels.
    pub fn radius(&self) -> usize {
        if self.size == 0 { 6 } else { 11 }
    }

    /// Whether pixel `(row, col)` is inside the object.
    pub fn contains(&self, row: usize, col: usize) -> bool {
        let r = self.radius() as f32;
        let (dy, dx) = (row as f32 - self.y as f32, col as f32 - self.x as f32);
        match self.shape {
            0 => dx * dx + dy * dy <= r * r,
            1 => dx.abs() <= r * 0.85 && dy.abs() <= r * 0.85,
            _ => {
                // apex up: rows from y - r to y + r, half-width growing linearly
                let t = (dy + r) / (2.0 * r);
                (0.0..=1.0).contains(&t) && dx.abs() <= t * r
            }
        }
    }
}

/// A scene: its type and 1-3 objects with distinct (shape, colour) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// Index into [`SCENE_TYPES`].
    pub scene_type: usize,
    /// The objects (none overlapping).
    pub objects: Vec<Object>,
}

impl Scene {
    /// A random scene; at least one object sounds.
    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        let scene_type = rng.random_range(0..SCENE_TYPES.len());
        let n = rng.random_range(1..=MAX_OBJECTS);
        let mut objects: Vec<Object> = Vec::new();
        let mut tries = 0;
        while objects.len() < n && tries < 200 {
            tries += 1;
            let size = rng.random_range(0..SIZES.len());
            let r = if size == 0 { 6 } else { 11 };
            let o = Object {
                shape: rng.random_range(0..SHAPES.len()),
                colour: rng.random_range(0..COLOURS.len()),
                size,
                x: rng.random_range(r + 1..IMAGE - r - 1),
                y: rng.random_range(r + 1..IMAGE - r - 1),
                sounding: rng.random_bool(0.6),
            };
            let clash = objects.iter().any(|p| {
                let (dx, dy) = (p.x as f32 - o.x as f32, p.y as f32 - o.y as f32);
                (p.shape == o.shape && p.colour == o.colour)
                    || (dx * dx + dy * dy).sqrt() < (p.radius() + o.radius() + 3) as f32
            });
            if !clash {
                objects.push(o);
            }
        }
        if !objects.iter().any(|o| o.sounding) {
            let k = rng.random_range(0..objects.len());
            objects[k].sounding = true;
        }
        Self {
            scene_type,
            objects,
        }
    }

    /// The image, `[64, 64, 3]`.
    pub fn render(&self, rng: &mut ChaCha8Rng) -> Array3<u8> {
        let mut img = Array3::<u8>::zeros((IMAGE, IMAGE, 3));
        let stars: Vec<(usize, usize)> = (0..25)
            .map(|_| (rng.random_range(0..IMAGE), rng.random_range(0..IMAGE)))
            .collect();
        for row in 0..IMAGE {
            for col in 0..IMAGE {
                let noise = rng.random_range(-12i32..=12);
                let base: [i32; 3] = match self.scene_type {
                    // sky over sand
                    0 if row < IMAGE / 3 => [120, 180, 235],
                    0 => [225, 200, 140],
                    // foliage with darker patches
                    1 => {
                        let patch = ((row / 8 + col / 8) % 3) as i32 * 15;
                        [40, 110 - patch, 45]
                    }
                    // grey blocks and streets
                    2 if row % 16 == 0 || col % 16 == 0 => [70, 70, 75],
                    2 => [150, 150, 155],
                    // dark sky
                    _ => [15, 20, 50],
                };
                for c in 0..3 {
                    img[[row, col, c]] = (base[c] + noise).clamp(0, 255) as u8;
                }
            }
        }
        if self.scene_type == 3 {
            for (r, c) in stars {
                for ch in 0..3 {
                    img[[r, c, ch]] = 230;
                }
            }
        }
        for o in &self.objects {
            let rgb = RGB[o.colour];
            for row in 0..IMAGE {
                for col in 0..IMAGE {
                    if o.contains(row, col) {
                        let shade = rng.random_range(-10i32..=10);
                        for c in 0..3 {
                            img[[row, col, c]] = (i32::from(rgb[c]) + shade).clamp(0, 255) as u8;
                        }
                    }
                }
            }
        }
        img
    }

    /// Pixels covered by sounding objects, `[64, 64]` of 0 or 1.
    pub fn sounding_mask(&self) -> Array2<u8> {
        Array2::from_shape_fn((IMAGE, IMAGE), |(r, c)| {
            u8::from(self.objects.iter().any(|o| o.sounding && o.contains(r, c)))
        })
    }
}
