//! Window boundaries: windows are aligned to multiples of their length since the Unix epoch
//! (a 60 s window runs from :00 to :00), so every device's windows line up.

/// Tracks the current window and says which windows a new instant closes.
#[derive(Debug, Clone)]
pub struct Windower {
    window_ms: u64,
    current: Option<u64>,
}

/// At most this many consecutive windows are closed by one jump of time (a clock step or a
/// long stall); the caller logs the rest as a gap.
pub const MAX_CATCH_UP: u64 = 1440;

impl Windower {
    pub fn new(window_secs: u32) -> Windower {
        Windower {
            window_ms: u64::from(window_secs.max(1)) * 1000,
            current: None,
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Bounds `[start, end)` of the window holding `t_ms`.
    pub fn bounds_of(&self, t_ms: u64) -> (u64, u64) {
        let start = t_ms / self.window_ms * self.window_ms;
        (start, start + self.window_ms)
    }

    /// Move to `t_ms`; returns the windows that ended before it, oldest first (empty ones
    /// included: a window without input is reported as blind, not skipped).
    pub fn advance(&mut self, t_ms: u64) -> Vec<(u64, u64)> {
        let idx = t_ms / self.window_ms;
        let mut closed = Vec::new();
        match self.current {
            None => self.current = Some(idx),
            Some(cur) if idx > cur => {
                let first = cur.max(idx.saturating_sub(MAX_CATCH_UP));
                for w in first..idx {
                    closed.push((w * self.window_ms, (w + 1) * self.window_ms));
                }
                self.current = Some(idx);
            }
            Some(_) => {}
        }
        closed
    }

    /// The window in progress, if any (closed at shutdown or end of input).
    pub fn current(&self) -> Option<(u64, u64)> {
        self.current
            .map(|w| (w * self.window_ms, (w + 1) * self.window_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_and_gaps_are_reported() {
        let mut w = Windower::new(60);
        assert!(w.advance(61_000).is_empty());
        assert_eq!(w.current(), Some((60_000, 120_000)));
        assert!(w.advance(119_999).is_empty());
        assert_eq!(w.advance(120_000), vec![(60_000, 120_000)]);
        assert_eq!(
            w.advance(300_000),
            vec![(120_000, 180_000), (180_000, 240_000), (240_000, 300_000)]
        );
        assert!(
            w.advance(10_000).is_empty(),
            "time going back closes nothing"
        );
    }
}
