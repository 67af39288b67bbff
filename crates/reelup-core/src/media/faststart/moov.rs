//! Rewriting `moov` for its new place: every chunk offset (`stco`, `co64`) in every track
//! moves with the media it points at, and `stco` becomes `co64` where an offset would no
//! longer fit in 32 bits. Everything else in `moov` is copied as it is.

use super::Mp4Problem;
use super::boxes::{BoxHeader, children, kind_name};

/// Boxes on the way from `moov` down to the chunk offset tables.
const CONTAINERS: &[&[u8; 4]] = &[b"trak", b"mdia", b"minf", b"stbl"];

/// Why a rewrite could not be made as asked.
pub(super) enum Refused {
    /// An offset needs 64 bits: rewrite again with every table as `co64`.
    Needs64Bit,
    Problem(Mp4Problem),
}

impl From<Mp4Problem> for Refused {
    fn from(p: Mp4Problem) -> Self {
        Self::Problem(p)
    }
}

/// Appends a box of `kind` around `payload`, with a 64-bit size only where one is needed.
fn write_box(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    let size = payload.len() as u64 + 8;
    if let Ok(size) = u32::try_from(size) {
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(kind);
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&(size + 8).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// The whole `moov` box (header included, read from file offset `start`), rewritten with
/// each chunk offset passed through `shift`; with `wide`, every table is written as `co64`.
pub(super) fn rewrite(
    moov: &[u8],
    start: u64,
    wide: bool,
    shift: &dyn Fn(u64) -> Result<u64, Mp4Problem>,
) -> Result<Vec<u8>, Refused> {
    let header = children(moov, start)?;
    let [moov_box] = header.as_slice() else {
        return Err(Mp4Problem::Corrupt {
            what: "the moov box read is not one box".into(),
            at: start,
        }
        .into());
    };
    let payload = &moov[moov_box.header_len as usize..];
    let inner = rewrite_children(payload, moov_box.payload_start(), wide, shift)?;
    let mut out = Vec::with_capacity(inner.len() + 16);
    write_box(&mut out, b"moov", &inner);
    Ok(out)
}

fn rewrite_children(
    data: &[u8],
    base: u64,
    wide: bool,
    shift: &dyn Fn(u64) -> Result<u64, Mp4Problem>,
) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::with_capacity(data.len() + 64);
    for child in children(data, base)? {
        let whole = &data[(child.start - base) as usize..(child.end() - base) as usize];
        let payload = &whole[child.header_len as usize..];
        if child.is(b"cmov") {
            return Err(Mp4Problem::Unsupported {
                what: "a compressed moov (cmov)".into(),
            }
            .into());
        }
        if CONTAINERS.iter().any(|k| child.is(k)) {
            let inner = rewrite_children(payload, child.payload_start(), wide, shift)?;
            write_box(&mut out, &child.kind, &inner);
        } else if child.is(b"stco") || child.is(b"co64") {
            write_offsets(&mut out, &child, payload, wide, shift)?;
        } else {
            out.extend_from_slice(whole);
        }
    }
    Ok(out)
}

/// A chunk offset table: version and flags (4 bytes), entry count (4), then the entries,
/// 4 bytes each in `stco`, 8 in `co64`.
fn write_offsets(
    out: &mut Vec<u8>,
    table: &BoxHeader,
    payload: &[u8],
    wide: bool,
    shift: &dyn Fn(u64) -> Result<u64, Mp4Problem>,
) -> Result<(), Refused> {
    let entry_len: usize = if table.is(b"co64") { 8 } else { 4 };
    let bad = |what: String| Mp4Problem::Corrupt {
        what,
        at: table.start,
    };
    if payload.len() < 8 {
        return Err(bad(format!(
            "'{}' is too short for its entry count",
            kind_name(&table.kind)
        ))
        .into());
    }
    let count = u32::from_be_bytes(payload[4..8].try_into().expect("4 bytes")) as usize;
    let entries = &payload[8..];
    // No allocation by the count before it is checked against the bytes there are.
    if count
        .checked_mul(entry_len)
        .is_none_or(|n| n > entries.len())
    {
        return Err(bad(format!(
            "'{}' lists {count} chunks but holds bytes for {}",
            kind_name(&table.kind),
            entries.len() / entry_len
        ))
        .into());
    }
    let wide = wide || table.is(b"co64");
    let mut new = Vec::with_capacity(8 + count * if wide { 8 } else { 4 });
    new.extend_from_slice(&payload[..8]);
    for entry in entries[..count * entry_len].chunks_exact(entry_len) {
        let offset = match entry_len {
            8 => u64::from_be_bytes(entry.try_into().expect("8 bytes")),
            _ => u64::from(u32::from_be_bytes(entry.try_into().expect("4 bytes"))),
        };
        let moved = shift(offset)?;
        if wide {
            new.extend_from_slice(&moved.to_be_bytes());
        } else {
            let narrow = u32::try_from(moved).map_err(|_| Refused::Needs64Bit)?;
            new.extend_from_slice(&narrow.to_be_bytes());
        }
    }
    write_box(out, if wide { b"co64" } else { b"stco" }, &new);
    Ok(())
}
