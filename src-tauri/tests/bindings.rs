//! `ui/src/bindings.ts` must be what the Rust types and commands generate today: CI fails
//! here when a change to `src-tauri/src/ipc.rs`, a command or a core type it exports
//! (`ErrorCode`, `ProfileField`) was not carried to the UI.
//!
//! `./dev bindings` (which sets `REELUP_WRITE_BINDINGS=1` for this test) writes the file.

mod support;

#[test]
fn the_checked_in_bindings_are_current() {
    let root = support::manifest_dir().join("..");
    let checked_in = root.join(reelup_app::bindings::PATH);
    if std::env::var_os("REELUP_WRITE_BINDINGS").is_some() {
        reelup_app::bindings::export(&checked_in).expect("write the bindings");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = dir.path().join("bindings.ts");
    reelup_app::bindings::export(&fresh).expect("generate the bindings");
    let fresh = std::fs::read_to_string(&fresh).expect("read the generated bindings");
    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    assert!(
        current == fresh,
        "{} is stale: the IPC types or commands changed. Run `./dev bindings` and commit \
         the result.\nFirst difference at line {}.",
        checked_in.display(),
        current
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()))
            + 1
    );
}
