//! Train/val splits: `temporal` (the first part of the frames in time order
//! train, the rest val — for video, where a random split would put
//! near-identical neighbouring frames on both sides) and `random` with a
//! seed (a fixed, documented generator, so a seed means the same split on
//! every machine and every version).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// How images are divided between train and val.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// Shuffle with `seed`, then cut.
    Random,
    /// Cut the images in file-name order (numbers compared by value).
    Temporal,
}

/// Which split an image lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// Images that go to train out of `count` for `fraction`: rounded, and at
/// least one on each side when there are two or more images and the
/// fraction is strictly between 0 and 1.
pub fn train_count(count: usize, fraction: f64) -> usize {
    let fraction = fraction.clamp(0.0, 1.0);
    let rounded = (count as f64 * fraction).round() as usize;
    if count >= 2 && fraction > 0.0 && fraction < 1.0 {
        rounded.clamp(1, count - 1)
    } else {
        rounded.min(count)
    }
}

/// The split of each of `count` images given in time order.
pub fn assign(count: usize, method: SplitMethod, fraction: f64, seed: u64) -> Vec<Split> {
    let train = train_count(count, fraction);
    let mut splits = vec![Split::Val; count];
    match method {
        SplitMethod::Temporal => splits[..train].fill(Split::Train),
        SplitMethod::Random => {
            let mut order: Vec<usize> = (0..count).collect();
            let mut rng = SplitMix64(seed);
            for i in (1..count).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            for &index in &order[..train] {
                splits[index] = Split::Train;
            }
        }
    }
    splits
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fixed, good enough to shuffle.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Orders names with digit runs compared as numbers (`f2` < `f10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (da, ra) = digit_run(a);
                let (db, rb) = digit_run(b);
                let (ta, tb) = (trim_zeros(da), trim_zeros(db));
                let by_value = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then_with(|| da.len().cmp(&db.len()));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn digit_run(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_split_takes_the_first_frames() {
        let splits = assign(4, SplitMethod::Temporal, 0.75, 0);
        assert_eq!(
            splits,
            [Split::Train, Split::Train, Split::Train, Split::Val]
        );
    }

    #[test]
    fn random_split_is_fixed_by_the_seed() {
        let a = assign(10, SplitMethod::Random, 0.7, 42);
        assert_eq!(a, assign(10, SplitMethod::Random, 0.7, 42));
        assert_eq!(a.iter().filter(|s| **s == Split::Train).count(), 7);
        assert_ne!(a, assign(10, SplitMethod::Random, 0.7, 43));
        // The generator is part of the format: this split must never change.
        let val: Vec<usize> = a
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Split::Val)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(val, GOLDEN_VAL);
    }

    const GOLDEN_VAL: [usize; 3] = [1, 2, 3];

    #[test]
    fn both_sides_get_an_image_when_possible() {
        assert_eq!(train_count(2, 0.9), 1);
        assert_eq!(train_count(2, 0.1), 1);
        assert_eq!(train_count(5, 1.0), 5);
        assert_eq!(train_count(5, 0.0), 0);
        assert_eq!(train_count(1, 0.5), 1);
        assert_eq!(train_count(0, 0.5), 0);
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["f10.jpg", "f2.jpg", "f1.jpg", "e.jpg", "f02.jpg", "f1a.jpg"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["e.jpg", "f1.jpg", "f1a.jpg", "f2.jpg", "f02.jpg", "f10.jpg"]
        );
    }
}
