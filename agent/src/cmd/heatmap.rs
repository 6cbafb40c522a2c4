//! `vitrine heatmap`: a camera's published heatmap drawn over a still the technician provides
//! — from the published numbers (window events as the broker or `vitrine replay` delivers
//! them), never from frames. The windows of the chosen source are summed (an hour, a day), each
//! cell coloured by its published person-seconds relative to the busiest cell. A cell a window
//! suppressed (fewer than k people stood there in that window) adds nothing known; a cell that
//! was never published at all but suppressed at least once is hatched grey: unknown, not empty.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use vitrine_signals::event::{Body, HeatmapStats};
use vitrine_signals::WindowEvent;

use crate::observe::display::{png_bytes, read_png, Canvas};

/// The summed grid of a source over the events read.
#[derive(Debug, Clone, PartialEq)]
pub struct Summed {
    pub cols: u32,
    pub rows: u32,
    /// Published person-seconds per cell, summed; `None` where no window published the cell
    /// and at least one suppressed it.
    pub cells: Vec<Option<f64>>,
    pub windows: usize,
}

/// Sum the heatmaps of `source` (default: the first source with one) in `events`, a file of
/// window events (one JSON document per line; other lines, like alerts, are skipped).
pub fn sum(events: &Path, source: Option<&str>) -> anyhow::Result<Summed> {
    let f = std::fs::File::open(events).with_context(|| format!("{}", events.display()))?;
    let mut acc: Option<(String, Summed)> = None;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", events.display(), i + 1))?;
        let Ok(ev) = serde_json::from_str::<WindowEvent>(&line) else {
            continue;
        };
        let Body::Camera(c) = ev.body else { continue };
        let Some(h) = c.heatmap else { continue };
        if source.is_some_and(|s| s != ev.source_id) {
            continue;
        }
        match &mut acc {
            None => acc = Some((ev.source_id.clone(), start(&h))),
            Some((src, s)) if *src == ev.source_id => add(s, &h).with_context(|| {
                format!("{}:{}: the grid changed size", events.display(), i + 1)
            })?,
            Some(_) => {}
        }
    }
    acc.map(|(_, s)| s).with_context(|| {
        format!(
            "{}: no window event with a heatmap{}; fix: add [cameras.heatmap] to the camera's config",
            events.display(),
            source.map(|s| format!(" from source {s:?}")).unwrap_or_default()
        )
    })
}

fn start(h: &HeatmapStats) -> Summed {
    Summed {
        cols: h.cols,
        rows: h.rows,
        cells: h.person_seconds.clone(),
        windows: 1,
    }
}

fn add(s: &mut Summed, h: &HeatmapStats) -> anyhow::Result<()> {
    anyhow::ensure!(
        (h.cols, h.rows) == (s.cols, s.rows) && h.person_seconds.len() == s.cells.len(),
        "{}x{} after {}x{}",
        h.cols,
        h.rows,
        s.cols,
        s.rows
    );
    for (a, b) in s.cells.iter_mut().zip(&h.person_seconds) {
        *a = match (*a, *b) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
    }
    s.windows += 1;
    Ok(())
}

/// A colour from cold (blue, little) through yellow to hot (red, the busiest cell).
fn ramp(t: f64) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0);
    let (r, g, b) = if t < 0.5 {
        (2.0 * t, 2.0 * t, 1.0 - 2.0 * t)
    } else {
        (1.0, 2.0 - 2.0 * t, 0.0)
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// Draw `s` over `still` (or a dark 640x480 background).
pub fn render(s: &Summed, still: Option<Canvas>) -> Canvas {
    let mut c = still.unwrap_or_else(|| {
        let mut c = Canvas::new(640, 480);
        c.rgb.iter_mut().for_each(|p| *p = 40);
        c
    });
    let max = s.cells.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let (w, h) = (c.width as usize, c.height as usize);
    for y in 0..h {
        let row = y * s.rows as usize / h;
        for x in 0..w {
            let col = x * s.cols as usize / w;
            let i = (y * w + x) * 3;
            let over = match s.cells[row * s.cols as usize + col] {
                Some(v) if v > 0.0 && max > 0.0 => Some((ramp(v / max), 0.55)),
                Some(_) => None,
                // Unknown: grey hatching.
                None => ((x + y) % 8 < 2).then_some(([128, 128, 128], 0.8)),
            };
            if let Some((rgb, a)) = over {
                for (p, o) in c.rgb[i..i + 3].iter_mut().zip(rgb) {
                    *p = (f64::from(*p) * (1.0 - a) + f64::from(o) * a) as u8;
                }
            }
        }
    }
    c
}

/// The command: sum, draw, write the PNG; prints what it drew.
pub fn heatmap(
    events: &Path,
    source: Option<&str>,
    still: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    let s = sum(events, source)?;
    let still = still
        .map(|p| {
            read_png(p).with_context(|| {
                format!(
                    "still {}; fix: give an 8-bit RGB PNG (ffmpeg -i photo.jpg still.png)",
                    p.display()
                )
            })
        })
        .transpose()?;
    let img = render(&s, still);
    std::fs::write(out, png_bytes(&img)?).with_context(|| format!("{}", out.display()))?;
    let known: f64 = s.cells.iter().flatten().sum();
    let hidden = s.cells.iter().filter(|c| c.is_none()).count();
    println!(
        "{}: {} window(s), {}x{} cells, {known:.0} person-seconds, {hidden} cell(s) never published (hatched)",
        out.display(),
        s.windows,
        s.cols,
        s.rows
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: &str, cells: &[Option<f64>]) -> String {
        format!(
            r#"{{"schema":"vitrine.window.v1","device_id":"d","store_id":"s","source_id":"{source}","seq":1,"idempotency_key":"s/d/{source}/0/1","window":{{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:01:00Z","seconds":60}},"k_min":2,"kind":"camera","coverage":{{"status":"ok","seconds_blind":0.0}},"people":{{"mean":1.0,"max":2,"suppressed":false}},"zones":[],"lines":[],"displays":[],"heatmap":{{"cols":2,"rows":1,"person_seconds":{},"suppressed_cells":0}}}}"#,
            serde_json::to_string(cells).unwrap()
        )
    }

    #[test]
    fn windows_of_one_source_are_summed_and_a_never_published_cell_stays_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let text = [
            line("door", &[Some(1.0), Some(2.0)]),
            r#"{"schema":"vitrine.alert.v1"}"#.to_string(),
            line("other", &[Some(50.0), Some(50.0)]),
            line("door", &[None, None]),
            line("door", &[Some(3.0), None]),
        ]
        .join("\n");
        std::fs::write(&p, text).unwrap();
        let s = sum(&p, Some("door")).unwrap();
        assert_eq!(
            (s.windows, s.cells.clone()),
            (3, vec![Some(4.0), Some(2.0)])
        );
        std::fs::write(
            &p,
            [
                line("door", &[None, Some(1.0)]),
                line("door", &[None, Some(0.0)]),
            ]
            .join("\n"),
        )
        .unwrap();
        assert_eq!(sum(&p, None).unwrap().cells, vec![None, Some(1.0)]);
        let img = render(&s, None);
        assert_eq!((img.width, img.height), (640, 480));
        // The left half is the hottest colour blended over the background; the right hatched.
        assert!(img.rgb[(100 * 640 + 100) * 3] > 150, "red on the left");
        let e = sum(&p, Some("nobody")).unwrap_err().to_string();
        assert!(e.contains("[cameras.heatmap]"), "{e}");
    }
}
