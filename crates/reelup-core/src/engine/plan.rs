use std::ops::Range;

/// S3's smallest allowed part, except for the last one.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's largest allowed part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// S3's limit on parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;

/// How one file is cut into multipart parts.
///
/// Every part has the same size except the last, which some S3-compatible stores require;
/// the size is the preferred one raised until the file fits in 10,000 parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    file_size: u64,
    part_size: u64,
}

impl PartPlan {
    pub fn new(file_size: u64, preferred_part_size: u64) -> Self {
        let mut part_size = preferred_part_size.clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        let needed = file_size.div_ceil(MAX_PARTS);
        if needed > part_size {
            // Round up to a whole MiB so part boundaries stay easy to reason about.
            part_size = needed.div_ceil(1024 * 1024) * 1024 * 1024;
        }
        Self {
            file_size,
            part_size: part_size.min(MAX_PART_SIZE),
        }
    }

    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// Number of parts; a zero-byte file still has one (empty) part.
    pub fn part_count(&self) -> u32 {
        // Bounded by MAX_PARTS for any file S3 accepts (5 TiB).
        self.file_size.div_ceil(self.part_size).max(1) as u32
    }

    /// Byte range of part `number` (1-based, as S3 numbers them).
    pub fn range(&self, number: u32) -> Range<u64> {
        let start = u64::from(number - 1) * self.part_size;
        start..(start + self.part_size).min(self.file_size)
    }

    pub fn parts(&self) -> impl Iterator<Item = (u32, Range<u64>)> + '_ {
        (1..=self.part_count()).map(|n| (n, self.range(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn ranges_cover_the_file_exactly() {
        let plan = PartPlan::new(40 * MIB + 7, 16 * MIB);
        assert_eq!(plan.part_count(), 3);
        let ranges: Vec<_> = plan.parts().map(|(_, r)| r).collect();
        assert_eq!(ranges[0], 0..16 * MIB);
        assert_eq!(ranges[1], 16 * MIB..32 * MIB);
        assert_eq!(ranges[2], 32 * MIB..40 * MIB + 7);
    }

    #[test]
    fn part_size_is_clamped_to_s3_minimum() {
        assert_eq!(PartPlan::new(100 * MIB, MIB).part_size(), MIN_PART_SIZE);
    }

    #[test]
    fn part_size_grows_to_fit_ten_thousand_parts() {
        let five_tib = 5 * 1024 * 1024 * MIB;
        let plan = PartPlan::new(five_tib, 16 * MIB);
        assert!(u64::from(plan.part_count()) <= MAX_PARTS);
        assert!(plan.part_size() <= MAX_PART_SIZE);
        assert_eq!(plan.range(plan.part_count()).end, five_tib);
    }

    #[test]
    fn exact_multiple_has_no_empty_tail() {
        let plan = PartPlan::new(32 * MIB, 16 * MIB);
        assert_eq!(plan.part_count(), 2);
        assert_eq!(plan.range(2), 16 * MIB..32 * MIB);
    }
}
