//! The suite's tables: per sequence the detail (chosen lines, zones, the grid, crossings made
//! out of sight, recall by person height, where the CPU went), then two summaries (counting,
//! tracking and speed) with a row per sequence and pipeline.

use super::gt::VideoFacts;
use super::mot::{ByHeight, HEIGHT_BINS};
use super::suite::{Score, Sequence};

pub fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn share(a: u64, b: u64) -> String {
    format!("{a} of {b} ({})", pct(a as f64 / b.max(1) as f64))
}

pub fn header(seq: &Sequence, facts: VideoFacts, native: f32) {
    let c = &seq.camera;
    println!(
        "\n## {} — {}\n{}x{}, {} frames at {native} fps; analysed at {} fps, detect_every {} ({} while people are near), phase {}, motion gating {}, {} input {}, threshold {}; defaults {} on it\n{}",
        seq.name,
        if seq.scene.is_empty() { "(no description)" } else { &seq.scene },
        facts.width,
        facts.height,
        facts.frames,
        c.fps,
        c.detect_every,
        c.detect_every_near,
        seq.phase,
        if c.motion_gating { "on" } else { "off" },
        seq.cfg.models.detector,
        c.input_size
            .map(|s| format!("{s} (the camera's)"))
            .or(seq.cfg.models.input_size.map(|s| s.to_string()))
            .unwrap_or_else(|| "(model's)".into()),
        seq.cfg.models.detector_threshold,
        if seq.tuned { "tuned" } else { "not tuned" },
        seq.source,
    );
}

/// The detector's input over the video's size (the model's own size when unset).
fn detector_scale(seq: &Sequence, facts: VideoFacts) -> f32 {
    let size = seq
        .camera
        .input_size
        .or(seq.cfg.models.input_size)
        .unwrap_or(416) as usize;
    let (w, h) = (facts.width as usize, facts.height as usize);
    let (iw, _) = vitrine_models::detector::input_shape(size, w, h);
    (iw as f32 / w.max(1) as f32).min(1.0)
}

pub fn detail(seq: &Sequence, scores: &[Score], facts: VideoFacts) {
    lines(seq, scores);
    for s in scores {
        pipeline(s);
    }
    grid(scores);
    heights(scores, detector_scale(seq, facts));
}

fn lines(seq: &Sequence, scores: &[Score]) {
    let names: Vec<&str> = scores.iter().map(|s| s.pipeline.as_str()).collect();
    println!("\n| count | truth | {} |", names.join(" | "));
    println!("|---|---|{}", "---|".repeat(names.len()));
    let Some(first) = scores.first() else { return };
    let show_grid = std::env::var_os("VITRINE_EVAL_GRID").is_some();
    for (i, (truth, _)) in first.lines.iter().enumerate() {
        let id = &truth.id;
        if id.starts_with(super::grid::PREFIX) && !show_grid {
            continue;
        }
        let kind = if *id == seq.main_line {
            " (main)"
        } else if seq.along.contains(id) {
            " (along)"
        } else {
            ""
        };
        for (dir, t, pick) in [("in", truth.ins, 0), ("out", truth.outs, 1)] {
            let cells: Vec<String> = scores
                .iter()
                .map(|s| {
                    let o = &s.lines[i].1;
                    let v = if pick == 0 { o.ins } else { o.outs };
                    format!("{v} ({:+})", v as i64 - t as i64)
                })
                .collect();
            println!("| line {id}{kind} {dir} | {t} | {} |", cells.join(" | "));
        }
    }
    for (i, (truth, _)) in first.zones.iter().enumerate() {
        let cells: Vec<String> = scores
            .iter()
            .map(|s| match s.zones.get(i).and_then(|z| z.1.as_ref()) {
                Some(z) => format!("{} visits, occupancy {:.2}", z.visits, z.occupancy),
                None => "—".into(),
            })
            .collect();
        println!(
            "| zone {} | {} visits, occupancy {:.2} | {} |",
            truth.id,
            truth.visits,
            truth.occupancy,
            cells.join(" | ")
        );
    }
    println!();
}

fn pipeline(s: &Score) {
    let m = &s.mot;
    print!(
        "{}: {} people-frames annotated, {} reported; FN {}, FP {}, identity switches {}; HOTA {} (DetA {}, AssA {})",
        s.pipeline,
        m.gt,
        m.hyp,
        m.fn_,
        m.fp,
        m.idsw,
        pct(s.hota.hota),
        pct(s.hota.deta),
        pct(s.hota.assa)
    );
    match s.det {
        Some(d) => println!(
            "; detector alone (at the threshold) on its {} frames: recall {} / precision {}",
            s.detector_frames,
            pct(d.recall()),
            pct(d.precision())
        ),
        None => println!(),
    }
    if let Some(model) = s.model_s {
        println!(
            "{}: {:.2} s of CPU for {} frames ({:.1} ms each; {:.3} of a core per second of video, every frame decoded), of which the detector's model {:.2} s ({:.1} ms per detector run): everything else is {} of the CPU",
            s.pipeline,
            s.cpu_s,
            s.frames,
            1000.0 * s.cpu_s / s.frames.max(1) as f64,
            s.cpu_s / s.video_s,
            model,
            1000.0 * model / s.detector_frames.max(1) as f64,
            pct(1.0 - model / s.cpu_s.max(1e-9)),
        );
    }
}

fn grid(scores: &[Score]) {
    println!("\n| dense grid | lines | within max(1, 5 %) | within max(2, 10 %) | summed error | worst line | crossings counted | made while hidden: counted | unmatched counts |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in scores {
        let g = s.grid();
        let c = s.grid_crossings;
        let worst = g
            .worst
            .as_ref()
            .map(|(id, e, n)| format!("{id}: {e} of {n}"))
            .unwrap_or_else(|| "—".into());
        println!(
            "| {} | {} | {} | {} | {} | {worst} | {} | {} | {} |",
            s.pipeline,
            g.lines,
            share(g.within_5, g.lines),
            share(g.within_10, g.lines),
            share(g.error, g.truth),
            share(c.counted, c.truth),
            share(c.hidden_counted, c.hidden),
            c.false_,
        );
    }
}

fn heights(scores: &[Score], scale: f32) {
    let names: Vec<&str> = scores.iter().map(|s| s.pipeline.as_str()).collect();
    println!(
        "\n| person height at the source (at the detector's input) | annotated (at least half in view) | {} | detector alone |",
        names.join(" | ")
    );
    println!("|---|---|{}---|", "---|".repeat(names.len()));
    let Some(first) = scores.first() else { return };
    let bins = |b: &ByHeight, i: usize| {
        let (g, t) = (b.gt[i], b.tp[i]);
        if g == 0 {
            "—".to_string()
        } else {
            pct(t as f64 / g as f64)
        }
    };
    for i in 0..HEIGHT_BINS.len() {
        if first.mot.by_height.gt[i] == 0 {
            continue;
        }
        let lo = if i == 0 { 0.0 } else { HEIGHT_BINS[i - 1] };
        let hi = HEIGHT_BINS[i];
        let range = if hi.is_finite() {
            format!("{lo:.0}–{hi:.0} px ({:.0}–{:.0})", lo * scale, hi * scale)
        } else {
            format!("≥ {lo:.0} px (≥ {:.0})", lo * scale)
        };
        let cells: Vec<String> = scores.iter().map(|s| bins(&s.mot.by_height, i)).collect();
        let det = first
            .det
            .map(|d| bins(&d.by_height, i))
            .unwrap_or_else(|| "—".into());
        println!(
            "| {range} | {} | {} | {det} |",
            first.mot.by_height.gt[i],
            cells.join(" | ")
        );
    }
}

/// The placement check's findings on the sequence (what a technician would be told).
pub fn placement(r: &vitrine_signals::placement::Report) {
    if r.warnings.is_empty() {
        println!("\nplacement check: no warning ({} people seen)", r.people);
    }
    for w in &r.warnings {
        println!(
            "\nplacement check, {}: {}; fix: {}",
            w.subject, w.message, w.fix
        );
    }
}

pub fn summary(rows: &[(&Sequence, Score)]) {
    println!("\n### Counting\n\n| sequence | pipeline | frames | main line error | along: false crossings | grid lines within max(1, 5 %) | worst grid line | grid summed error | hidden crossings counted | grid unmatched counts | occupancy (main line as entrance): seconds within max(2, 5 %), worst |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (seq, s) in rows {
        let (err, n) = s.line_error(&seq.main_line);
        let g = s.grid();
        let c = s.grid_crossings;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}, worst {} (peak {}) |",
            seq.name,
            s.pipeline,
            s.frames,
            share(err, n),
            s.false_crossings(&seq.along),
            share(g.within_5, g.lines),
            g.worst
                .as_ref()
                .map(|(id, e, n)| format!("{e} of {n} ({id})"))
                .unwrap_or_else(|| "—".into()),
            share(g.error, g.truth),
            share(c.hidden_counted, c.hidden),
            c.false_,
            share(s.occupancy.within, s.occupancy.seconds),
            s.occupancy.worst,
            s.occupancy.peak,
        );
    }
    groups(rows);
    println!("\n### Tracking\n\n| sequence | pipeline | MOTA | IDF1 | HOTA | precision / recall | recall, people ≥ 40 px | people in view | frames per CPU-s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (seq, s) in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {:.2} vs {:.2} ({:+.1} %) | {:.1} |",
            seq.name,
            s.pipeline,
            pct(s.mot.mota()),
            pct(s.mot.idf1()),
            pct(s.hota.hota),
            pct(s.mot.precision()),
            pct(s.mot.recall()),
            s.mot
                .by_height
                .recall_from(40.0)
                .map(pct)
                .unwrap_or_else(|| "—".into()),
            s.people.0,
            s.people.1,
            100.0 * s.people_error(),
            s.fps_per_cpu(),
        );
    }
    let ratios: Vec<String> = rows
        .iter()
        .filter(|(_, s)| s.pipeline == "vitrine")
        .filter_map(|(seq, s)| {
            let a = rows
                .iter()
                .find(|(q, a)| q.name == seq.name && a.pipeline == "ort+bytetrack")?;
            Some(format!(
                "{} {:.2}×",
                seq.name,
                s.fps_per_cpu() / a.1.fps_per_cpu().max(1e-9)
            ))
        })
        .collect();
    if !ratios.is_empty() {
        println!(
            "\nframes per CPU-second, vitrine / ort+bytetrack: {}",
            ratios.join(", ")
        );
    }
}

/// Parties crossing together (every line): the groups formed and the pairwise precision and
/// recall against the rule applied to the annotation's own tracks.
fn groups(rows: &[(&Sequence, Score)]) {
    println!("\n### Groups\n\n| sequence | pipeline | groups: truth / ours | pairs grouped: truth / ours / both | pairwise precision | pairwise recall |");
    println!("|---|---|---|---|---|---|");
    for (seq, s) in rows {
        let Some(g) = s.groups else { continue };
        let p = |x: Option<f64>| x.map_or("—".to_string(), pct);
        println!(
            "| {} | {} | {} / {} | {} / {} / {} | {} | {} |",
            seq.name,
            s.pipeline,
            g.truth_groups,
            g.our_groups,
            g.truth_pairs,
            g.our_pairs,
            g.both_pairs,
            p(g.precision()),
            p(g.recall()),
        );
    }
}
