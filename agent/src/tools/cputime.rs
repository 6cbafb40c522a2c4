//! CPU time of this process and of the children it waited for (ffmpeg decoders, agents run by
//! a benchmark): what `vitrine bench` and `vitrine eval` measure speed with — frames per
//! CPU-second, not per wall second, so a loaded machine skews the figures less.
//!
//! Read from `/proc/self/stat` (no unsafe code): utime, stime, cutime and cstime, in clock
//! ticks of `USER_HZ`, which Linux fixes at 100 on every architecture the agent ships for.

/// Clock ticks per second of `/proc` times (Linux's `USER_HZ`).
const USER_HZ: f64 = 100.0;

/// (this process, its waited-for children) CPU seconds, user + system.
fn cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse::<f64>().unwrap_or(0.0) / USER_HZ)
        .collect();
    match f.as_slice() {
        [ut, st, cut, cst] => (ut + st, cut + cst),
        _ => (0.0, 0.0),
    }
}

/// CPU seconds (user + system) of waited-for children so far.
pub fn children_s() -> f64 {
    cpu_s().1
}

/// CPU seconds of this process and its waited-for children so far.
pub fn process_and_children_s() -> f64 {
    let (own, children) = cpu_s();
    own + children
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
