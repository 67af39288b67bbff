use std::io::Cursor;

use proptest::prelude::*;

use super::*;

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn stco(offsets: &[u32]) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&(offsets.len() as u32).to_be_bytes());
    for o in offsets {
        p.extend_from_slice(&o.to_be_bytes());
    }
    mp4_box(b"stco", &p)
}

fn moov_with(table: &[u8]) -> Vec<u8> {
    let stbl = mp4_box(b"stbl", table);
    let minf = mp4_box(b"minf", &stbl);
    let mdia = mp4_box(
        b"mdia",
        &[mp4_box(b"mdhd", &[0; 24]), mdia_inner(&minf)].concat(),
    );
    let trak = mp4_box(b"trak", &[mp4_box(b"tkhd", &[1; 20]), mdia].concat());
    mp4_box(b"moov", &[mp4_box(b"mvhd", &[2; 100]), trak].concat())
}

fn mdia_inner(minf: &[u8]) -> Vec<u8> {
    minf.to_vec()
}

/// ftyp, mdat with three 4-byte "chunks", moov pointing at them, and a free box after it.
fn moov_last() -> (Vec<u8>, Vec<u32>) {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2");
    let mdat = mp4_box(b"mdat", b"AAAABBBBCCCC");
    let base = (ftyp.len() + 8) as u32;
    let offsets = vec![base, base + 4, base + 8];
    let moov = moov_with(&stco(&offsets));
    let file = [ftyp, mdat, moov, mp4_box(b"free", &[0; 32])].concat();
    (file, offsets)
}

fn scan_bytes(bytes: &[u8]) -> Result<Scan, Mp4Problem> {
    scan(&mut Cursor::new(bytes), bytes.len() as u64)
}

/// The chunk offsets in the first `stco`/`co64` found in `bytes`.
fn offsets_in(bytes: &[u8]) -> Vec<u64> {
    for kind in [b"stco", b"co64"] {
        if let Some(i) = bytes.windows(4).position(|w| w == kind) {
            let count = u32::from_be_bytes(bytes[i + 8..i + 12].try_into().unwrap()) as usize;
            let w = if kind == b"co64" { 8 } else { 4 };
            return (0..count)
                .map(|n| {
                    let at = i + 12 + n * w;
                    if w == 8 {
                        u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap())
                    } else {
                        u64::from(u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()))
                    }
                })
                .collect();
        }
    }
    panic!("no chunk offset table")
}

#[test]
fn a_moov_after_mdat_is_relaid_with_offsets_following_the_media() {
    let (file, old) = moov_last();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.mp4");
    std::fs::write(&path, &file).unwrap();
    let scan = scan_file(&path).unwrap();
    assert_eq!(scan.position, IndexPosition::MoovAfterMdat);
    let source = scan
        .relayout(&path, &mut std::fs::File::open(&path).unwrap())
        .unwrap()
        .expect("a layout");
    let new = source.read_all().unwrap();
    // The free box after moov is gone with it.
    assert_eq!(new.len(), file.len() - 40);
    let again = scan_bytes(&new).unwrap();
    assert_eq!(again.position, IndexPosition::MoovFirst);
    let moved = offsets_in(&new);
    for (o, n) in old.iter().zip(&moved) {
        let (o, n) = (*o as usize, *n as usize);
        assert_eq!(file[o..o + 4], new[n..n + 4]);
    }
    // ftyp, new moov, mdat: the two file ranges are not merged across the moov.
    assert_eq!(source.segments().count(), 3);
    // A moov-first file has nothing to re-lay.
    assert!(
        again
            .relayout(&path, &mut Cursor::new(&new))
            .unwrap()
            .is_none()
    );
}

#[test]
fn offsets_that_outgrow_32_bits_widen_stco_to_co64() {
    // An mdat that claims to reach just under 4 GiB (largesize), read only as headers: the
    // moov after it is moved before it, so its chunk offsets pass u32::MAX.
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
    let offsets = [u32::MAX - 10, u32::MAX - 2];
    let moov = moov_with(&stco(&offsets));
    let mdat_len = u64::from(u32::MAX) + 8 - ftyp.len() as u64;
    let mut head = ftyp.clone();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&mdat_len.to_be_bytes());
    // A sparse file: the headers are real, the media is a hole.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    let f = std::fs::File::create(&path).unwrap();
    use std::io::{Seek, Write};
    let mut f = f;
    f.write_all(&head).unwrap();
    f.seek(SeekFrom::Start(ftyp.len() as u64 + mdat_len))
        .unwrap();
    f.write_all(&moov).unwrap();
    drop(f);
    let scan = scan_file(&path).unwrap();
    assert_eq!(scan.position, IndexPosition::MoovAfterMdat);
    let source = scan
        .relayout(&path, &mut std::fs::File::open(&path).unwrap())
        .unwrap()
        .expect("a layout");
    let Some(Segment::Memory(new_moov)) = source.segments().nth(1) else {
        panic!("moov second");
    };
    assert!(new_moov.windows(4).any(|w| w == b"co64"));
    assert!(!new_moov.windows(4).any(|w| w == b"stco"));
    let shift = new_moov.len() as u64;
    assert_eq!(
        offsets_in(new_moov),
        offsets
            .iter()
            .map(|o| u64::from(*o) + shift)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        source.len(),
        std::fs::metadata(&path).unwrap().len() + shift - moov.len() as u64
    );
}

#[test]
fn box_sizes_zero_and_largesize_are_understood() {
    // A last mdat of size 0 runs to the end of the file.
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
    let moov = moov_with(&stco(&[40]));
    let mut file = [ftyp.clone(), moov.clone()].concat();
    file.extend_from_slice(&0u32.to_be_bytes());
    file.extend_from_slice(b"mdat");
    file.extend_from_slice(&[9; 100]);
    assert_eq!(
        scan_bytes(&file).unwrap().position,
        IndexPosition::MoovFirst
    );
    // A size of 1 with a 64-bit largesize.
    let mut file = ftyp.clone();
    file.extend_from_slice(&1u32.to_be_bytes());
    file.extend_from_slice(b"mdat");
    file.extend_from_slice(&(16u64 + 4).to_be_bytes());
    file.extend_from_slice(b"XXXX");
    file.extend_from_slice(&moov);
    assert_eq!(
        scan_bytes(&file).unwrap().position,
        IndexPosition::MoovAfterMdat
    );
}

#[test]
fn hostile_sizes_are_named_errors() {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
    // A box running past the end of the file: a truncated recording.
    let mut cut = [ftyp.clone(), mp4_box(b"mdat", &[0; 50])].concat();
    cut.truncate(cut.len() - 10);
    let err = scan_bytes(&cut).unwrap_err();
    assert!(matches!(err, Mp4Problem::Truncated { at: 16, .. }), "{err}");
    assert!(err.to_string().contains("'mdat'"), "{err}");
    // A size smaller than the header.
    let mut small = ftyp.clone();
    small.extend_from_slice(&4u32.to_be_bytes());
    small.extend_from_slice(b"mdat");
    assert!(matches!(
        scan_bytes(&small),
        Err(Mp4Problem::Corrupt { .. })
    ));
    // A largesize that is cut off, and one that is absurd.
    let mut large = ftyp.clone();
    large.extend_from_slice(&1u32.to_be_bytes());
    large.extend_from_slice(b"mdat\0\0");
    assert!(matches!(
        scan_bytes(&large),
        Err(Mp4Problem::Truncated { .. })
    ));
    let mut absurd = ftyp.clone();
    absurd.extend_from_slice(&1u32.to_be_bytes());
    absurd.extend_from_slice(b"mdat");
    absurd.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(matches!(
        scan_bytes(&absurd),
        Err(Mp4Problem::Truncated { .. })
    ));
    // No moov at all.
    let no_moov = [ftyp.clone(), mp4_box(b"mdat", &[0; 8])].concat();
    assert!(matches!(scan_bytes(&no_moov), Err(Mp4Problem::NoMoov)));
    // Garbage inside moov: a child running past moov's end.
    let mut bad_child = mp4_box(b"trak", &[0; 8]);
    bad_child[3] = 200;
    let bad_moov = [ftyp.clone(), mp4_box(b"moov", &bad_child)].concat();
    assert!(matches!(
        scan_bytes(&bad_moov),
        Err(Mp4Problem::Truncated { .. })
    ));
}

#[test]
fn a_chunk_table_claiming_more_entries_than_it_holds_is_refused_without_allocating() {
    let ftyp = mp4_box(b"ftyp", b"isom\0\0\x02\0");
    let mut table = stco(&[24]);
    // The entry count says a billion.
    table[12..16].copy_from_slice(&1_000_000_000u32.to_be_bytes());
    let file = [ftyp, mp4_box(b"mdat", &[0; 8]), moov_with(&table)].concat();
    let scan = scan_bytes(&file).unwrap();
    let err = scan
        .relayout(Path::new("/x"), &mut Cursor::new(&file))
        .unwrap_err();
    assert!(matches!(err, Mp4Problem::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("1000000000 chunks"), "{err}");
}

#[test]
fn other_containers_and_fragmented_files_are_told_apart() {
    // Matroska/WebM's EBML header.
    let mkv = [
        0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0, 0, 0,
    ];
    assert_eq!(scan_bytes(&mkv).unwrap().position, IndexPosition::NotMp4);
    assert_eq!(scan_bytes(&[]).unwrap().position, IndexPosition::NotMp4);
    assert_eq!(
        scan_bytes(b"RIFF\0\0\0\0AVI ").unwrap().position,
        IndexPosition::NotMp4
    );
    let ftyp = mp4_box(b"ftyp", b"iso5\0\0\x02\0");
    let moov = mp4_box(
        b"moov",
        &[mp4_box(b"mvhd", &[0; 100]), mp4_box(b"mvex", &[0; 8])].concat(),
    );
    let frag = [
        ftyp,
        moov,
        mp4_box(b"moof", &[0; 8]),
        mp4_box(b"mdat", &[0; 8]),
    ]
    .concat();
    assert_eq!(
        scan_bytes(&frag).unwrap().position,
        IndexPosition::Fragmented
    );
}

proptest! {
    /// Any bytes after a real ftyp: the walk and the re-layout end, with an answer or an
    /// error, and never panic.
    #[test]
    fn any_bytes_end_in_an_answer_or_an_error(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (file, _) = moov_last();
        for bytes in [[&file[..24], &tail].concat(), [&file[..], &tail].concat()] {
            if let Ok(scan) = scan_bytes(&bytes) {
                let _ = scan.relayout(Path::new("/x"), &mut Cursor::new(&bytes));
            }
        }
    }

    /// Flipping bytes inside a good file's moov never panics either, and whatever is
    /// re-laid is itself a file with its index first.
    #[test]
    fn damaged_moovs_never_panic(at in 0usize..300, byte in any::<u8>()) {
        let (mut file, _) = moov_last();
        let i = 36 + at % (file.len() - 36);
        file[i] = byte;
        if let Ok(scan) = scan_bytes(&file)
            && let Ok(Some(source)) = scan.relayout(Path::new("/x"), &mut Cursor::new(&file))
        {
            let laid: Vec<u8> = source
                .segments()
                .flat_map(|seg| match seg {
                    Segment::File { start, len } => {
                        file[*start as usize..(*start + *len) as usize].to_vec()
                    }
                    Segment::Memory(b) => b.to_vec(),
                })
                .collect();
            prop_assert_eq!(laid.len() as u64, source.len());
            prop_assert_eq!(scan_bytes(&laid).unwrap().position, IndexPosition::MoovFirst);
        }
    }
}
