//! CPU time of this process and of the children it waited for (ffmpeg decoders, agents run by
//! a benchmark): what `vitrine-lab bench` and `vitrine-lab eval` measure speed with — frames per
//! CPU-second, not per wall second, so a loaded machine skews the figures less.
//!
//! getrusage(2), the one unsafe call in the lab, allowed here only (the daemon's library
//! forbids unsafe code). (`/proc/self/stat` would avoid it, but qemu-user, which runs
//! the ARM tests, reports zeros there.)

#![allow(unsafe_code)]

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Spinning shows up as CPU time: it is counted (at least 0.1 CPU-s appears within a generous
    /// wall-clock limit, however loaded the machine) and it is not wildly over-counted.
    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_and_children_s();
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        let mut spent = 0.0;
        while spent < 0.1 && t0.elapsed() < std::time::Duration::from_secs(60) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            spent = process_and_children_s() - before;
        }
        std::hint::black_box(x);
        let wall = t0.elapsed().as_secs_f64();
        assert!(spent >= 0.1, "{spent} CPU-s after {wall:.1} s of spinning");
        // Other tests' threads run in this process too: allow for them, not for a unit error.
        assert!(spent < 0.1 + wall * 64.0, "{spent} CPU-s in {wall:.1} s");
    }
}
