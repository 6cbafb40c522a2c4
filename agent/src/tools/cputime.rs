//! CPU time of this process and of the children it waited for (ffmpeg decoders, agents run by
//! a benchmark): what `vitrine bench` and `vitrine eval` measure speed with — frames per
//! CPU-second, not per wall second, so a loaded machine skews the figures less.
//!
//! getrusage(2), the one unsafe call in the library, allowed here only: developer tooling
//! behind the `tools` feature. (`/proc/self/stat` would avoid it, but qemu-user, which runs
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

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_and_children_s();
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let spent = process_and_children_s() - before;
        assert!(
            (0.1..5.0).contains(&spent),
            "{spent} CPU-s for 0.3 s of spinning"
        );
    }
}
