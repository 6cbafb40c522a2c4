//! CPU time of this process and of the children it waited for (ffmpeg decoders, agents run by
//! a benchmark): what `vitrine bench` and `vitrine eval` measure speed with — frames per
//! CPU-second, not per wall second, so a loaded machine skews the figures less.

fn rusage_s(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds (user + system) of waited-for children so far.
pub fn children_s() -> f64 {
    rusage_s(libc::RUSAGE_CHILDREN)
}

/// CPU seconds of this process and its waited-for children so far.
pub fn process_and_children_s() -> f64 {
    rusage_s(libc::RUSAGE_SELF) + children_s()
}
