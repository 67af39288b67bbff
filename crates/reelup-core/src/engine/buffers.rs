//! Memory for the bytes a checksummed part (or a small file's POST) holds between being
//! read and being answered for.
//!
//! Each buffer is an anonymous mapping of its own, never the allocator's heap: malloc kept
//! freed part-sized blocks in its per-thread arenas, which grew the client by a part or
//! more per thread (109-141 MiB peak at 4 parts of 16 MiB in flight). A fresh mapping per
//! part costs a page fault per 4 KiB instead (0.7 s of CPU per GiB measured here), so
//! finished buffers go back to a small pool and are reused.
//!
//! What must stay true: a buffer is in the pool or owned by exactly one part's bytes,
//! never both; the pool holds at most `keep` buffers, and none once the queue is idle
//! ([`BufferPool::clear`]), so an idle app holds no part memory.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memmap2::MmapMut;

pub(crate) struct BufferPool {
    free: Mutex<Vec<MmapMut>>,
    keep: usize,
}

impl BufferPool {
    pub(crate) fn new(keep: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<MmapMut>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of at least `len` bytes: the smallest free one that fits, else a new one.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> std::io::Result<Buffer> {
        let reused = {
            let mut free = self.free();
            free.iter()
                .enumerate()
                .filter(|(_, m)| m.len() >= len)
                .min_by_key(|(_, m)| m.len())
                .map(|(i, _)| i)
                .map(|i| free.swap_remove(i))
        };
        let map = match reused {
            Some(map) => map,
            None => MmapMut::map_anon(len.max(1))?,
        };
        Ok(Buffer {
            map: Some(map),
            len,
            pool: self.clone(),
        })
    }

    /// Lets every free buffer go back to the system.
    pub(crate) fn clear(&self) {
        self.free().clear();
    }

    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.free().len()
    }
}

/// `len` bytes of a pooled mapping; back to the pool when dropped (also as [`Bytes`]).
pub(crate) struct Buffer {
    map: Option<MmapMut>,
    len: usize,
    pool: Arc<BufferPool>,
}

impl Buffer {
    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.map.as_mut().expect("present until dropped")[..len]
    }

    /// The bytes, shared without a copy; the buffer returns to the pool when the last
    /// clone of them is dropped.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.map.as_ref().expect("present until dropped")[..self.len]
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            let mut free = self.pool.free();
            if free.len() < self.pool.keep {
                free.push(map);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_up_to_the_limit_and_let_go_when_cleared() {
        let pool = BufferPool::new(2);
        let mut a = pool.take(1000).expect("a");
        a.as_mut().fill(7);
        let bytes = a.into_bytes();
        assert_eq!(bytes.len(), 1000);
        assert!(bytes.iter().all(|&b| b == 7));
        let shared = bytes.clone();
        drop(bytes);
        assert_eq!(pool.free_count(), 0, "still held by a clone");
        drop(shared);
        assert_eq!(pool.free_count(), 1, "back once the last clone is gone");
        // Reused for a smaller request; a larger one gets a new mapping.
        let b = pool.take(500).expect("b");
        assert_eq!(pool.free_count(), 0);
        let c = pool.take(5000).expect("c");
        let d = pool.take(10).expect("d");
        drop((b, c, d));
        assert_eq!(pool.free_count(), 2, "at most `keep` are kept");
        pool.clear();
        assert_eq!(pool.free_count(), 0);
    }
}
