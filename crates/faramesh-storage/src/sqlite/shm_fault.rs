//! Surviving a write fault in SQLite's shared-memory index.
//!
//! In WAL mode SQLite maps the `-shm` file into memory and writes it directly. When the file
//! can no longer take writes (made immutable, or on a disk that fails), the kernel answers the
//! next write into a mapped page with SIGBUS, whose default action kills the process: a server
//! that dies instead of refusing writes with 503.
//!
//! The handler below recognises such a fault (the address lies in a mapping of a file whose
//! name ends in `-shm`), replaces that one page with a private copy of itself, so the write
//! that faulted goes through and every connection of this process keeps seeing the same index
//! (they share one mapping), and records the fault. The store then refuses writes and
//! readiness until a restart: the file on disk no longer follows the index. What was committed
//! stays safe: SQLite writes (and syncs) the log itself with ordinary writes before it updates
//! the index, and rebuilds the index from the log when it opens the database again.
//!
//! Any other SIGBUS goes to the handler that was installed before (Rust's own, which reports
//! stack overflows), or gets the default action.
//!
//! Everything the handler does is async-signal-safe: system calls and fixed static buffers, no
//! allocation, no locks but a spin flag between threads faulting at once.

#![allow(
    unsafe_code,
    reason = "a signal handler that remaps the faulting page must call the kernel directly; each block says why it is sound"
)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

static FAULTED: AtomicBool = AtomicBool::new(false);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// Held while a fault is handled; other faulting threads wait for it.
static BUSY: AtomicBool = AtomicBool::new(false);
/// The largest page size the copy handles (64 KiB pages exist on some 64-bit ARM systems).
const MAX_PAGE: usize = 64 * 1024;
static mut COPY: [u8; MAX_PAGE] = [0; MAX_PAGE];
/// A line of `/proc/self/maps` is at most a path (4096 bytes) and about 100 bytes before it.
const LINE: usize = 8192;
static mut MAPS: [u8; LINE] = [0; LINE];

/// Installs the handler, once per process.
pub(super) fn install() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: sysconf is always safe to call.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(page) = usize::try_from(page) {
            if page > 0 && page <= MAX_PAGE {
                PAGE_SIZE.store(page, Ordering::Relaxed);
            }
        }
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler has the
        // signature SA_SIGINFO requires.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handle as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) != 0 {
                previous.sa_sigaction = libc::SIG_DFL;
            }
            previous
        }
    });
}

/// Whether a write into a `-shm` mapping faulted since the process started.
pub(super) fn faulted() -> bool {
    FAULTED.load(Ordering::Acquire)
}

extern "C" fn handle(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    // SAFETY: called only from this handler, which holds BUSY around the static buffers.
    if unsafe { recover(address) } {
        FAULTED.store(true, Ordering::Release);
        return;
    }
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    // SAFETY: calling the handler that was installed before, as it was meant to be called; or
    // restoring the default action, so returning re-runs the access and ends the process as
    // it would have without this handler.
    unsafe {
        match previous.sa_sigaction {
            libc::SIG_DFL | libc::SIG_IGN => {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
            f if previous.sa_flags & libc::SA_SIGINFO != 0 => {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
                    std::mem::transmute(f);
                f(signal, info, context);
            }
            f => {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(f);
                f(signal);
            }
        }
    }
}

/// Replaces the page at `address` with a private copy when it belongs to a `-shm` mapping.
///
/// # Safety
/// Only from the signal handler.
unsafe fn recover(address: usize) -> bool {
    while BUSY
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    let recovered = in_shm_mapping(address) && copy_page(address);
    BUSY.store(false, Ordering::Release);
    recovered
}

/// Makes the page holding `address` private memory with the same content.
unsafe fn copy_page(address: usize) -> bool {
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    let start = address & !(page - 1);
    let copy = std::ptr::addr_of_mut!(COPY).cast::<u8>();
    // Reading the page works: only writing into the file is refused.
    std::ptr::copy_nonoverlapping(start as *const u8, copy, page);
    let mapped = libc::mmap(
        start as *mut c_void,
        page,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
        -1,
        0,
    );
    if mapped == libc::MAP_FAILED || mapped as usize != start {
        return false;
    }
    std::ptr::copy_nonoverlapping(copy, start as *mut u8, page);
    true
}

/// Whether `address` lies in a mapping of a file named `…-shm`, read from `/proc/self/maps`.
unsafe fn in_shm_mapping(address: usize) -> bool {
    let fd = libc::open(
        c"/proc/self/maps".as_ptr(),
        libc::O_RDONLY | libc::O_CLOEXEC,
    );
    if fd < 0 {
        return false;
    }
    let buffer = &mut *std::ptr::addr_of_mut!(MAPS);
    let mut filled = 0;
    let mut found = false;
    'read: loop {
        let n = libc::read(
            fd,
            buffer[filled..].as_mut_ptr().cast::<c_void>(),
            LINE - filled,
        );
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        filled += n;
        let mut consumed = 0;
        while let Some(end) = buffer[consumed..filled].iter().position(|&b| b == b'\n') {
            let line = &buffer[consumed..consumed + end];
            if let Some(is_shm) = covers(line, address) {
                found = is_shm;
                break 'read;
            }
            consumed += end + 1;
        }
        if consumed == 0 && filled == LINE {
            // A line longer than any real one: stop rather than misread.
            break;
        }
        buffer.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
    libc::close(fd);
    found
}

/// For a maps line `start-end perms offset dev inode path` covering `address`, whether the
/// path ends in `-shm`; `None` when the line does not cover it.
fn covers(line: &[u8], address: usize) -> Option<bool> {
    let dash = line.iter().position(|&b| b == b'-')?;
    let space = line.iter().position(|&b| b == b' ')?;
    let start = hex(&line[..dash])?;
    let end = hex(line.get(dash + 1..space)?)?;
    if address < start || address >= end {
        return None;
    }
    let path = line.trim_ascii_end();
    Some(path.ends_with(b"-shm"))
}

fn hex(digits: &[u8]) -> Option<usize> {
    let mut value: usize = 0;
    for &d in digits {
        let digit = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        value = value.checked_mul(16)?.checked_add(usize::from(digit))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_read_without_allocating() {
        let line = b"7f10a0000000-7f10a0008000 rw-s 00000000 fe:01 1234 /data/actions.db-shm";
        assert_eq!(covers(line, 0x7f10a0000010), Some(true));
        assert_eq!(covers(line, 0x7f10a0008000), None);
        let lib = b"7f10a0000000-7f10a0008000 r-xp 00000000 fe:01 99 /usr/lib/libc.so.6";
        assert_eq!(covers(lib, 0x7f10a0000010), Some(false));
        assert_eq!(covers(b"garbage", 1), None);
    }
}
