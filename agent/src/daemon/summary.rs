//! A one-line human summary of a window event (the demo prints it).

use vitrine_signals::{Body, WindowEvent};

/// A one-line human summary of an event (for the demo and logs: aggregates only).
pub fn summary(ev: &WindowEvent) -> String {
    let f = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "<k".into());
    let time = ev.window.start.get(11..19).unwrap_or("");
    match &ev.body {
        Body::Camera(c) => {
            let mut s = format!(
                "{time} +{}s {:<10} people mean {:.1} max {} ",
                ev.window.seconds,
                ev.source_id,
                c.people.mean.unwrap_or(0.0),
                f(c.people.max)
            );
            for l in &c.lines {
                s += &format!("| line {} in {} out {} ", l.id, f(l.r#in), f(l.out));
            }
            for z in c.zones.iter().chain(&c.displays) {
                s += &format!(
                    "| {} occ {:.1} visits {} ",
                    z.id,
                    z.occupancy_mean.unwrap_or(0.0),
                    f(z.visits)
                );
                if let Some(d) = &z.dwell_seconds {
                    s += &format!("dwell p50 {:.1}s ", d.p50);
                }
                if let Some(a) = &z.attention {
                    s += &format!("lookers {}/{} ", f(a.lookers), f(a.passers));
                }
            }
            s + &format!(
                "| coverage {:?} {}/{} frames",
                c.coverage.status,
                c.coverage.frames_analysed.unwrap_or(0),
                c.coverage.frames_expected.unwrap_or(0)
            )
            .to_lowercase()
        }
        Body::Microphone(a) => {
            let sounds = a
                .sounds
                .as_ref()
                .map(|s| {
                    let pct = |v: Option<f64>| {
                        v.map(|v| format!("{:.0}%", v * 100.0))
                            .unwrap_or("-".into())
                    };
                    format!(
                        " | sounds speech {} music {} crowd {} silence {} other {}",
                        pct(s.speech),
                        pct(s.music),
                        pct(s.crowd),
                        pct(s.silence),
                        pct(s.other)
                    )
                })
                .unwrap_or_default();
            format!(
                "{time} +{}s {:<10} speech {:.0}% level {} dBFS{sounds} | coverage {}",
                ev.window.seconds,
                ev.source_id,
                a.speech_ratio.unwrap_or(0.0) * 100.0,
                a.level_dbfs
                    .as_ref()
                    .map(|l| format!("{:.1}", l.mean))
                    .unwrap_or_else(|| "-".into()),
                format!("{:?}", a.coverage.status).to_lowercase()
            )
        }
    }
}
