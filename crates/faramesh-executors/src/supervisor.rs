//! The process that stands between the executor and `sh`, so that a shell command's whole
//! process tree ends with it.
//!
//! Killing `sh`'s process group is not enough: a command can leave it (`setsid`, a double
//! fork) and keep running after its outcome is recorded. Instead, the process the executor
//! spawns becomes a supervisor: it marks itself a child subreaper, so every process below it
//! that loses its parent is reparented to it rather than to init, and forks the process that
//! goes on to exec `sh -c cmd`. Whatever the command starts therefore stays a descendant of
//! the supervisor, and when the command is over (`sh` exited, the executor gave up on it, or
//! the server is gone) the supervisor SIGKILLs its children over and over, reaping each,
//! until it has none left. Only then does it exit, with `sh`'s own status.
//!
//! The supervisor is a fork of the server that never execs: a copy of a multithreaded
//! process in which any lock may be held by a thread that no longer exists. So everything
//! here after the fork is raw system calls on stack memory: no allocation, no locks, no
//! std I/O, and no panics (no indexing that could fail, no unwrap).
//!
//! Linux only: it relies on `PR_SET_CHILD_SUBREAPER` and `/proc`.

#![allow(
    unsafe_code,
    reason = "the supervisor runs between fork and exec and talks to the kernel directly; each block says why it is sound"
)]

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use libc::c_int;

/// Where the supervisor keeps the lifeline and its signalfd once it has closed everything
/// else (see [`hold_only`]).
const LIFELINE_FD: c_int = 0;
const SIGNAL_FD: c_int = 1;

/// How long the clean-up waits for a killed child to end before it lists its children again
/// (so one that a listing missed is found on the next round).
const CLEANUP_POLL_NS: libc::c_long = 50_000_000;

/// The server's end of the pipe whose other end the supervisor watches. When the write end
/// is closed (the executor gave up on the command, dropped it, or the server died in any way,
/// since the kernel closes a dead process's descriptors), the supervisor ends the tree.
pub(crate) struct Lifeline {
    /// Passed to the supervisor; the server closes its copy once the supervisor is started.
    pub(crate) read: OwnedFd,
    /// Kept by the server for as long as the command may run.
    pub(crate) write: OwnedFd,
}

impl Lifeline {
    pub(crate) fn new() -> io::Result<Lifeline> {
        let mut fds: [c_int; 2] = [-1, -1];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let [read, write] = fds;
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        // Close-on-exec keeps them out of every program the server starts (including `sh`):
        // only the supervisor, which never execs, holds the read end.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) };
        // std's child setup dup2()s the stdio pipes onto 0-2 before the supervisor starts; a
        // read end there (a server started with a closed stdin) would be overwritten.
        // try_clone duplicates to the lowest free descriptor >= 3, still close-on-exec.
        let read = if read.as_raw_fd() < 3 {
            read.try_clone()?
        } else {
            read
        };
        Ok(Lifeline { read, write })
    }
}

/// Runs in the spawned child, from `pre_exec` (after std has put the stdio pipes on 0-2,
/// changed into the working directory, joined the process group and cleared the signal mask).
///
/// The child becomes the supervisor and never returns from here; its fork returns `Ok(())`
/// and std goes on to set the environment and exec `sh` in it, reporting an exec failure
/// through its usual pipe, exactly as without a supervisor. An `Err` here makes the spawn fail
/// with that error.
///
/// # Safety
///
/// Only to be called in a freshly forked child, before exec, with `lifeline` the read end of a
/// [`Lifeline`].
pub(crate) unsafe fn become_supervisor(lifeline: RawFd) -> io::Result<()> {
    // SAFETY: only async-signal-safe system calls on stack memory, as required between fork
    // and exec; every pointer passed points at a live local.
    unsafe {
        // Every process below us that loses its parent (a double fork, the children of a
        // killed process) is reparented to us instead of init, so none can slip away.
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        // An ignored SIGCHLD would make the kernel reap children by itself: their statuses,
        // `sh`'s among them, would be lost.
        let mut default: libc::sigaction = MaybeUninit::zeroed().assume_init();
        default.sa_sigaction = libc::SIG_DFL;
        if libc::sigaction(libc::SIGCHLD, &default, ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        // All signals are blocked and read from a signalfd instead: no handler inherited from
        // the server ever runs here, SIGCHLD is never lost, and a signal that would kill us
        // (SIGTERM, SIGHUP, ...) ends the tree first. Blocked before the fork, so that nothing
        // arriving in between takes effect. `previous` (empty, as std left it) goes to `sh`.
        let mut all = empty_set();
        libc::sigfillset(&mut all);
        let mut previous = empty_set();
        let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let signals = libc::signalfd(-1, &all, libc::SFD_CLOEXEC);
        if signals < 0 {
            return Err(io::Error::last_os_error());
        }

        // We are single-threaded now, and std forked us with libc's fork, which leaves libc's
        // own locks usable in the child; forking again is safe.
        let sh = libc::fork();
        if sh < 0 {
            return Err(io::Error::last_os_error());
        }
        if sh == 0 {
            // The future `sh`: signal mask as std set it up, and a process group of its own,
            // which the supervisor can kill in one call and which keeps the supervisor out of
            // reach of the command's `kill 0`.
            let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &previous, ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(());
        }
        // Also set from this side, so the group exists whichever process runs first.
        libc::setpgid(sh, sh);
        supervise(sh, lifeline, signals)
    }
}

/// The supervisor's whole life after the fork.
fn supervise(sh: libc::pid_t, lifeline: c_int, signals: c_int) -> ! {
    hold_only(lifeline, signals);
    // SAFETY: prctl with integer arguments. This process is a copy of the server's memory
    // that lives as long as the command; non-dumpable keeps it from being read through
    // /proc or ptrace by the (same-user) command, and from ever writing a core file.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    while !sh_has_ended(sh) && !stop_requested() {}

    let status = end_tree(sh);
    exit_like(status)
}

/// Keeps only the lifeline and the signalfd, at [`LIFELINE_FD`] and [`SIGNAL_FD`], and
/// closes every other descriptor, stdio included.
///
/// Needed because the supervisor never execs, so close-on-exec never applies to it: std's
/// spawn waits until its error-report pipe is closed in the child (it would otherwise wait
/// for the whole command); the stdio pipes must reach end-of-file when the command's
/// processes are gone, not when the supervisor is; and the server's sockets, files and other
/// commands' lifelines must not stay open in a process that outlives their owner.
fn hold_only(lifeline: c_int, signals: c_int) {
    // SAFETY: plain descriptor system calls. Both sources are >= 3 (stdio occupied 0-2 when
    // they were created), so neither dup2 overwrites the other.
    unsafe {
        libc::dup2(lifeline, LIFELINE_FD);
        libc::dup2(signals, SIGNAL_FD);
        let first = libc::c_uint::try_from(SIGNAL_FD + 1).unwrap_or(2);
        if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) == 0 {
            return;
        }
        // close_range is Linux 5.9+; before that, every possible descriptor in turn.
        let mut limit: libc::rlimit = MaybeUninit::zeroed().assume_init();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20)
        } else {
            1 << 20
        };
        let max = c_int::try_from(max).unwrap_or(1 << 20);
        for fd in SIGNAL_FD + 1..max {
            libc::close(fd);
        }
    }
}

/// Reaps the orphans that have ended and tells whether `sh` has. `sh` itself is left
/// unreaped: while it is a zombie its pid still names its process group, which
/// [`end_tree`] kills.
fn sh_has_ended(sh: libc::pid_t) -> bool {
    loop {
        // SAFETY: waitid fills `info`, a live local; WNOWAIT only looks.
        let ended = unsafe {
            let mut info: libc::siginfo_t = MaybeUninit::zeroed().assume_init();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_ALL, 0, &mut info, flags) != 0 {
                // Cannot happen while `sh` is our child; if it does, end the tree rather
                // than run unsupervised.
                return true;
            }
            info.si_pid()
        };
        if ended == 0 {
            return false;
        }
        if ended == sh {
            return true;
        }
        // SAFETY: reaps a child that has already ended; no pointer passed.
        unsafe { libc::waitpid(ended, ptr::null_mut(), libc::WNOHANG) };
    }
}

/// Waits for something to happen and tells whether it asks the supervisor to end the
/// command: the lifeline closed (or anything else on it), or a signal whose default action
/// would have ended the supervisor.
fn stop_requested() -> bool {
    let mut fds = [
        libc::pollfd {
            fd: LIFELINE_FD,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: SIGNAL_FD,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `fds` is a live array of two pollfd.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    if ready < 0 {
        // Unable to wait: ending the tree is the safe side.
        return !interrupted();
    }
    let [lifeline, signals] = fds;
    if lifeline.revents != 0 {
        return true;
    }
    if signals.revents == 0 {
        return false;
    }
    // SAFETY: signalfd_siginfo is plain integers, for which all zeroes is a valid value.
    let mut infos: [libc::signalfd_siginfo; 8] = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: read writes at most the size of `infos` into it; the signalfd hands out whole
    // records only.
    let read = unsafe {
        libc::read(
            SIGNAL_FD,
            infos.as_mut_ptr().cast(),
            std::mem::size_of_val(&infos),
        )
    };
    let Ok(read) = usize::try_from(read) else {
        return !interrupted();
    };
    let count = read / std::mem::size_of::<libc::signalfd_siginfo>();
    infos
        .iter()
        .take(count)
        .any(|info| ends_supervisor(info.ssi_signo))
}

/// Signals whose default action ignores, stops or continues a process are just noted
/// (SIGCHLD is handled by reaping); every other one would have ended the supervisor, so it
/// ends the command's tree instead.
fn ends_supervisor(signo: u32) -> bool {
    let Ok(signo) = c_int::try_from(signo) else {
        return true;
    };
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGCONT
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// SIGKILLs everything below the supervisor and reaps it all; returns `sh`'s wait status.
fn end_tree(sh: libc::pid_t) -> Option<c_int> {
    // SAFETY: kill takes no pointer. `sh` is not reaped yet, so its pid still names its
    // process group: one call ends the shell and every job in that group at once.
    unsafe { libc::kill(-sh, libc::SIGKILL) };
    let mut sh_status = None;
    loop {
        // A killed process's children are reparented to us before it can be reaped, so
        // each round reaches one level further down, until no child is left.
        kill_children();
        loop {
            let mut status: c_int = 0;
            // SAFETY: `status` is a live local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                if pid == sh {
                    sh_status = Some(status);
                }
                continue;
            }
            if pid == 0 {
                // Children left that have not ended yet.
                break;
            }
            if interrupted() {
                continue;
            }
            // ECHILD: nothing the command started is left.
            return sh_status;
        }
        wait_for_sigchld();
    }
}

/// Waits (briefly) for a child to end.
fn wait_for_sigchld() {
    // SAFETY: sigset and timespec are live locals.
    unsafe {
        let mut chld = empty_set();
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        let wait = libc::timespec {
            tv_sec: 0,
            tv_nsec: CLEANUP_POLL_NS,
        };
        libc::sigtimedwait(&chld, ptr::null_mut(), &wait);
    }
}

/// SIGKILLs every current child, listed from /proc.
fn kill_children() {
    // SAFETY: getpid takes nothing.
    let me = unsafe { libc::getpid() };
    // Single-threaded, so the main thread's children are all of the process's children.
    for_each_child(me, me, &mut kill_pid);
}

/// Calls `found` with each child that thread `tid` of this process (`me`) forked.
fn for_each_child(me: libc::pid_t, tid: libc::pid_t, found: &mut dyn FnMut(libc::pid_t)) {
    let mut path = StackPath::new();
    path.push(b"/proc/self/task/");
    path.push_number(tid);
    path.push(b"/children");
    let Some(file) = path.open(libc::O_RDONLY) else {
        // The kernel lacks CONFIG_PROC_CHILDREN: find them by their parent pid instead.
        for_each_child_by_scan(me, found);
        return;
    };
    let mut numbers = Numbers::default();
    let mut buf = [0u8; 4096];
    while let Some(chunk) = read_some(file, &mut buf) {
        numbers.feed(chunk, found);
    }
    numbers.finish(found);
    close(file);
}

/// Calls `found` with each process whose parent is `me`, found through /proc/<pid>/stat.
fn for_each_child_by_scan(me: libc::pid_t, found: &mut dyn FnMut(libc::pid_t)) {
    let mut path = StackPath::new();
    path.push(b"/proc");
    let Some(dir) = path.open(libc::O_RDONLY | libc::O_DIRECTORY) else {
        return;
    };
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`.
        let read = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        let Some(entries) = usize::try_from(read)
            .ok()
            .filter(|&n| n > 0)
            .and_then(|n| buf.get(..n))
        else {
            break;
        };
        for_each_dirent_name(entries, &mut |name| {
            if let Some(pid) = parse_pid(name) {
                if parent_of(pid) == Some(me) {
                    found(pid);
                }
            }
        });
    }
    close(dir);
}

/// The parent pid in /proc/<pid>/stat, if the process still exists.
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let mut path = StackPath::new();
    path.push(b"/proc/");
    path.push_number(pid);
    path.push(b"/stat");
    let file = path.open(libc::O_RDONLY)?;
    // "pid (comm) state ppid ...": comm is at most 15 bytes, so the start fits.
    let mut buf = [0u8; 512];
    let ppid = read_some(file, &mut buf).and_then(stat_ppid);
    close(file);
    ppid
}

fn kill_pid(pid: libc::pid_t) {
    if pid > 0 {
        // SAFETY: kill takes no pointer; a pid of ours that already ended (a zombie) is
        // unaffected.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Ends the supervisor the way `sh` ended, so the executor reads `sh`'s exit code or
/// signal from the supervisor's status.
fn exit_like(status: Option<c_int>) -> ! {
    // SAFETY: signal and exit system calls on live locals.
    unsafe {
        match status {
            Some(status) if libc::WIFEXITED(status) => libc::_exit(libc::WEXITSTATUS(status)),
            Some(status) if libc::WIFSIGNALED(status) => {
                let signo = libc::WTERMSIG(status);
                // No core file of the supervisor (a copy of the server's memory) for signals
                // that dump core.
                let none = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                let mut default: libc::sigaction = MaybeUninit::zeroed().assume_init();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(signo, &default, ptr::null_mut());
                // Pending while blocked, then delivered when unblocked.
                libc::kill(libc::getpid(), signo);
                let mut only = empty_set();
                libc::sigaddset(&mut only, signo);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
                // Still here: a signal that does not end a process by default.
                libc::_exit(128 + signo)
            }
            // `sh` is always reaped before there are no children left.
            _ => libc::_exit(255),
        }
    }
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

fn interrupted() -> bool {
    // Reading errno does not allocate.
    io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}

/// One read(2) into `buf`; `None` at end of file or on error.
fn read_some(fd: c_int, buf: &mut [u8]) -> Option<&[u8]> {
    loop {
        // SAFETY: read writes at most `buf.len()` bytes into `buf`.
        let read = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if read < 0 && interrupted() {
            continue;
        }
        let read = usize::try_from(read).ok().filter(|&n| n > 0)?;
        return buf.get(..read);
    }
}

fn close(fd: c_int) {
    // SAFETY: closes a descriptor this module opened and no longer uses.
    unsafe { libc::close(fd) };
}

/// A NUL-terminated path built on the stack. Pushes that do not fit are dropped and make
/// [`StackPath::open`] fail, rather than open a truncated path.
struct StackPath {
    bytes: [u8; 64],
    len: usize,
    overflowed: bool,
}

impl StackPath {
    fn new() -> StackPath {
        StackPath {
            bytes: [0; 64],
            len: 0,
            overflowed: false,
        }
    }

    fn push(&mut self, part: &[u8]) {
        // Keeps one byte for the terminating NUL.
        let end = self.len.saturating_add(part.len());
        let fits = end < self.bytes.len();
        match self.bytes.get_mut(self.len..end) {
            Some(room) if fits => {
                room.copy_from_slice(part);
                self.len = end;
            }
            _ => self.overflowed = true,
        }
    }

    fn push_number(&mut self, number: libc::pid_t) {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut rest = number.unsigned_abs();
        loop {
            at -= 1;
            if let Some(digit) = digits.get_mut(at) {
                // `rest % 10` is below 10.
                *digit = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || at == 0 {
                break;
            }
        }
        self.push(digits.get(at..).unwrap_or_default());
    }

    fn open(&mut self, flags: c_int) -> Option<c_int> {
        if self.overflowed {
            return None;
        }
        *self.bytes.get_mut(self.len)? = 0;
        // SAFETY: `bytes` is NUL-terminated at `len`.
        let fd = unsafe { libc::open(self.bytes.as_ptr().cast(), flags | libc::O_CLOEXEC) };
        (fd >= 0).then_some(fd)
    }
}

/// Decimal numbers separated by anything else, fed in chunks that may split a number.
#[derive(Default)]
struct Numbers {
    current: Option<libc::pid_t>,
    overflowed: bool,
}

impl Numbers {
    fn feed(&mut self, bytes: &[u8], found: &mut dyn FnMut(libc::pid_t)) {
        for &byte in bytes {
            if byte.is_ascii_digit() {
                let digit = libc::pid_t::from(byte - b'0');
                match self
                    .current
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(digit))
                {
                    Some(n) => self.current = Some(n),
                    None => self.overflowed = true,
                }
            } else {
                self.finish(found);
            }
        }
    }

    fn finish(&mut self, found: &mut dyn FnMut(libc::pid_t)) {
        let overflowed = std::mem::take(&mut self.overflowed);
        if let Some(n) = self.current.take().filter(|_| !overflowed) {
            found(n);
        }
    }
}

/// A whole name of decimal digits (a /proc entry that is a process).
fn parse_pid(name: &[u8]) -> Option<libc::pid_t> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0 as libc::pid_t, |n, &b| {
        n.checked_mul(10)?.checked_add(libc::pid_t::from(b - b'0'))
    })
}

/// The ppid field of a /proc/<pid>/stat line: the command name is in parentheses and may
/// itself contain ") ", so the fields start after the last ')'.
fn stat_ppid(stat: &[u8]) -> Option<libc::pid_t> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat
        .get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|field| !field.is_empty());
    let _state = fields.next()?;
    parse_pid(fields.next()?)
}

/// Calls `found` with each entry name in a getdents64 buffer.
fn for_each_dirent_name(entries: &[u8], found: &mut dyn FnMut(&[u8])) {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const RECLEN_AT: usize = 16;
    const NAME_AT: usize = 19;
    let mut at = 0;
    while let Some(entry) = entries.get(at..) {
        let Some(&[low, high]) = entry.get(RECLEN_AT..RECLEN_AT + 2) else {
            return;
        };
        let reclen = usize::from(u16::from_ne_bytes([low, high]));
        let Some(record) = entry.get(..reclen).filter(|_| reclen > NAME_AT) else {
            return;
        };
        if let Some(name) = record.get(NAME_AT..) {
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            found(name.get(..end).unwrap_or_default());
        }
        at += reclen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]]) -> Vec<libc::pid_t> {
        let mut found = Vec::new();
        let mut numbers = Numbers::default();
        for chunk in chunks {
            numbers.feed(chunk, &mut |pid| found.push(pid));
        }
        numbers.finish(&mut |pid| found.push(pid));
        found
    }

    #[test]
    fn children_list_is_read_across_chunk_boundaries() {
        assert_eq!(collect(&[b"12 345 6"]), [12, 345, 6]);
        assert_eq!(collect(&[b"12 3", b"45 ", b"6 "]), [12, 345, 6]);
        assert_eq!(collect(&[b""]), Vec::<libc::pid_t>::new());
        // A number too large for a pid is skipped, not wrapped around.
        assert_eq!(collect(&[b"7 99999999999999 8"]), [7, 8]);
    }

    #[test]
    fn stat_parent_pid_survives_odd_command_names() {
        assert_eq!(stat_ppid(b"42 (sleep) S 7 42 42 0 -1"), Some(7));
        assert_eq!(stat_ppid(b"42 (a) S 9 (b)) R 3 1 1"), Some(3));
        assert_eq!(stat_ppid(b"42 (sleep"), None);
        assert_eq!(stat_ppid(b"42 (x) S"), None);
    }

    #[test]
    fn pid_names_are_whole_numbers() {
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"12a"), None);
        assert_eq!(parse_pid(b"99999999999999"), None);
    }

    #[test]
    fn stack_paths_hold_numbers_and_refuse_overflow() {
        let mut path = StackPath::new();
        path.push(b"/proc/");
        path.push_number(4_194_304);
        path.push(b"/stat");
        assert_eq!(path.bytes.get(..path.len), Some(&b"/proc/4194304/stat"[..]));

        let mut long = StackPath::new();
        long.push(&[b'a'; 64]);
        assert!(long.open(libc::O_RDONLY).is_none());
    }

    #[test]
    fn dirent_names_are_split_by_record_length() {
        let mut buf = Vec::new();
        for name in [&b"."[..], b"1", b"self", b"4242"] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let start = buf.len();
            buf.resize(start + reclen, 0);
            let reclen16 = u16::try_from(reclen).expect("small record");
            buf[start + 16..start + 18].copy_from_slice(&reclen16.to_ne_bytes());
            buf[start + 19..start + 19 + name.len()].copy_from_slice(name);
        }
        let mut names = Vec::new();
        for_each_dirent_name(&buf, &mut |name| names.push(name.to_vec()));
        assert_eq!(names, [&b"."[..], b"1", b"self", b"4242"]);
        // A truncated buffer stops instead of reading past it.
        let mut count = 0;
        for_each_dirent_name(&buf[..buf.len() - 3], &mut |_| count += 1);
        assert_eq!(count, 3);
    }

    #[test]
    fn children_are_found_through_the_children_file_and_by_scanning() {
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("sleep starts");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
        let me = libc::pid_t::try_from(std::process::id()).expect("pid fits");
        // SAFETY: gettid takes nothing. The child was forked by this thread.
        let tid =
            libc::pid_t::try_from(unsafe { libc::syscall(libc::SYS_gettid) }).expect("tid fits");

        let mut listed = Vec::new();
        for_each_child(me, tid, &mut |found| listed.push(found));
        let mut scanned = Vec::new();
        for_each_child_by_scan(me, &mut |found| scanned.push(found));
        let _ = child.kill();
        let _ = child.wait();

        assert!(listed.contains(&pid), "{pid} not in {listed:?}");
        assert!(scanned.contains(&pid), "{pid} not in {scanned:?}");
    }

    #[test]
    fn only_terminating_signals_end_the_supervisor() {
        for signo in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGUSR1] {
            assert!(
                ends_supervisor(u32::try_from(signo).expect("signal")),
                "{signo}"
            );
        }
        for signo in [libc::SIGCHLD, libc::SIGWINCH, libc::SIGCONT, libc::SIGTSTP] {
            assert!(
                !ends_supervisor(u32::try_from(signo).expect("signal")),
                "{signo}"
            );
        }
    }
}
