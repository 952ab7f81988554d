//! Column chunk statistics of top-level string columns, computed here rather than by the
//! Parquet writer. The writer compares every string with the page's minimum and maximum in full
//! (two `memcmp` calls a value); here the first 16 bytes are compared as one integer and only
//! ties are compared in full. On the benchmark dataset (seven string columns of thirteen) the
//! writer's comparisons took a tenth of the run; these take about two thirds of that.
//!
//! What is written is what the Parquet writer would write for the chunk: minimum and maximum
//! (cut to 64 bytes as it cuts them, the maximum rounded up), null count, the bytes of the
//! values, and the definition level histogram of a nullable column. The page level statistics
//! (the column index) of these columns are not written: the chunk's are what most readers prune
//! with (DuckDB writes no page index at all; Polars writes one), and a reader that uses page
//! statistics still has them for every other column.

use arrow::array::{Array, ByteView, GenericStringArray, MAX_INLINE_VIEW_LEN, OffsetSizeTrait, StringViewArray};
use parquet::data_type::ByteArray;
use parquet::errors::Result;
use parquet::file::metadata::{ColumnChunkMetaData, LevelHistogram};
use parquet::file::statistics::{Statistics, ValueStatistics};

/// Bytes of a minimum or maximum kept in the statistics, as the Parquet writer's default.
const TRUNCATE_BYTES: usize = 64;

/// Minimum, maximum, nulls and value bytes of a string column chunk, updated batch by batch.
#[derive(Debug, Default)]
pub struct StringStatistics {
    min: Option<Vec<u8>>,
    max: Option<Vec<u8>>,
    nulls: u64,
    values: u64,
    bytes: i64,
}

impl StringStatistics {
    pub fn update<O: OffsetSizeTrait>(&mut self, array: &GenericStringArray<O>) {
        let nulls = array.null_count();
        self.nulls += nulls as u64;
        self.values += (array.len() - nulls) as u64;
        let values = array.value_data();
        let offsets = array.value_offsets();
        let range = |i: usize| offsets[i].as_usize()..offsets[i + 1].as_usize();
        let found = match array.nulls().filter(|_| nulls > 0) {
            None => {
                self.bytes += (offsets[array.len()] - offsets[0]).as_usize() as i64;
                min_max(offsets.windows(2).map(|w| Keyed::at(values, w[0].as_usize()..w[1].as_usize())))
            }
            Some(valid) => {
                self.bytes += valid.valid_indices().map(|i| range(i).len() as i64).sum::<i64>();
                min_max(valid.valid_indices().map(|i| Keyed::at(values, range(i))))
            }
        };
        self.found(found);
    }

    /// The same for string views (text read from Parquet without copying it, see
    /// `source::string_views`). A value of up to 12 bytes is held in its view, and compared
    /// as one integer made from the view alone ([`ShortBounds`]); only longer values are
    /// looked up in the array's buffers.
    pub fn update_views(&mut self, array: &StringViewArray) {
        let nulls = array.null_count();
        self.nulls += nulls as u64;
        self.values += (array.len() - nulls) as u64;
        let views = array.views();
        let mut scan = ViewScan { short: ShortBounds::new(), long: None, buffers: array.data_buffers() };
        match array.nulls().filter(|_| nulls > 0) {
            None => {
                self.bytes += views.iter().map(|v| i64::from(*v as u32)).sum::<i64>();
                for &view in views.iter() {
                    scan.add(view);
                }
            }
            Some(valid) => {
                for i in valid.valid_indices() {
                    self.bytes += i64::from(views[i] as u32);
                    scan.add(views[i]);
                }
            }
        }
        if let Some((min, max)) = scan.short.bounds() {
            self.found(Some((min.as_slice(), max.as_slice())));
        }
        self.found(scan.long.map(|b| (b.min.value, b.max.value)));
    }

    fn found(&mut self, found: Option<(&[u8], &[u8])>) {
        if let Some((min, max)) = found {
            if self.min.as_deref().is_none_or(|m| min < m) {
                self.min = Some(min.to_vec());
            }
            if self.max.as_deref().is_none_or(|m| max > m) {
                self.max = Some(max.to_vec());
            }
        }
    }

    /// `chunk`'s metadata with these statistics (the chunk was written without any). `nullable`:
    /// whether the column has a definition level.
    pub fn apply(self, chunk: ColumnChunkMetaData, nullable: bool) -> Result<ColumnChunkMetaData> {
        let (min, min_exact) = match self.min {
            Some(m) => {
                let (m, cut) = truncate_min(m);
                (Some(ByteArray::from(m)), !cut)
            }
            None => (None, true),
        };
        let (max, max_exact) = match self.max {
            Some(m) => {
                let (m, cut) = truncate_max(m);
                (Some(ByteArray::from(m)), !cut)
            }
            None => (None, true),
        };
        // Strings sort unsigned: only the min_value/max_value fields are written, not the
        // deprecated min/max ones.
        let stats = ValueStatistics::new(min, max, None, Some(self.nulls), false).with_min_is_exact(min_exact).with_max_is_exact(max_exact);
        let histogram = nullable.then(|| LevelHistogram::from(vec![self.nulls as i64, self.values as i64]));
        chunk
            .into_builder()
            .set_statistics(Statistics::ByteArray(stats))
            .set_unencoded_byte_array_data_bytes(Some(self.bytes))
            .set_definition_level_histogram(histogram)
            .build()
    }
}

/// Bytes of a value compared as one integer.
const KEY: usize = 16;
/// Bytes of a value a string view holds itself.
const INLINE: usize = MAX_INLINE_VIEW_LEN as usize;

/// `MASKS[n]` keeps the first `n` bytes of a big-endian key.
const MASKS: [u128; KEY + 1] = {
    let mut masks = [0u128; KEY + 1];
    let mut n = 1;
    while n <= KEY {
        masks[n] = u128::MAX << (8 * (KEY - n));
        n += 1;
    }
    masks
};

/// A value with its first 16 bytes as a big-endian integer, zero padded: when two keys differ,
/// the values compare as their keys do.
#[derive(Clone, Copy)]
struct Keyed<'a> {
    key: u128,
    value: &'a [u8],
}

impl<'a> Keyed<'a> {
    /// The value at `range` of `values`. Most values are read with one load of 16 bytes (what
    /// follows a short value masked off) rather than a copy of their length.
    #[inline(always)]
    fn at(values: &'a [u8], range: std::ops::Range<usize>) -> Self {
        let len = range.len();
        let key = match values.get(range.start..range.start + KEY) {
            Some(head) => u128::from_be_bytes(head.try_into().expect("16 bytes")) & MASKS[len.min(KEY)],
            None => {
                let mut head = [0u8; KEY];
                let n = len.min(KEY);
                head[..n].copy_from_slice(&values[range.start..range.start + n]);
                u128::from_be_bytes(head)
            }
        };
        Self { key, value: &values[range] }
    }

    #[inline(always)]
    fn less(self, other: Self) -> bool {
        match self.key.cmp(&other.key) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            // Equal keys of values within 16 bytes: the shorter is a prefix of the longer
            // (the rest of its key is zeros, as are the longer one's bytes there).
            std::cmp::Ordering::Equal if self.value.len() <= KEY && other.value.len() <= KEY => self.value.len() < other.value.len(),
            std::cmp::Ordering::Equal => self.value < other.value,
        }
    }
}

/// The least and the greatest (byte order) of the values, or `None` when there are none.
fn min_max<'a>(mut values: impl Iterator<Item = Keyed<'a>>) -> Option<(&'a [u8], &'a [u8])> {
    let mut bounds = Bounds::of(values.next()?);
    for v in values {
        bounds.add(v);
    }
    Some((bounds.min.value, bounds.max.value))
}

/// The bounds of the values of a string view array, short and long apart.
struct ViewScan<'a> {
    short: ShortBounds,
    long: Option<Bounds<'a>>,
    buffers: &'a [arrow::buffer::Buffer],
}

impl<'a> ViewScan<'a> {
    #[inline(always)]
    fn add(&mut self, view: u128) {
        let len = view as u32 as usize;
        if len <= INLINE {
            self.short.add(view, len);
            return;
        }
        let view = ByteView::from(view);
        let start = view.offset as usize;
        let v = Keyed::at(self.buffers[view.buffer_index as usize].as_slice(), start..start + len);
        match self.long.as_mut() {
            Some(b) => b.add(v),
            None => self.long = Some(Bounds::of(v)),
        }
    }
}

/// The least and the greatest of values of up to 12 bytes, each packed into one integer that
/// orders as the value does: its bytes (from its view: bytes 4 to 15, little-endian, zero
/// padded) big-endian in the top 96 bits, its length in the low 32. Equal bytes but for the
/// zero padding mean the shorter value is a prefix of the longer, and the length decides.
/// Before the first value the minimum is above the maximum.
struct ShortBounds {
    min: u128,
    max: u128,
}

impl ShortBounds {
    fn new() -> Self {
        Self { min: u128::MAX, max: 0 }
    }

    #[inline(always)]
    fn add(&mut self, view: u128, len: usize) {
        let packed = ((view.swap_bytes() << 32) & MASKS[len]) | len as u128;
        self.min = self.min.min(packed);
        self.max = self.max.max(packed);
    }

    /// The least and the greatest value, when there was one.
    fn bounds(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let unpack = |p: u128| p.to_be_bytes()[..(p as u32 as usize).min(INLINE)].to_vec();
        (self.min <= self.max).then(|| (unpack(self.min), unpack(self.max)))
    }
}

/// The least and the greatest value so far.
struct Bounds<'a> {
    min: Keyed<'a>,
    max: Keyed<'a>,
}

impl<'a> Bounds<'a> {
    fn of(first: Keyed<'a>) -> Self {
        Self { min: first, max: first }
    }

    #[inline(always)]
    fn add(&mut self, v: Keyed<'a>) {
        // Most values are strictly between the two by their keys alone.
        if v.key > self.min.key && v.key < self.max.key {
            return;
        }
        if v.less(self.min) {
            self.min = v;
        } else if self.max.less(v) {
            self.max = v;
        }
    }
}

/// A minimum longer than 64 bytes cut at the last character boundary within them; whether it
/// was cut.
fn truncate_min(v: Vec<u8>) -> (Vec<u8>, bool) {
    if v.len() <= TRUNCATE_BYTES {
        return (v, false);
    }
    let Ok(s) = std::str::from_utf8(&v) else { return (v[..TRUNCATE_BYTES].to_vec(), true) };
    match (1..=TRUNCATE_BYTES).rfind(|&i| s.is_char_boundary(i)) {
        Some(at) => (v[..at].to_vec(), true),
        None => (v, false),
    }
}

/// A maximum longer than 64 bytes cut at a character boundary within them and its last
/// character that can be incremented without growing incremented (an upper bound still); the
/// whole value when none can.
fn truncate_max(v: Vec<u8>) -> (Vec<u8>, bool) {
    if v.len() <= TRUNCATE_BYTES {
        return (v, false);
    }
    let Ok(s) = std::str::from_utf8(&v) else { return (v, false) };
    let Some(at) = (TRUNCATE_BYTES - 3..=TRUNCATE_BYTES).rfind(|&i| s.is_char_boundary(i)) else { return (v, false) };
    let head = &s[..at];
    for (i, c) in head.char_indices().rev() {
        if let Some(next) = char::from_u32(c as u32 + 1).filter(|n| n.len_utf8() == c.len_utf8()) {
            let mut out = head.as_bytes()[..i + c.len_utf8()].to_vec();
            next.encode_utf8(&mut out[i..]);
            return (out, true);
        }
    }
    (v, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_and_max_agree_with_byte_order() {
        let mut r = crate::synthetic::Rng::new(11);
        let alphabet = [b'a', b'b', 0u8, 0xff, b'z'];
        for _ in 0..2_000 {
            let n = 1 + r.below(40) as usize;
            let values: Vec<Vec<u8>> = (0..n).map(|_| (0..r.below(24) as usize).map(|_| alphabet[r.below(5) as usize]).collect()).collect();
            // Laid out as an Arrow string array lays them out: one buffer, values end to end.
            let buffer: Vec<u8> = values.concat();
            let mut at = 0;
            let ranges: Vec<_> = values.iter().map(|v| (at..at + v.len(), at += v.len()).0).collect();
            let (min, max) = min_max(ranges.into_iter().map(|r| Keyed::at(&buffer, r))).unwrap();
            assert_eq!(min, values.iter().min().unwrap().as_slice(), "{values:?}");
            assert_eq!(max, values.iter().max().unwrap().as_slice(), "{values:?}");
            // The same values as string views: short ones inline, long ones in a buffer.
            let texts: Vec<String> = values.iter().map(|v| v.iter().map(|&b| char::from(b'a' + b % 26)).collect()).collect();
            let views = StringViewArray::from_iter_values(&texts);
            let mut stats = StringStatistics::default();
            stats.update_views(&views);
            let mut plain = StringStatistics::default();
            plain.update(&arrow::array::StringArray::from_iter_values(&texts));
            assert_eq!((&stats.min, &stats.max, stats.bytes), (&plain.min, &plain.max, plain.bytes), "{texts:?}");
            assert_eq!(stats.min.as_deref(), texts.iter().min().map(|t| t.as_bytes()), "{texts:?}");
            assert_eq!(stats.max.as_deref(), texts.iter().max().map(|t| t.as_bytes()), "{texts:?}");
        }
        assert!(min_max(std::iter::empty()).is_none());
    }

    #[test]
    fn long_values_are_cut_as_the_parquet_writer_cuts_them() {
        let long = "é".repeat(40); // 80 bytes, characters of 2
        let (min, cut) = truncate_min(long.clone().into_bytes());
        assert!(cut);
        assert_eq!(min, "é".repeat(32).into_bytes());
        let (max, cut) = truncate_max(long.into_bytes());
        assert!(cut);
        assert_eq!(String::from_utf8(max).unwrap(), format!("{}ê", "é".repeat(31)));
        assert_eq!(truncate_max(b"short".to_vec()), (b"short".to_vec(), false));
    }
}
