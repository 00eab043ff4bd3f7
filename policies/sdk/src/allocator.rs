//! The components' memory allocator: small blocks from free lists by size
//! class, the rest from the standard library's allocator (dlmalloc on
//! `wasm32-unknown-unknown`).
//!
//! An evaluation makes and drops a few dozen small values (strings of a
//! workload's fields, vectors of containers, a violation's message), and the
//! host's copy of the object in and of the violations out goes through the
//! same allocator (`cabi_realloc`). With dlmalloc, finding a fit, splitting
//! and coalescing cost about a tenth of an evaluation's instructions. Here a
//! block of up to [`MAX_CLASS`] bytes is rounded up to a power of two, and
//! taking or giving one back is a push or pop on that size's list: a few
//! instructions. Blocks are carved from 64 KiB chunks of the system
//! allocator and are never coalesced, so memory given back is only reused
//! for blocks of the same size class; a component's memory stays bounded by
//! the host's limit, which traps it past the limit either way.
//!
//! A component is single-threaded: the state sits in `UnsafeCell`s, and
//! [`SizeClasses`] is `Sync` only where it is the global allocator (wasm32,
//! which has no threads here).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest block: holds the free list's next pointer on every target.
const MIN_CLASS: usize = 16;
/// The largest block served from the free lists.
pub const MAX_CLASS: usize = 8 << 10;
const CLASSES: usize = (MAX_CLASS / MIN_CLASS).trailing_zeros() as usize + 1;
/// What one chunk taken from the system allocator holds.
const CHUNK: usize = 64 << 10;

/// Free lists by size class over chunks of the system allocator.
pub struct SizeClasses {
    /// The head of each class's list of free blocks (each block's first word
    /// is the next block), null when empty.
    free: UnsafeCell<[*mut u8; CLASSES]>,
    /// The part of the current chunk not carved yet: `[next, end)`.
    next: UnsafeCell<*mut u8>,
    end: UnsafeCell<*mut u8>,
    /// The chunks taken, newest first: each chunk's first word is the one
    /// taken before it (so an allocator that is dropped gives them back).
    chunks: UnsafeCell<*mut u8>,
}

// SAFETY: wasm32 components run on one thread; this is the only target where
// the allocator is a `static` (the global allocator).
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for SizeClasses {}

impl Default for SizeClasses {
    fn default() -> Self {
        SizeClasses::new()
    }
}

impl SizeClasses {
    pub const fn new() -> SizeClasses {
        SizeClasses {
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
            next: UnsafeCell::new(ptr::null_mut()),
            end: UnsafeCell::new(ptr::null_mut()),
            chunks: UnsafeCell::new(ptr::null_mut()),
        }
    }

    /// The class of a layout served from the lists, `None` for the system
    /// allocator's (larger than [`MAX_CLASS`], or aligned beyond [`MIN_CLASS`],
    /// which every block is).
    fn class(layout: Layout) -> Option<usize> {
        if layout.size() > MAX_CLASS || layout.align() > MIN_CLASS {
            return None;
        }
        let size = layout.size().max(MIN_CLASS).next_power_of_two();
        Some((size / MIN_CLASS).trailing_zeros() as usize)
    }

    /// A block of class `class` carved from the current chunk, after taking
    /// a new chunk if it has too little left (what was left goes to the
    /// lists of smaller classes).
    ///
    /// # Safety
    /// Single-threaded use only.
    #[cold]
    #[inline(never)]
    unsafe fn carve(&self, class: usize) -> *mut u8 {
        let size = MIN_CLASS << class;
        // SAFETY: single-threaded; no reference to the cells outlives this call.
        unsafe {
            let (next, end) = (&mut *self.next.get(), &mut *self.end.get());
            if (*end as usize) - (*next as usize) < size {
                let chunk = System.alloc(Layout::from_size_align_unchecked(CHUNK, MIN_CLASS));
                if chunk.is_null() {
                    return ptr::null_mut();
                }
                let chunks = &mut *self.chunks.get();
                chunk.cast::<*mut u8>().write(*chunks);
                *chunks = chunk;
                // The rest of the old chunk, in blocks of the largest classes that fit.
                let mut left = (*end as usize) - (*next as usize);
                while left >= MIN_CLASS {
                    let c = (usize::BITS - 1 - (left / MIN_CLASS).leading_zeros()) as usize;
                    let c = c.min(CLASSES - 1);
                    self.push(c, *next);
                    *next = next.add(MIN_CLASS << c);
                    left -= MIN_CLASS << c;
                }
                // The first block's worth holds the link to the previous chunk.
                *next = chunk.add(MIN_CLASS);
                *end = chunk.add(CHUNK);
            }
            let block = *next;
            *next = next.add(size);
            block
        }
    }

    /// # Safety
    /// Single-threaded use only; `block` is a free block of class `class`.
    unsafe fn push(&self, class: usize, block: *mut u8) {
        // SAFETY: single-threaded; a free block is at least a pointer long and aligned for one.
        unsafe {
            let free = &mut *self.free.get();
            block.cast::<*mut u8>().write(free[class]);
            free[class] = block;
        }
    }
}

impl Drop for SizeClasses {
    /// The chunks back to the system allocator (the global allocator is a
    /// `static` and never dropped; this is for the tests' own instances).
    fn drop(&mut self) {
        let mut chunk = *self.chunks.get_mut();
        while !chunk.is_null() {
            // SAFETY: each chunk was taken with this layout, and its first word links the one before.
            unsafe {
                let before = chunk.cast::<*mut u8>().read();
                System.dealloc(chunk, Layout::from_size_align_unchecked(CHUNK, MIN_CLASS));
                chunk = before;
            }
        }
    }
}

// SAFETY: every block handed out is at least `layout.size()` bytes, aligned to
// `MIN_CLASS` (carved at multiples of it from chunks aligned to it) and so to
// `layout.align()`, and is not handed out again before it is given back; the
// system allocator's blocks go back to it with their own layout.
unsafe impl GlobalAlloc for SizeClasses {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = Self::class(layout) else {
            // SAFETY: the caller's contract, passed on.
            return unsafe { system_alloc(layout) };
        };
        // SAFETY: single-threaded; the head of a list is a free block of its class.
        unsafe {
            let free = &mut *self.free.get();
            let head = free[class];
            if head.is_null() {
                return self.carve(class);
            }
            free[class] = head.cast::<*mut u8>().read();
            head
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match Self::class(layout) {
            // SAFETY: `block` came from `alloc` with this layout, so from this class.
            Some(class) => unsafe { self.push(class, block) },
            // SAFETY: the caller's contract, passed on.
            None => unsafe { system_dealloc(block, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract: `new_size` with `layout.align()` is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class(layout), Self::class(new)) {
            (Some(old), Some(class)) if old == class => block,
            // SAFETY: both are the system allocator's.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a new block, the bytes both hold copied, the old one given back.
                unsafe {
                    let moved = self.alloc(new);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

// The system allocator's calls, out of line: the free lists' paths are
// inlined where memory is allocated, these are not (a component's code would
// grow by a tenth).

/// # Safety
/// [`GlobalAlloc::alloc`]'s.
#[inline(never)]
unsafe fn system_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract, passed on.
    unsafe { System.alloc(layout) }
}

/// # Safety
/// [`GlobalAlloc::dealloc`]'s.
#[inline(never)]
unsafe fn system_dealloc(block: *mut u8, layout: Layout) {
    // SAFETY: the caller's contract, passed on.
    unsafe { System.dealloc(block, layout) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), for the stress test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn classes_round_up_to_powers_of_two() {
        let class = |size, align| SizeClasses::class(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(0, 1), Some(0));
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 1), Some(1));
        assert_eq!(class(MAX_CLASS, 16), Some(CLASSES - 1));
        assert_eq!(class(MAX_CLASS + 1, 1), None);
        assert_eq!(class(8, 32), None, "aligned beyond what every block is");
    }

    /// Blocks of every size, allocated, grown, shrunk and freed at random:
    /// each keeps its own bytes (no two live blocks overlap), and each is
    /// aligned as asked.
    #[test]
    fn live_blocks_keep_their_bytes() {
        let heap = SizeClasses::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // (block, layout, fill byte)
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let check = |&(block, layout, fill): &(*mut u8, Layout, u8)| {
            assert_eq!(block as usize % layout.align(), 0, "{layout:?}");
            let bytes = unsafe { std::slice::from_raw_parts(block, layout.size()) };
            assert!(bytes.iter().all(|&b| b == fill), "a block of {layout:?} was overwritten");
        };
        let steps = if cfg!(miri) { 400 } else { 200_000u32 };
        for step in 0..steps {
            let pick = rng.next();
            if live.is_empty() || !pick.is_multiple_of(3) {
                let size = match pick % 10 {
                    0 => (rng.next() % (3 * MAX_CLASS as u64)) as usize,
                    _ => (rng.next() % 200) as usize,
                };
                let align = [1, 2, 4, 8, 16, 32][(rng.next() % 6) as usize];
                let layout = Layout::from_size_align(size.max(1), align).unwrap();
                let block = unsafe { heap.alloc(layout) };
                assert!(!block.is_null());
                let fill = step as u8;
                unsafe { block.write_bytes(fill, layout.size()) };
                live.push((block, layout, fill));
            } else {
                let i = (rng.next() % live.len() as u64) as usize;
                check(&live[i]);
                let (block, layout, fill) = live.swap_remove(i);
                if pick.is_multiple_of(2) {
                    unsafe { heap.dealloc(block, layout) };
                } else {
                    let new_size = ((rng.next() % (2 * MAX_CLASS as u64)) as usize).max(1);
                    let moved = unsafe { heap.realloc(block, layout, new_size) };
                    assert!(!moved.is_null());
                    let new = Layout::from_size_align(new_size, layout.align()).unwrap();
                    let kept = unsafe { std::slice::from_raw_parts(moved, layout.size().min(new_size)) };
                    assert!(kept.iter().all(|&b| b == fill), "realloc lost bytes");
                    unsafe { moved.write_bytes(fill, new_size) };
                    live.push((moved, new, fill));
                }
            }
        }
        live.iter().for_each(check);
        for (block, layout, _) in live {
            unsafe { heap.dealloc(block, layout) };
        }
    }

    #[test]
    fn a_freed_block_is_reused_for_its_class() {
        let heap = SizeClasses::new();
        let layout = Layout::from_size_align(40, 8).unwrap();
        let a = unsafe { heap.alloc(layout) };
        unsafe { heap.dealloc(a, layout) };
        let b = unsafe { heap.alloc(Layout::from_size_align(64, 8).unwrap()) };
        assert_eq!(a, b, "40 and 64 bytes are one class");
        let c = unsafe { heap.alloc(layout) };
        assert_ne!(b, c, "a live block is not handed out twice");
    }
}
