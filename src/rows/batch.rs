//! The rows of one (table, partition) waiting to be written: lines in
//! recycled blocks, and the radix sort that orders them by `(t, id)`.

/// Bytes per block of a batch's lines.
pub(super) const BLOCK_BYTES: usize = 256 << 10;
/// Rows per block of a batch's row entries (256 KiB).
pub(super) const BLOCK_ROWS: usize = 8 << 10;

/// One buffered row: its sort key and where its line is.
#[derive(Clone, Copy, Default)]
pub(super) struct Row {
    pub(super) t: i64,
    pub(super) id: u64,
    block: u32,
    start: u32,
    end: u32,
}

/// Rows of one (table, partition) waiting to be written. Lines and row
/// entries live in fixed-size blocks that [`Spares`] recycles: a growing
/// batch never copies what it holds, and a new batch reuses the memory of
/// written ones instead of fresh pages the kernel must zero (growing `Vec`s
/// cost a sixth of the resolver thread's time that way).
#[derive(Default)]
pub(super) struct Batch {
    /// Lines; a line never spans two blocks.
    data: Vec<Vec<u8>>,
    pub(super) rows: Vec<Vec<Row>>,
    pub(super) bytes: usize,
    /// The lowest and highest `t`, and whether ids came in rising order
    /// (they do: ids follow the input), for [`sort_rows`].
    t_min: i64,
    t_max: i64,
    last_id: u64,
    ids_fall: bool,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a row whose line `format` writes, at most `max_len` bytes long
    /// (a longer one is still whole, in a block grown for it), straight
    /// into the batch's last block; returns the line's length.
    pub(super) fn push(
        &mut self,
        t: i64,
        id: u64,
        max_len: usize,
        spares: &mut Spares,
        format: impl FnOnce(&mut Vec<u8>),
    ) -> usize {
        if self.is_empty() {
            (self.t_min, self.t_max) = (t, t);
        }
        if self
            .data
            .last()
            .is_none_or(|b| b.capacity() - b.len() < max_len)
        {
            self.data.push(spares.data_block(max_len));
        }
        if self.rows.last().is_none_or(|r| r.len() == r.capacity()) {
            self.rows.push(spares.rows_block());
        }
        let block = self.data.len() - 1;
        let data = &mut self.data[block];
        let start = data.len();
        format(data);
        let row = Row {
            t,
            id,
            block: block as u32,
            start: start as u32,
            end: data.len() as u32,
        };
        if let Some(rows) = self.rows.last_mut() {
            rows.push(row);
        }
        self.t_min = self.t_min.min(t);
        self.t_max = self.t_max.max(t);
        self.ids_fall |= id < self.last_id;
        self.last_id = id;
        let len = data.len() - start;
        self.bytes += len;
        len
    }

    pub(super) fn line(&self, row: &Row) -> &[u8] {
        &self.data[row.block as usize][row.start as usize..row.end as usize]
    }
}

/// Blocks of written batches, for the next ones; at most `max` of each kind
/// are kept.
pub(super) struct Spares {
    data: Vec<Vec<u8>>,
    rows: Vec<Vec<Row>>,
    max: usize,
}

impl Spares {
    fn data_block(&mut self, min: usize) -> Vec<u8> {
        match self.data.pop() {
            Some(block) if block.capacity() >= min => block,
            _ => Vec::with_capacity(BLOCK_BYTES.max(min)),
        }
    }

    fn rows_block(&mut self) -> Vec<Row> {
        self.rows
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_ROWS))
    }

    pub(super) fn keep(&mut self, batch: Batch) {
        for mut block in batch.data {
            if self.data.len() < self.max && block.capacity() == BLOCK_BYTES {
                block.clear();
                self.data.push(block);
            }
        }
        for mut block in batch.rows {
            if self.rows.len() < self.max {
                block.clear();
                self.rows.push(block);
            }
        }
    }
}

impl Spares {
    /// Keeps at most `max` blocks of each kind.
    pub(super) fn new(max: usize) -> Spares {
        Spares {
            data: Vec::new(),
            rows: Vec::new(),
            max,
        }
    }
}

/// Bits of `t` one pass of [`sort_rows`] sorts by.
const RADIX_BITS: u32 = 11;

/// Sorts a batch's rows by `(t, id)`. Ids come in rising order, so a
/// stable sort by `t` alone does it: a least-significant-digit radix sort
/// on `t - t_min`, two passes for a 28-day partition, several times faster
/// than a comparison sort. Batches whose ids do not rise, or whose times
/// span more than 2^33 seconds, take the comparison sort.
pub(super) fn sort_rows(rows: &mut Vec<Row>, scratch: &mut Vec<Row>, batch: &Batch) {
    let span = batch.t_max.wrapping_sub(batch.t_min) as u64;
    if batch.ids_fall || span >= 1 << 33 || rows.len() < 256 {
        rows.sort_unstable_by_key(|r| (r.t, r.id));
        return;
    }
    let bits = u64::BITS - span.leading_zeros();
    let digits = 1usize << RADIX_BITS;
    let mask = (digits - 1) as u64;
    scratch.clear();
    scratch.resize(rows.len(), Row::default());
    let mut starts = vec![0usize; digits];
    let mut shift = 0;
    while shift < bits {
        let digit = |r: &Row| ((r.t - batch.t_min) as u64 >> shift & mask) as usize;
        starts.fill(0);
        for r in rows.iter() {
            starts[digit(r)] += 1;
        }
        let mut next = 0;
        for s in starts.iter_mut() {
            (*s, next) = (next, next + *s);
        }
        for r in rows.iter() {
            let d = digit(r);
            scratch[starts[d]] = *r;
            starts[d] += 1;
        }
        std::mem::swap(rows, scratch);
        shift += RADIX_BITS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radix sort orders rows as the comparison sort does, for spans of
    /// one to 33 bits, many equal times, and batches it leaves to the
    /// comparison sort (falling ids, huge spans).
    #[test]
    fn rows_sort_by_time_then_id() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let cases: [(u32, usize, bool); 7] = [
            (1, 5_000, false),
            (11, 5_000, false),
            (12, 70_000, false),
            (22, 70_000, false),
            (33, 20_000, false),
            (40, 20_000, false),
            (22, 20_000, true),
        ];
        for (span_bits, n, shuffled_ids) in cases {
            let mut batch = Batch::default();
            let mut spares = Spares::new(0);
            let base = -(1i64 << 35) + (next() % 1000) as i64;
            for i in 0..n as u64 {
                let t = base + (next() % (1u64 << span_bits)) as i64;
                let id = if shuffled_ids { next() % 1000 } else { i * 3 };
                batch.push(t, id, 2, &mut spares, |l| l.extend_from_slice(b"x\n"));
            }
            let mut rows: Vec<Row> = batch.rows.iter().flatten().copied().collect();
            let mut expected: Vec<(i64, u64)> = rows.iter().map(|r| (r.t, r.id)).collect();
            expected.sort_unstable();
            sort_rows(&mut rows, &mut Vec::new(), &batch);
            let got: Vec<(i64, u64)> = rows.iter().map(|r| (r.t, r.id)).collect();
            assert!(got == expected, "span 2^{span_bits}, {n} rows");
        }
    }
}
