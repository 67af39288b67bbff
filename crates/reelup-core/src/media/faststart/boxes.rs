//! ISO-BMFF box headers: a box is `size:u32 type:[u8;4]`, with `size == 1` meaning a
//! 64-bit `largesize` follows and `size == 0` meaning "to the end of the enclosing space".
//! Every size here comes from the file, so each one is checked against the space it must
//! fit in before anything is read or allocated by it.

use super::Mp4Problem;

/// One box: where it starts, how long its header is, and its whole size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BoxHeader {
    pub kind: [u8; 4],
    pub start: u64,
    pub header_len: u64,
    pub size: u64,
}

impl BoxHeader {
    pub fn end(&self) -> u64 {
        self.start + self.size
    }

    pub fn payload_start(&self) -> u64 {
        self.start + self.header_len
    }

    pub fn is(&self, kind: &[u8; 4]) -> bool {
        &self.kind == kind
    }
}

/// A box type for messages: printable as text, else as hex.
pub(crate) fn kind_name(kind: &[u8; 4]) -> String {
    if kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(kind).into_owned()
    } else {
        format!("0x{}", hex::encode(kind))
    }
}

/// Reads one box header at `start`, in a space that ends at `end`. `head` holds the bytes
/// available at `start` (at least 8, or 16 where there is room for a largesize).
pub(crate) fn parse_header(head: &[u8], start: u64, end: u64) -> Result<BoxHeader, Mp4Problem> {
    let left = end - start;
    if left < 8 || head.len() < 8 {
        return Err(Mp4Problem::Truncated {
            what: "a box header".into(),
            at: start,
        });
    }
    let size32 = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes"));
    let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
    let (header_len, size) = match size32 {
        0 => (8, left),
        1 => {
            if left < 16 || head.len() < 16 {
                return Err(Mp4Problem::Truncated {
                    what: format!("the 64-bit size of box '{}'", kind_name(&kind)),
                    at: start,
                });
            }
            (
                16,
                u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
            )
        }
        n => (8, u64::from(n)),
    };
    if size < header_len {
        return Err(Mp4Problem::Corrupt {
            what: format!(
                "box '{}' claims {size} bytes, less than its own {header_len}-byte header",
                kind_name(&kind)
            ),
            at: start,
        });
    }
    if size > left {
        return Err(Mp4Problem::Truncated {
            what: format!(
                "box '{}' of {size} bytes runs {} bytes past the end",
                kind_name(&kind),
                size - left
            ),
            at: start,
        });
    }
    Ok(BoxHeader {
        kind,
        start,
        header_len,
        size,
    })
}

/// The boxes laid end to end in `data` (a box's payload held in memory), whose first byte
/// is at file offset `base`. Each box advances by at least 8 bytes, so this ends.
pub(crate) fn children(data: &[u8], base: u64) -> Result<Vec<BoxHeader>, Mp4Problem> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let end = base + data.len() as u64;
    while at < data.len() {
        let header = parse_header(&data[at..], base + at as u64, end)?;
        at += header.size as usize;
        out.push(header);
    }
    Ok(out)
}
