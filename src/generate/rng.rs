//! The generator's own PRNG and distributions, fixed so that a seed means
//! the same bytes forever.

/// The golden-ratio increment of SplitMix64.
pub(super) const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a fast, well-mixed bijection of `u64`.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256**, seeded through SplitMix64: fixed here so that a seed means the same
/// output forever.
pub(super) struct Rng([u64; 4]);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        let mut state = seed;
        Rng(std::array::from_fn(|_| {
            state = state.wrapping_add(GOLDEN_GAMMA);
            mix64(state)
        }))
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is negligible here).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub(super) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub(super) fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A Zipf-like distribution over ranks `0..n`, given each rank's weight.
///
/// Sampling looks a uniform 53-bit number up in a table of cumulative thresholds,
/// starting from a guide table (one entry per 1/2^k of the range) so that it takes
/// O(1) steps on average. Weights should only use `+ - * / sqrt`, which IEEE 754 rounds
/// exactly, so that the tables, and the output, are the same everywhere.
pub(super) struct Zipf {
    pub(super) thresholds: Vec<u64>,
    /// `guide[j]`: the first rank whose threshold exceeds `j << shift`.
    pub(super) guide: Vec<u32>,
    pub(super) shift: u32,
}

impl Zipf {
    pub(super) fn new(n: usize, weight: impl Fn(f64) -> f64) -> Self {
        const BITS: u32 = 53;
        let weight = |k: usize| weight(k as f64 + 1.0);
        let total: f64 = (0..n).map(weight).sum();
        let mut sum = 0.0;
        let mut thresholds: Vec<u64> = (0..n)
            .map(|k| {
                sum += weight(k);
                (sum / total * (1u64 << BITS) as f64) as u64
            })
            .collect();
        // Rounding must not leave the top of the range unreachable.
        *thresholds.last_mut().expect("at least one rank") = 1 << BITS;

        let guide_bits = n.next_power_of_two().trailing_zeros();
        let shift = BITS - guide_bits;
        let mut rank = 0;
        let guide = (0..1u64 << guide_bits)
            .map(|j| {
                while thresholds[rank] <= j << shift {
                    rank += 1;
                }
                rank as u32
            })
            .collect();
        Self {
            thresholds,
            guide,
            shift,
        }
    }

    pub(super) fn sample(&self, rng: &mut Rng) -> usize {
        let x = rng.next_u64() >> 11;
        let mut rank = self.guide[(x >> self.shift) as usize] as usize;
        while self.thresholds[rank] <= x {
            rank += 1;
        }
        rank
    }
}

/// Zipf–Mandelbrot weights: rank `r` (from 1) weighs 1 / (r + q).
pub(super) fn zipf(q: f64) -> impl Fn(f64) -> f64 {
    move |r| 1.0 / (r + q)
}

/// Steeper Zipf–Mandelbrot weights: rank `r` (from 1) weighs 1 / (r + q)^1.5.
pub(super) fn steep_zipf(q: f64) -> impl Fn(f64) -> f64 {
    move |r| 1.0 / ((r + q) * (r + q).sqrt())
}

// ---------------------------------------------------------------------------
