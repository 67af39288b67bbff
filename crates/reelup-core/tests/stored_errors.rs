//! A failed item's error code is stored as its wire string and read back as an
//! `ErrorCode`; a code this version does not know (written by a newer Reelup) reads as
//! `unknown` with its message kept, and never makes the queue unreadable.

use reelup_core::ErrorCode;
use reelup_core::media::Fingerprint;
use reelup_core::queue::store::{ItemError, ItemState, QueueStore, Target};

#[test]
fn stored_codes_read_back_and_unknown_ones_are_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    std::fs::write(&video, b"not really a video").unwrap();
    let db = dir.path().join("queue.sqlite3");
    let store = QueueStore::open(&db).unwrap();
    let target = Target::new("https://up.example.com", "https://cdn.example.com");
    let fp = Fingerprint::of(&video).unwrap();
    let known = store.add(&video, &fp, &target).unwrap();
    let error = ItemError {
        code: ErrorCode::StorageError,
        message: "the storage server refused the upload".into(),
        retryable: false,
    };
    store
        .set_state(known, ItemState::Failed, Some(&error))
        .unwrap();
    assert_eq!(store.get(known).unwrap().error, Some(error));

    std::fs::write(dir.path().join("other.mp4"), b"another").unwrap();
    let other = dir.path().join("other.mp4");
    let future = store
        .add(&other, &Fingerprint::of(&other).unwrap(), &target)
        .unwrap();
    store
        .set_state(
            future,
            ItemState::Failed,
            Some(&ItemError {
                code: ErrorCode::Queue,
                message: "from a newer Reelup".into(),
                retryable: true,
            }),
        )
        .unwrap();
    drop(store);
    // What a newer version might have written.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE items SET error_code = 'quantum_flux' WHERE id = ?1",
            [future],
        )
        .unwrap();
    let store = QueueStore::open(&db).unwrap();
    let read = store.get(future).unwrap().error.unwrap();
    assert_eq!(read.code, ErrorCode::Unknown);
    assert_eq!(read.message, "from a newer Reelup");
    assert_eq!(store.list().unwrap().len(), 2);
}
