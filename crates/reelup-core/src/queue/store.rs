//! The durable queue: one SQLite database (WAL) in the data dir, shared by the app and the
//! CLI. Every finished part is committed before the next is counted, so a process killed at
//! any instant loses at most the parts it had in flight.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::engine::{FinishedPart, MultipartUpload, Verification};
use crate::media::faststart::{FaststartSetting, IndexPosition, Layout};
use crate::{Fingerprint, VideoDetails};

const SCHEMA_VERSION: i32 = 8;

pub use crate::queue::state::{ItemState, Operation};

/// Where an item uploads to, stored with each item so that a profile edited later does
/// not redirect an upload that is half done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub endpoint: String,
    pub cdn: String,
    /// The profile whose token it uses; None for `--endpoint` uploads (token from
    /// REELUP_TOKEN) and items queued before profiles existed.
    pub profile: Option<String>,
    /// The profile's faststart setting, as read from the profile now. Not stored with an
    /// item: an item stores what was decided for it (`QueueItem::layout`), so a setting
    /// changed later never re-lays an upload that is half done.
    #[serde(skip)]
    pub faststart: FaststartSetting,
}

impl Target {
    pub fn new(endpoint: &str, cdn: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            cdn: cdn.to_owned(),
            profile: None,
            faststart: FaststartSetting::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    pub code: crate::ErrorCode,
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub state: ItemState,
    pub target: Target,
    pub key: Option<String>,
    pub upload_id: Option<String>,
    pub part_size: Option<u64>,
    pub url: Option<String>,
    pub error: Option<ItemError>,
    /// Bytes of parts the store has confirmed.
    pub confirmed: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; set when done.
    pub finished_at: Option<i64>,
    /// Duration, picture size, frame rate and codecs, read from the container when the
    /// file was queued; None when it could not be read (or was queued before Reelup read
    /// them).
    pub details: Option<VideoDetails>,
    /// Where the poster frame (a JPEG beside the video, under the same prefix) streams
    /// from; `None` until one is uploaded, and for videos no poster could be made of.
    pub poster_url: Option<String>,
    /// Why the finished item has no poster, in words, when that is more than "none could be
    /// drawn yet": the file at its path is no longer the one queued, or no frame could be
    /// drawn from it. Cleared when a poster is uploaded.
    pub no_poster: Option<String>,
    /// Where the file keeps its index (`moov`), once looked at.
    pub index_position: Option<IndexPosition>,
    /// How its bytes go up: as they are, or re-laid with the index first. Chosen (by the
    /// profile's setting or the user) before the first byte is sent and kept, so a resumed
    /// upload sends the same layout.
    pub layout: Option<Layout>,
    /// Whether its multipart upload (if one is on record) has each part's CRC-64/NVME
    /// signed in and the whole object's checked at complete.
    #[serde(skip)]
    pub checksummed: bool,
    /// What was verified, once done; `None` before, and for uploads finished before
    /// Reelup recorded it.
    pub verified: Option<Verification>,
    #[serde(skip)]
    pub fingerprint: Fingerprint,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the upload queue at {} cannot be used ({source}); check the disk and its permissions", path.display())]
    Unusable {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the upload queue failed ({0}); if this repeats, check free disk space")]
    Sql(#[from] rusqlite::Error),
    #[error("no item {0} in the queue; `reelup queue` lists them")]
    NoSuchItem(i64),
}

impl QueueError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            Self::Unusable { .. } => crate::ErrorCode::QueueUnusable,
            Self::Sql(_) => crate::ErrorCode::Queue,
            Self::NoSuchItem(_) => crate::ErrorCode::NoSuchItem,
        }
    }
}

pub struct QueueStore {
    conn: Connection,
    path: PathBuf,
    /// Where a corrupt database was moved when this one was opened, for the UI to say so.
    pub moved_aside: Option<PathBuf>,
}

impl std::fmt::Debug for QueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Where Reelup keeps its data (the queue, the app's logs): the platform's data dir, or
/// `$REELUP_DATA_DIR`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("REELUP_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("dev", "reelup", "reelup")
                .map(|d| d.data_dir().to_owned())
        })
        .unwrap_or_else(|| PathBuf::from(".reelup"))
}

/// The default place: `<data dir>/queue.sqlite3`.
pub fn default_queue_path() -> PathBuf {
    default_data_dir().join("queue.sqlite3")
}

fn setup(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL with synchronous=NORMAL: a commit is one append to the WAL and no fsync (the
    // WAL is synced at checkpoints), so the per-item writes of a folder of 1,000 clips
    // (claim, start, layout, finish, release) cost microseconds each, not a disk flush.
    // What it keeps: a commit survives the process being killed at any instant (the
    // promise the queue makes: a finished part or a finished item is never lost to a quit
    // or a crash of Reelup). What it gives up: on a power cut or an OS crash the last
    // commits before the next checkpoint may roll back; the database stays consistent,
    // a part lost that way is sent again (or found by ListParts), an item done that way
    // goes up again. FULL would fsync every one of those writes for that case only.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    if schema_version(conn)? < SCHEMA_VERSION {
        // One IMMEDIATE transaction for the whole upgrade, with the version read inside
        // it: the app and the CLI opening an old (or new) queue at the same moment must
        // not both upgrade it (ALTER TABLE has no IF NOT EXISTS).
        conn.execute_batch("BEGIN IMMEDIATE")?;
        match migrate(conn) {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    let version = schema_version(conn)?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "the queue was written by a newer Reelup (schema {version}); update Reelup"
            )),
        ));
    }
    // Reading the schema proves the file is a database we understand.
    conn.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// Opens and sets up the queue. Turning on WAL or upgrading the schema while another
/// process does the same can answer "busy" at once, without the busy timeout: that is
/// retried for a while, as the other process is about to finish.
fn open_ready(path: &Path) -> rusqlite::Result<Connection> {
    let mut tries = 0;
    loop {
        match Connection::open(path).and_then(|c| setup(&c).map(|()| c)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && tries < 100 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn schema_version(conn: &Connection) -> rusqlite::Result<i32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the schema from whatever version it is at to [`SCHEMA_VERSION`]; runs inside
/// the caller's IMMEDIATE transaction.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version = schema_version(conn)?;
    if version < 1 {
        conn.execute_batch(
            "CREATE TABLE items (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL,
               size INTEGER NOT NULL,
               mtime_ns INTEGER NOT NULL,
               sample_sha256 TEXT NOT NULL,
               endpoint TEXT NOT NULL,
               cdn TEXT NOT NULL,
               state TEXT NOT NULL,
               error_code TEXT, error_message TEXT, error_retryable INTEGER,
               key TEXT, upload_id TEXT, part_size INTEGER, url TEXT,
               owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0,
               created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
             );
             CREATE TABLE parts (
               item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
               number INTEGER NOT NULL,
               etag TEXT NOT NULL,
               size INTEGER NOT NULL,
               PRIMARY KEY (item_id, number)
             );
             PRAGMA user_version = 1;",
        )?;
    }
    if version < 2 {
        // v2: profiles, history dates, and the watched-file memory that keeps a watched
        // file from going up twice (by content, so a rename does not fool it).
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN profile TEXT;
             ALTER TABLE items ADD COLUMN finished_at INTEGER;
             CREATE TABLE watched (
               size INTEGER NOT NULL,
               sample_sha256 TEXT NOT NULL,
               path TEXT NOT NULL,
               mtime_ns INTEGER NOT NULL,
               item_id INTEGER,
               seen_at INTEGER NOT NULL,
               PRIMARY KEY (size, sample_sha256)
             );
             CREATE INDEX watched_path ON watched(path);
             PRAGMA user_version = 2;",
        )?;
    }
    if version < 3 {
        // v3: where each file keeps its index, and whether it went up re-laid (faststart).
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN index_position TEXT;
             ALTER TABLE items ADD COLUMN layout TEXT;
             PRAGMA user_version = 3;",
        )?;
    }
    if version < 4 {
        // v4: the video's details (duration, size, frame rate, codecs), as JSON, so a
        // field added later needs no migration.
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN details TEXT;
             PRAGMA user_version = 4;",
        )?;
    }
    if version < 5 {
        // v5: the poster frame's streaming URL, set once its JPEG is uploaded.
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN poster_url TEXT;
             PRAGMA user_version = 5;",
        )?;
    }
    if version < 6 {
        // v6: integrity. Whether the multipart upload is checksummed (CRC-64/NVME signed
        // into each part's URL), each part's CRC (the whole object's is combined from
        // them at complete), and what was verified for a finished upload.
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN checksum TEXT;
             ALTER TABLE items ADD COLUMN verified TEXT;
             ALTER TABLE parts ADD COLUMN crc64nvme TEXT;
             ALTER TABLE parts ADD COLUMN md5_checked INTEGER NOT NULL DEFAULT 0;
             PRAGMA user_version = 6;",
        )?;
    }
    if version < 7 {
        // v7: indexes for a long history. A claim looks for items by state and an added
        // file is matched with earlier uploads of it by path; without these, each was a
        // scan of every upload ever made, so a batch grew with the size of the history.
        conn.execute_batch(
            "CREATE INDEX items_state ON items(state, id);
             CREATE INDEX items_path ON items(path);
             PRAGMA user_version = 7;",
        )?;
    }
    if version < 8 {
        // v8: why a finished item has no poster, when that is worth saying (the file was
        // swapped after it was queued; ffmpeg could not draw a frame).
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN no_poster TEXT;
             PRAGMA user_version = 8;",
        )?;
    }
    Ok(())
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    ) || matches!(e, rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table"))
}

const ITEM_COLUMNS: &str = "id, path, size, mtime_ns, sample_sha256, endpoint, cdn, state, \
     error_code, error_message, error_retryable, key, upload_id, part_size, url, \
     (SELECT coalesce(sum(size), 0) FROM parts WHERE item_id = items.id), profile, created_at, \
     finished_at, details, poster_url, index_position, layout, checksum, verified, \
     no_poster";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueueItem> {
    let code: Option<String> = r.get(8)?;
    Ok(QueueItem {
        id: r.get(0)?,
        path: PathBuf::from(r.get::<_, String>(1)?),
        size: r.get::<_, i64>(2)? as u64,
        fingerprint: Fingerprint {
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            sample_sha256: r.get(4)?,
        },
        target: Target {
            endpoint: r.get(5)?,
            cdn: r.get(6)?,
            profile: r.get(16)?,
            faststart: FaststartSetting::default(),
        },
        state: {
            let stored: String = r.get(7)?;
            ItemState::parse(&stored).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    7,
                    rusqlite::types::Type::Text,
                    format!(
                        "upload {} is in state {stored:?}, which this version of Reelup does not \
                         know (was the queue written by a newer Reelup?); update Reelup",
                        r.get::<_, i64>(0).unwrap_or_default()
                    )
                    .into(),
                )
            })?
        },
        error: match code {
            Some(code) => Some(ItemError {
                // A code this version does not know (a newer Reelup wrote it) is read as
                // `unknown`: the message, which says what happened, is kept as stored.
                code: code.parse().unwrap_or(crate::ErrorCode::Unknown),
                message: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                retryable: r.get::<_, Option<bool>>(10)?.unwrap_or(false),
            }),
            None => None,
        },
        key: r.get(11)?,
        upload_id: r.get(12)?,
        part_size: r.get::<_, Option<i64>>(13)?.map(|n| n as u64),
        url: r.get(14)?,
        confirmed: r.get::<_, i64>(15)? as u64,
        created_at: r.get(17)?,
        finished_at: r.get(18)?,
        details: r.get::<_, Option<String>>(19)?.and_then(|json| {
            match serde_json::from_str(&json) {
                Ok(details) => Some(details),
                // Details are for show: ones this version cannot read (a newer Reelup's
                // shape) are left out rather than failing the whole queue.
                Err(e) => {
                    tracing::warn!(error = %e, "stored video details not understood");
                    None
                }
            }
        }),
        poster_url: r.get(20)?,
        // A value this version does not know (a newer Reelup wrote it) reads as not yet
        // looked at: it is looked at again before the upload.
        index_position: r
            .get::<_, Option<String>>(21)?
            .and_then(|s| IndexPosition::parse(&s)),
        layout: match r.get::<_, Option<String>>(22)? {
            None => None,
            Some(stored) => Some(Layout::parse(&stored).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    22,
                    rusqlite::types::Type::Text,
                    format!(
                        "upload {} has layout {stored:?}, which this version of Reelup does not \
                         know; update Reelup",
                        r.get::<_, i64>(0).unwrap_or_default()
                    )
                    .into(),
                )
            })?),
        },
        checksummed: r.get::<_, Option<String>>(23)?.as_deref() == Some(reelup_protocol::CRC64NVME),
        // A value this version does not know (a newer Reelup's) shows as not recorded.
        verified: r
            .get::<_, Option<String>>(24)?
            .and_then(|s| Verification::parse(&s)),
        no_poster: r.get(25)?,
    })
}

/// Whether the process that holds a lease is gone, when it ran on this machine. A lease
/// of a process on another machine (a shared folder) simply runs out.
fn owner_is_gone(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else {
        return true;
    };
    if host != this_host() {
        return false;
    }
    pid.parse()
        .is_ok_and(|pid| !crate::platform::process_is_running(pid))
}

fn this_host() -> String {
    crate::platform::host_name()
}

/// This process's name in leases: `<host>:<pid>`.
pub fn this_owner() -> String {
    format!("{}:{}", this_host(), std::process::id())
}

/// A file to queue, as read before the store is locked: its fingerprint and, when they
/// could be read, its video details.
#[derive(Debug, Clone)]
pub struct NewItem<'a> {
    pub path: &'a Path,
    pub fingerprint: &'a Fingerprint,
    pub details: Option<&'a VideoDetails>,
    pub target: &'a Target,
}

/// Which items a claim may take.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim<'a> {
    /// Only these items (a CLI run's own files).
    pub only: Option<&'a [i64]>,
    /// Only items smaller than this many bytes with no multipart upload on record: those
    /// that go up by one POST (the scheduler's way to keep large files to their cap while
    /// small ones carry on).
    pub below: Option<u64>,
}

fn details_json(details: Option<&VideoDetails>) -> Option<String> {
    details.map(|d| serde_json::to_string(d).expect("details serialize"))
}

/// The queued or unfinished item of the same file (path and fingerprint), if any, which an
/// add rejoins instead of making a second.
fn rejoin_sql() -> String {
    format!(
        "SELECT id FROM items WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3 \
         AND sample_sha256 = ?4 AND state IN ({})",
        Operation::Rejoin.sql_states()
    )
}

/// The items a claim may take, oldest first: `?1` the claiming owner, `?2` a JSON array of
/// ids or NULL, `?3` a size the item must be below (and go by POST) or NULL.
fn claim_sql() -> String {
    format!(
        "SELECT id, owner, lease_until FROM items WHERE state IN ({}) \
         AND (owner IS NULL OR owner != ?1) \
         AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2))) \
         AND (?3 IS NULL OR (size < ?3 AND upload_id IS NULL)) \
         ORDER BY id",
        Operation::Claim.sql_states()
    )
}

/// The ids of items in the states of the JSON array `?1`, oldest first.
const IDS_IN_SQL: &str =
    "SELECT id FROM items WHERE state IN (SELECT value FROM json_each(?1)) ORDER BY id";

/// Inserts one item (see [`QueueStore::add`]) on `conn`, inside the caller's transaction or
/// as its own.
fn insert_item(conn: &Connection, file: &NewItem<'_>) -> Result<i64, QueueError> {
    let (path_s, fp) = (file.path.to_string_lossy(), file.fingerprint);
    let existing: Option<i64> = conn
        .prepare_cached(&rejoin_sql())?
        .query_row(
            params![path_s, fp.size as i64, fp.mtime_ns, fp.sample_sha256],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    insert_queued(conn, file, now_secs())
}

/// The `items` row of a new queued file, inside the caller's transaction; its id.
fn insert_queued(conn: &Connection, file: &NewItem<'_>, now: i64) -> Result<i64, QueueError> {
    let (fp, target) = (file.fingerprint, file.target);
    conn.prepare_cached(
        "INSERT INTO items (path, size, mtime_ns, sample_sha256, endpoint, cdn, profile, state, \
         details, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?9)",
    )?
    .execute(params![
        file.path.to_string_lossy(),
        fp.size as i64,
        fp.mtime_ns,
        fp.sample_sha256,
        target.endpoint,
        target.cdn,
        target.profile,
        details_json(file.details),
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Inserts one watched file (see [`QueueStore::add_watched`]) inside the caller's
/// transaction.
fn insert_watched(conn: &Connection, file: &NewItem<'_>) -> Result<Option<i64>, QueueError> {
    let (path_s, fp) = (file.path.to_string_lossy(), file.fingerprint);
    let now = now_secs();
    let fresh =
        conn.prepare_cached(
            "INSERT OR IGNORE INTO watched (size, sample_sha256, path, mtime_ns, seen_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            fp.size as i64,
            fp.sample_sha256,
            path_s,
            fp.mtime_ns,
            now
        ])? == 1;
    if !fresh {
        // Known content under a new name or time: remember where it is now, so the next
        // start finds it with the cheap check.
        conn.prepare_cached(
            "UPDATE watched SET path = ?3, mtime_ns = ?4 WHERE size = ?1 AND sample_sha256 = ?2",
        )?
        .execute(params![
            fp.size as i64,
            fp.sample_sha256,
            path_s,
            fp.mtime_ns
        ])?;
        return Ok(None);
    }
    let id = insert_queued(conn, file, now)?;
    conn.prepare_cached("UPDATE watched SET item_id = ?1 WHERE size = ?2 AND sample_sha256 = ?3")?
        .execute(params![id, fp.size as i64, fp.sample_sha256])?;
    Ok(Some(id))
}

impl QueueStore {
    /// Opens (or creates) the queue. A file that is not a usable queue is moved aside,
    /// never deleted, and a new queue is started; `moved_aside` says where it went.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        let unusable = |source| QueueError::Unusable {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                unusable(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                    Some(e.to_string()),
                ))
            })?;
        }
        let first = open_ready(path);
        match first {
            Ok(conn) => Ok(Self {
                conn,
                path: path.to_owned(),
                moved_aside: None,
            }),
            Err(e) if is_corruption(&e) => {
                let aside = path.with_extension(format!("sqlite3.corrupt-{}", now_secs()));
                std::fs::rename(path, &aside).map_err(|io| {
                    unusable(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                        Some(format!("it is corrupt and could not be moved aside: {io}")),
                    ))
                })?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
                }
                tracing::error!(path = %path.display(), moved_to = %aside.display(), "the upload queue was corrupt; started a new one");
                let conn = Connection::open(path).map_err(unusable)?;
                setup(&conn).map_err(unusable)?;
                Ok(Self {
                    conn,
                    path: path.to_owned(),
                    moved_aside: Some(aside),
                })
            }
            Err(e) => Err(unusable(e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counts this connection's commits from now on, for tests of what is batched.
    #[cfg(test)]
    pub(crate) fn count_commits(&self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = commits.clone();
        self.conn.commit_hook(Some(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            false
        }));
        commits
    }

    /// Queues a file, unless the same file (path and fingerprint) is already queued or
    /// uploading; returns the item's id either way.
    pub fn add(&self, path: &Path, fp: &Fingerprint, target: &Target) -> Result<i64, QueueError> {
        let file = NewItem {
            path,
            fingerprint: fp,
            details: None,
            target,
        };
        insert_item(&self.conn, &file)
    }

    /// Queues many files in one transaction: a folder of 1,000 clips is one commit, not
    /// 2,000. Each file is queued as [`QueueStore::add`] queues one (an unchanged file
    /// already waiting finds its item), with its details in the same row. The ids, in the
    /// order given.
    pub fn add_many(&mut self, files: &[NewItem<'_>]) -> Result<Vec<i64>, QueueError> {
        self.in_one_transaction(files, insert_item)
    }

    /// Queues many watched files in one transaction, each as [`QueueStore::add_watched`]
    /// does: None for content taken in from a watched folder before.
    pub fn add_watched_many(
        &mut self,
        files: &[NewItem<'_>],
    ) -> Result<Vec<Option<i64>>, QueueError> {
        self.in_one_transaction(files, insert_watched)
    }

    /// `insert` for each file, all in one IMMEDIATE transaction; the results in order.
    fn in_one_transaction<T>(
        &mut self,
        files: &[NewItem<'_>],
        insert: impl Fn(&Connection, &NewItem<'_>) -> Result<T, QueueError>,
    ) -> Result<Vec<T>, QueueError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let results = files
            .iter()
            .map(|file| insert(&tx, file))
            .collect::<Result<Vec<T>, QueueError>>()?;
        tx.commit()?;
        Ok(results)
    }

    /// Records a video's details (read when it was queued).
    pub fn set_details(&self, id: i64, details: Option<&VideoDetails>) -> Result<(), QueueError> {
        let json = details.map(|d| serde_json::to_string(d).expect("details serialize"));
        self.conn.execute(
            "UPDATE items SET details = ?1 WHERE id = ?2",
            params![json, id],
        )?;
        Ok(())
    }

    pub fn get(&self, id: i64) -> Result<QueueItem, QueueError> {
        self.conn
            .query_row(
                &format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"),
                [id],
                item_from_row,
            )
            .optional()?
            .ok_or(QueueError::NoSuchItem(id))
    }

    pub fn list(&self) -> Result<Vec<QueueItem>, QueueError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY id"))?;
        let items = stmt
            .query_map([], item_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(items)
    }

    /// Takes the oldest active item nobody else is working on, for `lease`. Atomic across
    /// processes: two processes never get the same item.
    pub fn claim_next(
        &mut self,
        owner: &str,
        lease: Duration,
        only: Option<&[i64]>,
    ) -> Result<Option<QueueItem>, QueueError> {
        self.claim(owner, lease, &Claim { only, below: None })
    }

    /// [`QueueStore::claim_next`], among the items `claim` allows. The candidates are read
    /// one row at a time and the first that may be taken ends the scan: a claim costs the
    /// same memory with 10 items queued or 100,000.
    pub fn claim(
        &mut self,
        owner: &str,
        lease: Duration,
        claim: &Claim<'_>,
    ) -> Result<Option<QueueItem>, QueueError> {
        let now = now_secs();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // `only` goes in as one JSON array (json_each), so a CLI run of 1,000 files is one
        // bound parameter, not 1,000.
        let only = claim
            .only
            .map(|ids| serde_json::to_string(ids).expect("ids serialize"));
        let below = claim.below.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let pick = {
            let mut stmt = tx.prepare_cached(&claim_sql())?;
            let mut rows = stmt.query(params![owner, only, below])?;
            let mut pick = None;
            while let Some(row) = rows.next()? {
                let (id, holder, until): (i64, Option<String>, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                let free = match holder {
                    None => true,
                    Some(h) => until < now || owner_is_gone(&h),
                };
                if free {
                    pick = Some(id);
                    break;
                }
            }
            pick
        };
        let Some(id) = pick else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE items SET owner = ?1, lease_until = ?2, updated_at = ?3 WHERE id = ?4",
            params![owner, now + lease.as_secs() as i64, now, id],
        )?;
        tx.commit()?;
        self.get(id).map(Some)
    }

    /// The ids of items in `states`, oldest first; no item's row is read.
    pub fn ids_in(&self, states: &[ItemState]) -> Result<Vec<i64>, QueueError> {
        let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let mut stmt = self.conn.prepare_cached(IDS_IN_SQL)?;
        let ids = stmt
            .query_map(
                [serde_json::to_string(&states).expect("states serialize")],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Calls `each` with every item, oldest first, one row at a time: for a listing that
    /// need not hold the whole queue in memory (`reelup queue`).
    pub fn for_each_item(&self, mut each: impl FnMut(QueueItem)) -> Result<(), QueueError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            each(item_from_row(row)?);
        }
        Ok(())
    }

    /// Extends this owner's lease and returns the item's state, so the worker learns of a
    /// pause or cancel asked for by another process.
    pub fn renew(&self, id: i64, owner: &str, lease: Duration) -> Result<ItemState, QueueError> {
        self.conn.execute(
            "UPDATE items SET lease_until = ?1 WHERE id = ?2 AND owner = ?3",
            params![now_secs() + lease.as_secs() as i64, id, owner],
        )?;
        Ok(self.get(id)?.state)
    }

    pub fn release(&self, id: i64, owner: &str) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET owner = NULL, lease_until = 0 WHERE id = ?1 AND owner = ?2",
            params![id, owner],
        )?;
        Ok(())
    }

    pub fn set_state(
        &self,
        id: i64,
        state: ItemState,
        error: Option<&ItemError>,
    ) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET state = ?1, error_code = ?2, error_message = ?3, error_retryable = ?4, updated_at = ?5 WHERE id = ?6",
            params![
                state.as_str(),
                error.map(|e| e.code.as_str()),
                error.map(|e| e.message.as_str()),
                error.map(|e| e.retryable),
                now_secs(),
                id
            ],
        )?;
        Ok(())
    }

    /// Applies `op` to an item if its state allows it (the state machine in
    /// `queue::state`); returns whether it moved.
    pub fn apply(&self, id: i64, op: Operation) -> Result<bool, QueueError> {
        let to = op
            .leads_to()
            .expect("apply is for operations that change the state");
        self.transition(id, op.starts_from(), to)
    }

    /// Moves an item to `to` only if it is in one of `from`; returns whether it moved.
    pub fn transition(
        &self,
        id: i64,
        from: &[ItemState],
        to: ItemState,
    ) -> Result<bool, QueueError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let placeholders = vec!["?"; from.len()].join(",");
        let sql = format!(
            "UPDATE items SET state = ?, error_code = NULL, error_message = NULL, error_retryable = NULL, updated_at = ? \
             WHERE id = ? AND state IN ({placeholders})"
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> =
            vec![Box::new(to.as_str()), Box::new(now_secs()), Box::new(id)];
        args.extend(
            from.into_iter()
                .map(|s| Box::new(s) as Box<dyn rusqlite::ToSql>),
        );
        let changed = self
            .conn
            .execute(&sql, rusqlite::params_from_iter(args.iter()))?;
        if changed == 0 {
            self.get(id)?;
        }
        Ok(changed > 0)
    }

    /// Records the item's multipart upload. A new upload has no parts: those of any upload
    /// it replaces (one the store lost) are forgotten in the same transaction, so a crash
    /// never leaves the new upload with the old one's parts.
    pub fn set_multipart(&self, id: i64, upload: &MultipartUpload) -> Result<(), QueueError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM parts WHERE item_id = ?1", [id])?;
        tx.execute(
            "UPDATE items SET key = ?1, upload_id = ?2, part_size = ?3, checksum = ?4, updated_at = ?5 WHERE id = ?6",
            params![
                upload.key,
                upload.upload_id,
                upload.part_size as i64,
                upload.checksummed.then_some(reelup_protocol::CRC64NVME),
                now_secs(),
                id
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets the multipart upload and its parts (after an abort, or a lost upload).
    pub fn clear_multipart(&self, id: i64) -> Result<(), QueueError> {
        self.conn
            .execute("DELETE FROM parts WHERE item_id = ?1", [id])?;
        self.conn.execute(
            "UPDATE items SET key = NULL, upload_id = NULL, part_size = NULL, checksum = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    pub fn record_part(&self, id: i64, part: &FinishedPart) -> Result<(), QueueError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO parts (item_id, number, etag, size, crc64nvme, md5_checked) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, part.number, part.etag, part.size as i64, part.crc64nvme, part.md5_checked],
        )?;
        Ok(())
    }

    pub fn remove_part(&self, id: i64, number: u32) -> Result<(), QueueError> {
        self.conn.execute(
            "DELETE FROM parts WHERE item_id = ?1 AND number = ?2",
            params![id, number],
        )?;
        Ok(())
    }

    pub fn parts(&self, id: i64) -> Result<Vec<FinishedPart>, QueueError> {
        let mut stmt = self
            .conn
            .prepare("SELECT number, etag, size, crc64nvme, md5_checked FROM parts WHERE item_id = ?1 ORDER BY number")?;
        let parts = stmt
            .query_map([id], |r| {
                Ok(FinishedPart {
                    number: r.get(0)?,
                    etag: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    crc64nvme: r.get(3)?,
                    md5_checked: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(parts)
    }

    /// Whether a watched file was already taken in at this path with this size and mtime:
    /// the cheap check that spares hashing every file of a big folder at each start.
    pub fn watched_unchanged(
        &self,
        path: &Path,
        size: u64,
        mtime_ns: i64,
    ) -> Result<bool, QueueError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM watched WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3",
                params![path.to_string_lossy(), size as i64, mtime_ns],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Queues a watched file unless the same content (size and sampled hash) was ever
    /// taken in from a watched folder, under any name. Returns the new item, or None.
    pub fn add_watched(
        &mut self,
        path: &Path,
        fp: &Fingerprint,
        target: &Target,
    ) -> Result<Option<i64>, QueueError> {
        let file = NewItem {
            path,
            fingerprint: fp,
            details: None,
            target,
        };
        Ok(self.add_watched_many(std::slice::from_ref(&file))?[0])
    }

    /// Forgets a finished, failed or canceled item (its parts go with it). An active one
    /// is never removed: pause or cancel it first.
    pub fn remove(&self, id: i64) -> Result<bool, QueueError> {
        let n = self.conn.execute(
            &format!(
                "DELETE FROM items WHERE id = ?1 AND state IN ({})",
                Operation::Remove.sql_states()
            ),
            [id],
        )?;
        Ok(n == 1)
    }

    /// Points an item at another endpoint and CDN (its profile's, after the profile moved).
    pub fn set_target(&self, id: i64, target: &Target) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET endpoint = ?1, cdn = ?2, updated_at = ?3 WHERE id = ?4",
            params![target.endpoint, target.cdn, now_secs(), id],
        )?;
        Ok(())
    }

    /// Points a moved file's item at its new place (the after-upload move).
    pub fn set_path(&self, id: i64, path: &Path) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET path = ?1 WHERE id = ?2",
            params![path.to_string_lossy(), id],
        )?;
        self.conn.execute(
            "UPDATE watched SET path = ?1 WHERE item_id = ?2",
            params![path.to_string_lossy(), id],
        )?;
        Ok(())
    }

    /// Records the poster frame's streaming URL; false when the item is gone (removed while
    /// its poster was on the way).
    pub fn set_poster_url(&self, id: i64, url: &str) -> Result<bool, QueueError> {
        let n = self.conn.execute(
            "UPDATE items SET poster_url = ?1, no_poster = NULL WHERE id = ?2",
            params![url, id],
        )?;
        Ok(n == 1)
    }

    /// Records why the item has no poster (see [`QueueItem::no_poster`]); false when the
    /// item is gone or already has a poster, which a late reason must not contradict.
    pub fn set_no_poster(&self, id: i64, why: &str) -> Result<bool, QueueError> {
        let n = self.conn.execute(
            "UPDATE items SET no_poster = ?1 WHERE id = ?2 AND poster_url IS NULL",
            params![why, id],
        )?;
        Ok(n == 1)
    }

    /// Records where the file keeps its index, and how it goes up (None: not decided yet).
    pub fn set_media(
        &self,
        id: i64,
        position: Option<IndexPosition>,
        layout: Option<Layout>,
    ) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET index_position = ?1, layout = ?2, updated_at = ?3 WHERE id = ?4",
            params![
                position.map(IndexPosition::as_str),
                layout.map(Layout::as_str),
                now_secs(),
                id
            ],
        )?;
        Ok(())
    }

    pub fn finish(
        &self,
        id: i64,
        key: &str,
        url: &str,
        verified: Verification,
    ) -> Result<(), QueueError> {
        self.conn.execute(
            "UPDATE items SET state = 'done', key = ?1, url = ?2, owner = NULL, lease_until = 0, \
             error_code = NULL, error_message = NULL, error_retryable = NULL, updated_at = ?3, \
             finished_at = ?3, verified = ?5 WHERE id = ?4",
            params![key, url, now_secs(), id, verified.as_str()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u64) -> Fingerprint {
        Fingerprint {
            size: n,
            mtime_ns: 1,
            sample_sha256: format!("{n:064}"),
        }
    }

    fn target() -> Target {
        Target::new("http://e", "http://c")
    }

    #[test]
    fn items_and_parts_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("q/queue.sqlite3");
        let id = {
            let store = QueueStore::open(&path).expect("open");
            let id = store
                .add(Path::new("/v/a.mp4"), &fp(100), &target())
                .expect("add");
            assert_eq!(
                store
                    .add(Path::new("/v/a.mp4"), &fp(100), &target())
                    .expect("again"),
                id,
                "no duplicates"
            );
            store
                .set_multipart(
                    id,
                    &MultipartUpload {
                        key: "dev/k.mp4".into(),
                        upload_id: "up-1".into(),
                        part_size: 50,
                        checksummed: true,
                    },
                )
                .expect("mp");
            store
                .record_part(
                    id,
                    &FinishedPart {
                        number: 2,
                        etag: "\"b\"".into(),
                        size: 50,
                        crc64nvme: Some("AAAAAAAAAAE=".into()),
                        md5_checked: false,
                    },
                )
                .expect("part");
            id
        };
        let store = QueueStore::open(&path).expect("reopen");
        let item = store.get(id).expect("get");
        assert_eq!(item.upload_id.as_deref(), Some("up-1"));
        assert!(
            item.checksummed,
            "a checksummed upload stays one across a restart"
        );
        assert_eq!(item.confirmed, 50);
        let parts = store.parts(id).expect("parts");
        assert_eq!(parts[0].number, 2);
        assert_eq!(parts[0].crc64nvme.as_deref(), Some("AAAAAAAAAAE="));
    }

    #[test]
    fn an_unknown_state_is_an_error_not_queued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let store = QueueStore::open(&path).expect("open");
        let id = store
            .add(Path::new("/v/a.mp4"), &fp(1), &target())
            .expect("add");
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(state));
        }
        // What a newer Reelup might write.
        rusqlite::Connection::open(&path)
            .expect("sqlite")
            .execute("UPDATE items SET state = 'verifying' WHERE id = ?1", [id])
            .expect("update");
        let err = store
            .get(id)
            .expect_err("an unknown state is not read as queued");
        let text = err.to_string();
        assert!(
            text.contains("\"verifying\"") && text.contains("update Reelup"),
            "{text}"
        );
        assert!(store.list().is_err());
        assert!(
            QueueStore::open(&path)
                .expect("open")
                .claim_next("elsewhere:1", Duration::from_secs(60), None)
                .map_or(true, |got| got.is_none()),
            "an item in an unknown state is never claimed for upload"
        );
    }

    /// The SQL that picks items by state (rejoin on add, claim, remove) and `apply` follow
    /// `Operation`'s table for every state.
    #[test]
    fn the_sql_follows_the_state_machine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let mut store = QueueStore::open(&path).expect("open");
        let sql = rusqlite::Connection::open(&path).expect("sqlite");
        let mut files = 0u64;
        // A new item (its own file) put in `state`.
        let mut item_in = |store: &QueueStore, state: ItemState| {
            files += 1;
            let file = PathBuf::from(format!("/v/{files}.mp4"));
            let id = store.add(&file, &fp(files), &target()).expect("add");
            sql.execute(
                "UPDATE items SET state = ?1 WHERE id = ?2",
                rusqlite::params![state.as_str(), id],
            )
            .expect("set");
            (id, file, fp(files))
        };
        for state in ItemState::ALL {
            let (id, file, print) = item_in(&store, state);
            let again = store.add(&file, &print, &target()).expect("add");
            assert_eq!(
                again == id,
                Operation::Rejoin.allows(state),
                "rejoin from {state:?}"
            );
            let claimed = store
                .claim_next("elsewhere:1", Duration::from_secs(60), Some(&[id]))
                .expect("claim")
                .is_some();
            assert_eq!(
                claimed,
                Operation::Claim.allows(state),
                "claim from {state:?}"
            );
            for op in [
                Operation::Pause,
                Operation::Resume,
                Operation::Cancel,
                Operation::Start,
            ] {
                let (id, _, _) = item_in(&store, state);
                let moved = store.apply(id, op).expect("apply");
                assert_eq!(moved, op.allows(state), "{op:?} from {state:?}");
                let now = store.get(id).expect("get").state;
                let expected = if moved {
                    op.leads_to().expect("a new state")
                } else {
                    state
                };
                assert_eq!(now, expected, "{op:?} from {state:?}");
            }
            let (id, _, _) = item_in(&store, state);
            assert_eq!(
                store.remove(id).expect("remove"),
                Operation::Remove.allows(state),
                "remove from {state:?}"
            );
        }
    }

    #[test]
    fn two_owners_never_claim_the_same_item() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let mut a = QueueStore::open(&path).expect("a");
        let mut b = QueueStore::open(&path).expect("b");
        let one = a.add(Path::new("/1.mp4"), &fp(1), &target()).expect("add");
        let two = a.add(Path::new("/2.mp4"), &fp(2), &target()).expect("add");
        // Owners on another host, so only their leases count.
        let lease = Duration::from_secs(60);
        let got_a = a
            .claim_next("elsewhere:1", lease, None)
            .expect("claim")
            .expect("item");
        let got_b = b
            .claim_next("elsewhere:2", lease, None)
            .expect("claim")
            .expect("item");
        assert_eq!((got_a.id, got_b.id), (one, two));
        assert!(
            b.claim_next("elsewhere:3", lease, None)
                .expect("claim")
                .is_none()
        );
        // A lease that ran out is up for grabs.
        a.conn
            .execute("UPDATE items SET lease_until = 0 WHERE id = ?1", [one])
            .expect("expire");
        assert_eq!(
            b.claim_next("elsewhere:3", lease, None)
                .expect("claim")
                .map(|i| i.id),
            Some(one)
        );
    }

    /// A claim (once per file uploaded) and an add (once per file added) find their rows
    /// by index, so neither reads every upload in a long history.
    #[test]
    fn claims_and_adds_look_rows_up_by_index_not_by_scanning_the_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("open");
        let plan = |sql: &str| -> String {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain");
            let params = (0..stmt.parameter_count()).map(|_| rusqlite::types::Null);
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .expect("plan");
            rows.collect::<Result<Vec<_>, _>>()
                .expect("rows")
                .join("; ")
        };
        let items_scanned =
            |plan: &str| plan.split("; ").any(|step| step.starts_with("SCAN items"));
        for (what, sql) in [
            ("a claim", claim_sql()),
            ("an add", rejoin_sql()),
            ("ids in states", IDS_IN_SQL.to_owned()),
        ] {
            let plan = plan(&sql);
            assert!(!items_scanned(&plan), "{what} scans every item: {plan}");
        }
    }

    /// The scheduler's claim for small files only: a large file, or one with a multipart
    /// upload on record, waits for a place among the files at once; `only` still holds.
    #[test]
    fn a_claim_below_a_size_takes_only_files_that_go_by_post() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("open");
        let large = store
            .add(Path::new("/l.mp4"), &fp(100), &target())
            .expect("add");
        let begun = store
            .add(Path::new("/b.mp4"), &fp(5), &target())
            .expect("add");
        store
            .set_multipart(
                begun,
                &MultipartUpload {
                    key: "k".into(),
                    upload_id: "up".into(),
                    part_size: 5,
                    checksummed: false,
                },
            )
            .expect("multipart");
        let small = store
            .add(Path::new("/s.mp4"), &fp(6), &target())
            .expect("add");
        let other = store
            .add(Path::new("/o.mp4"), &fp(7), &target())
            .expect("add");
        let lease = Duration::from_secs(60);
        let only = [large, begun, small];
        let small_only = Claim {
            only: Some(&only),
            below: Some(50),
        };
        let claimed = |store: &mut QueueStore, claim: &Claim<'_>| {
            store
                .claim("elsewhere:1", lease, claim)
                .expect("claim")
                .map(|i| i.id)
        };
        assert_eq!(claimed(&mut store, &small_only), Some(small));
        assert_eq!(
            claimed(&mut store, &small_only),
            None,
            "{other} is not ours"
        );
        let any = Claim {
            only: Some(&only),
            below: None,
        };
        assert_eq!(claimed(&mut store, &any), Some(large));
        assert_eq!(claimed(&mut store, &any), Some(begun));
        assert_eq!(claimed(&mut store, &any), None);
    }

    #[test]
    fn a_dead_local_owner_releases_its_items_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("open");
        let id = store
            .add(Path::new("/1.mp4"), &fp(1), &target())
            .expect("add");
        let dead = format!("{}:{}", this_host(), u32::MAX - 7);
        store
            .claim_next(&dead, Duration::from_secs(3600), None)
            .expect("claim")
            .expect("item");
        let me = this_owner();
        assert_eq!(
            store
                .claim_next(&me, Duration::from_secs(60), None)
                .expect("claim")
                .map(|i| i.id),
            Some(id)
        );
    }

    #[test]
    fn a_corrupt_queue_is_moved_aside_not_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        std::fs::write(
            &path,
            b"this is not a database, it is a text file of some length....",
        )
        .expect("write");
        let store = QueueStore::open(&path).expect("recovers");
        let aside = store.moved_aside.clone().expect("moved aside");
        assert!(
            std::fs::read(&aside)
                .expect("kept")
                .starts_with(b"this is not a database")
        );
        assert!(store.list().expect("list").is_empty());
    }

    #[test]
    fn transitions_only_from_the_given_states() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = QueueStore::open(&dir.path().join("queue.sqlite3")).expect("open");
        let id = store
            .add(Path::new("/1.mp4"), &fp(1), &target())
            .expect("add");
        assert!(
            store
                .transition(
                    id,
                    &[ItemState::Queued, ItemState::Uploading],
                    ItemState::Paused
                )
                .expect("pause")
        );
        assert!(
            !store
                .transition(id, &[ItemState::Queued], ItemState::Paused)
                .expect("no-op")
        );
        assert!(matches!(
            store.transition(999, &[ItemState::Queued], ItemState::Paused),
            Err(QueueError::NoSuchItem(999))
        ));
    }

    #[test]
    fn a_watched_file_is_taken_in_once_under_any_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let mut store = QueueStore::open(&path).expect("open");
        let first = store
            .add_watched(Path::new("/w/a.mp4"), &fp(7), &target())
            .expect("add");
        assert!(first.is_some());
        // Renamed (same content, same mtime): known.
        assert_eq!(
            store
                .add_watched(Path::new("/w/b.mp4"), &fp(7), &target())
                .expect("again"),
            None
        );
        assert!(
            store
                .watched_unchanged(Path::new("/w/b.mp4"), 7, 1)
                .expect("cheap check")
        );
        drop(store);
        // Across a restart too.
        let mut store = QueueStore::open(&path).expect("reopen");
        assert_eq!(
            store
                .add_watched(Path::new("/w/c.mp4"), &fp(7), &target())
                .expect("again"),
            None
        );
        assert!(
            store
                .add_watched(Path::new("/w/c.mp4"), &fp(8), &target())
                .expect("new")
                .is_some()
        );
        // Only finished items can be removed.
        let id = first.expect("id");
        assert!(!store.remove(id).expect("remove queued"));
        store
            .finish(id, "k", "http://c/k", Verification::PartsMd5)
            .expect("finish");
        let done = store.get(id).expect("get");
        assert!(done.finished_at.is_some());
        assert_eq!(done.verified, Some(Verification::PartsMd5));
        assert!(store.remove(id).expect("remove done"));
        assert!(store.get(id).is_err());
    }

    #[test]
    fn processes_opening_a_new_queue_at_once_all_get_it() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("queue.sqlite3");
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let openers: Vec<_> = (0..6)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        QueueStore::open(&path).map(|s| s.moved_aside.is_none())
                    })
                })
                .collect();
            for opener in openers {
                assert!(
                    opener.join().expect("thread").expect("open"),
                    "nothing moved aside"
                );
            }
        }
    }

    #[test]
    fn a_version_one_queue_is_migrated_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL,
                   mtime_ns INTEGER NOT NULL, sample_sha256 TEXT NOT NULL, endpoint TEXT NOT NULL,
                   cdn TEXT NOT NULL, state TEXT NOT NULL, error_code TEXT, error_message TEXT,
                   error_retryable INTEGER, key TEXT, upload_id TEXT, part_size INTEGER, url TEXT,
                   owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
                   updated_at INTEGER NOT NULL);
                 CREATE TABLE parts (item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
                   number INTEGER NOT NULL, etag TEXT NOT NULL, size INTEGER NOT NULL,
                   PRIMARY KEY (item_id, number));
                 INSERT INTO items (path, size, mtime_ns, sample_sha256, endpoint, cdn, state, url, created_at, updated_at)
                   VALUES ('/v/old.mp4', 5, 1, 'x', 'http://e', 'http://c', 'done', 'http://c/old.mp4', 10, 10);
                 PRAGMA user_version = 1;",
            )
            .expect("v1 schema");
        }
        let store = QueueStore::open(&path).expect("migrate");
        assert!(store.moved_aside.is_none(), "migrated, not moved aside");
        let items = store.list().expect("list");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].url.as_deref(), Some("http://c/old.mp4"));
        assert_eq!(items[0].target.profile, None);
        assert_eq!(items[0].created_at, 10);
        // Through every step to the newest: the old item has no details, and gets some.
        assert_eq!(items[0].poster_url, None);
        assert_eq!(
            schema_version(&store.conn).expect("version"),
            SCHEMA_VERSION
        );
        // The new columns are there and kept: a reason for no poster, until a poster
        // comes, after which no late reason contradicts it.
        assert!(
            store
                .set_no_poster(items[0].id, "the file changed")
                .expect("set")
        );
        assert_eq!(
            store.get(items[0].id).expect("get").no_poster.as_deref(),
            Some("the file changed")
        );
        assert!(
            store
                .set_poster_url(items[0].id, "http://c/old.poster.jpg")
                .expect("set")
        );
        assert_eq!(store.get(items[0].id).expect("get").no_poster, None);
        assert!(
            !store.set_no_poster(items[0].id, "late").expect("set"),
            "a reason does not stand beside a poster"
        );
        drop(store);
        let store = QueueStore::open(&path).expect("reopen");
        assert_eq!(
            store.get(items[0].id).expect("get").poster_url.as_deref(),
            Some("http://c/old.poster.jpg")
        );
        assert!(
            !store
                .set_poster_url(999, "http://c/x.jpg")
                .expect("no such item")
        );
        assert_eq!(items[0].details, None);
        store
            .set_details(items[0].id, Some(&details()))
            .expect("details");
        assert_eq!(
            store.get(items[0].id).expect("get").details,
            Some(details())
        );
        // v3: nothing looked at yet, and the columns take what is found.
        assert_eq!((items[0].index_position, items[0].layout), (None, None));
        store
            .set_media(
                items[0].id,
                Some(IndexPosition::MoovAfterMdat),
                Some(Layout::Faststart),
            )
            .expect("set");
        let item = store.get(items[0].id).expect("get");
        assert_eq!(
            (item.index_position, item.layout),
            (Some(IndexPosition::MoovAfterMdat), Some(Layout::Faststart))
        );
        let json = serde_json::to_value(&item).expect("json");
        assert_eq!(json["index_position"], "moov_after_mdat");
        assert_eq!(json["layout"], "faststart");
    }

    fn details() -> VideoDetails {
        VideoDetails {
            duration_ms: Some(2_002),
            width: 640,
            height: 360,
            frame_rate: Some(29.97),
            video_codec: "HEVC".into(),
            audio_codec: None,
        }
    }

    #[test]
    fn details_survive_reopening_and_unreadable_ones_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let (with, without) = {
            let store = QueueStore::open(&path).expect("open");
            let with = store
                .add(Path::new("/v/a.mp4"), &fp(1), &target())
                .expect("add");
            let without = store
                .add(Path::new("/v/b.avi"), &fp(2), &target())
                .expect("add");
            store.set_details(with, Some(&details())).expect("set");
            store.set_details(without, None).expect("set");
            (with, without)
        };
        let store = QueueStore::open(&path).expect("reopen");
        assert_eq!(store.get(with).expect("get").details, Some(details()));
        assert_eq!(store.get(without).expect("get").details, None);
        // What a newer Reelup might store: the item still lists, without details.
        store
            .conn
            .execute(
                "UPDATE items SET details = '{\"durationMicros\": 1}' WHERE id = ?1",
                [with],
            )
            .expect("update");
        let items = store.list().expect("the queue still lists");
        assert_eq!(items[0].details, None);
    }

    #[test]
    fn a_layout_this_version_does_not_know_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.sqlite3");
        let store = QueueStore::open(&path).expect("open");
        let id = store
            .add(Path::new("/v/a.mp4"), &fp(1), &target())
            .expect("add");
        // What a newer Reelup might write: sending the original bytes instead would mix
        // two layouts in one multipart upload.
        rusqlite::Connection::open(&path)
            .expect("sqlite")
            .execute(
                "UPDATE items SET layout = 'hls', index_position = 'somewhere' WHERE id = ?1",
                [id],
            )
            .expect("update");
        let text = store.get(id).expect_err("refused").to_string();
        assert!(
            text.contains("\"hls\"") && text.contains("update Reelup"),
            "{text}"
        );
    }
}
