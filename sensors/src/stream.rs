//! Whether a camera's stream is sized for analysis. Vitrine never records, so it needs only a
//! camera's low-resolution **substream** (Frigate's `detect` role): the detector's input is at
//! most 640 px wide, yet every frame of an H.264 stream is decoded at its full size, even the
//! ones the frame-rate gate then skips. A 1080p30 main stream costs several times what a
//! 640x360 substream at the same rate does (`vitrine probe --rtsp` measures it). Pure; the
//! RTSP source logs this advice when it opens a stream, `vitrine probe` prints it.

/// The largest stream worth decoding for analysis: twice the largest detector input on each
/// side is already oversampled (1280x720).
pub const MAX_ANALYSIS_PIXELS: u64 = 1280 * 720;
/// A substream size every camera class offers (ONVIF profile 2, Hikvision's channel 102,
/// Dahua's `subtype=1`, Axis' `resolution=`), and what the advice compares with.
pub const SUBSTREAM: (u32, u32) = (640, 360);

/// What a stream costs beyond what the analysis uses, with the fix; empty when it is sized
/// right. `fps`: the stream's measured rate (unknown right after opening); `analysis_fps`: the
/// camera's configured analysis rate.
pub fn advice(width: u32, height: u32, fps: Option<f64>, analysis_fps: f64) -> Vec<String> {
    let size = size_advice(width, height);
    let rate = fps.and_then(|f| rate_advice(f, analysis_fps));
    size.into_iter().chain(rate).collect()
}

/// The substream advice for a stream larger than analysis can use.
pub fn size_advice(width: u32, height: u32) -> Option<String> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels <= MAX_ANALYSIS_PIXELS {
        return None;
    }
    let sub = u64::from(SUBSTREAM.0) * u64::from(SUBSTREAM.1);
    Some(format!(
        "the stream is {width}x{height}: every frame is decoded at that size, {:.0}x the \
         pixels of a {}x{} substream, for a detector that looks at 640 px at most; use the \
         camera's substream URL (ONVIF profile 2; Hikvision .../Channels/102, Dahua \
         subtype=1, Axis resolution=640x360)",
        pixels as f64 / sub as f64,
        SUBSTREAM.0,
        SUBSTREAM.1
    ))
}

/// The frame-rate advice for a stream sending far more frames than are analysed.
pub fn rate_advice(fps: f64, analysis_fps: f64) -> Option<String> {
    let enough = (2.0 * analysis_fps).max(15.0);
    (fps > enough + 0.5).then(|| {
        format!(
            "the stream sends {fps:.0} frames per second and {analysis_fps} are analysed: \
             every frame is decoded; set the camera's (sub)stream to {:.0} fps",
            analysis_fps.max(5.0).ceil()
        )
    })
}

/// Measures a stream's frame rate from its own timestamps (RTP, in seconds).
#[derive(Debug, Default, Clone)]
pub struct RateMeter {
    first: Option<f64>,
    last: f64,
    frames: u64,
}

impl RateMeter {
    /// Note a frame stamped `t` seconds.
    pub fn frame(&mut self, t: f64) {
        self.first.get_or_insert(t);
        self.last = t;
        self.frames += 1;
    }

    /// Seconds of stream seen.
    pub fn span(&self) -> f64 {
        self.first.map_or(0.0, |f| (self.last - f).max(0.0))
    }

    /// Frames per second, once at least a second of stream was seen.
    pub fn fps(&self) -> Option<f64> {
        let span = self.span();
        (span >= 1.0).then(|| (self.frames - 1) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1080p30_main_stream_gets_both_the_substream_and_the_rate_advice() {
        let a = advice(1920, 1080, Some(30.0), 10.0);
        assert_eq!(a.len(), 2, "{a:?}");
        assert!(
            a[0].contains("1920x1080") && a[0].contains("9x the pixels"),
            "{a:?}"
        );
        assert!(
            a[1].contains("30 frames per second") && a[1].contains("10 fps"),
            "{a:?}"
        );
    }

    #[test]
    fn substreams_and_d1_streams_at_their_usual_rates_are_left_alone() {
        assert!(advice(640, 360, Some(15.0), 10.0).is_empty());
        assert!(advice(704, 576, Some(25.0), 15.0).is_empty());
        assert!(advice(1280, 720, None, 10.0).is_empty());
        assert!(advice(640, 480, Some(15.0), 5.0).is_empty());
    }

    #[test]
    fn the_rate_is_measured_from_the_streams_own_timestamps() {
        let mut m = RateMeter::default();
        assert_eq!(m.fps(), None);
        for i in 0..=60 {
            m.frame(100.0 + f64::from(i) / 30.0);
        }
        let fps = m.fps().expect("two seconds seen");
        assert!((fps - 30.0).abs() < 0.01, "{fps}");
    }

    #[test]
    fn a_substream_faster_than_needed_gets_only_the_rate_advice() {
        let a = advice(640, 360, Some(30.0), 5.0);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].contains("5 fps"), "{a:?}");
    }
}
