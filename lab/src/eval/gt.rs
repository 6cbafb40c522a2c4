//! MOT-style ground truth (`frame,id,x,y,w,h,conf,...`, MOTChallenge's `gt.txt`), read and
//! checked against the video it claims to annotate. Anything that does not fit is an error
//! naming the file, the line or field, and the fix: a ground truth for another video would
//! otherwise produce plausible but meaningless figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vitrine_signals::geom::{in_polygon, BBox, Point};

/// One annotated box. `ignore` (conf 0 in MOTChallenge files, or a MOT17 class that is a
/// person but not a pedestrian: on a vehicle, static, a distractor, a reflection): a box the
/// annotation does not score; matching one is neither a hit nor a false alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    pub id: u64,
    pub bbox: BBox,
    pub ignore: bool,
    /// A pedestrian (MOT15 rows, MOT17 class 1), scored or not: what counting lines count.
    pub walker: bool,
    /// A real person (a pedestrian, on a vehicle or standing still; not a distractor such as
    /// a mannequin or a reflection): what people in view count.
    pub person: bool,
    /// Share of the person in view (MOT17's ninth column), where the annotation has it.
    pub visibility: Option<f32>,
}

/// MOT17/MOT20 classes: pedestrian, and the person-like ones that are neither hits nor misses
/// (person on vehicle, static person, distractor, reflection). Other classes (vehicles,
/// occluders) are not people and are left out.
const PEDESTRIAN: u32 = 1;
const IGNORED_CLASSES: [u32; 4] = [2, 7, 8, 12];
/// Of those, real people (on a vehicle, static).
const OTHER_PEOPLE: [u32; 2] = [2, 7];

#[derive(Debug)]
pub struct GroundTruth {
    pub path: PathBuf,
    /// Frame number (1-based, the video's own frames) → boxes, normalized to the frame.
    frames: BTreeMap<u64, Vec<GtBox>>,
    /// Where the annotators worked: the convex hull of every annotated foot point.
    region: Vec<Point>,
}

/// What the video is (from ffprobe): the ground truth must fit it.
#[derive(Debug, Clone, Copy)]
pub struct VideoFacts {
    pub width: u32,
    pub height: u32,
    /// Frames in the file (duration × rate, rounded).
    pub frames: u64,
}

/// Growth of the annotated region beyond the hull of the annotated feet (normalized units).
const REGION_MARGIN: f32 = 0.03;

impl GroundTruth {
    /// Read and check `path` against `video`. `seqinfo.ini` beside it (or one level up, as in
    /// MOTChallenge's layout), when present, must agree with the video's size and length;
    /// its frame rate is not used (frame numbers, not times, tie annotations to frames).
    pub fn read(path: &Path, video: VideoFacts) -> anyhow::Result<GroundTruth> {
        Self::read_scaled(path, video, None)
    }

    /// As [`GroundTruth::read`], for a video that is a scaled copy of the annotated original:
    /// the annotation's pixels are of `annotated` (width, height), which `seqinfo.ini` must
    /// match instead of the video's size.
    pub fn read_scaled(
        path: &Path,
        video: VideoFacts,
        annotated: Option<(u32, u32)>,
    ) -> anyhow::Result<GroundTruth> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}; fix: give the gt.txt of the sequence",
                path.display()
            )
        })?;
        let (aw, ah) = annotated.unwrap_or((video.width, video.height));
        check_seqinfo(
            path,
            VideoFacts {
                width: aw,
                height: ah,
                ..video
            },
        )?;
        let (w, h) = (aw as f32, ah as f32);
        let mut frames: BTreeMap<u64, Vec<GtBox>> = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{}:{}", path.display(), n + 1);
            let b = parse_line(line).map_err(|why| {
                anyhow::anyhow!("{}: {why}; fix: MOT format is frame,id,x,y,w,h[,conf,...] with frame ≥ 1 and w, h > 0", at())
            })?;
            if b.frame > video.frames {
                anyhow::bail!(
                    "{}: frame {} is beyond the video's {} frames: this ground truth is not for this video (or the video was cut); fix: give the matching video and gt.txt",
                    at(), b.frame, video.frames
                );
            }
            let bbox = BBox::new(b.x / w, b.y / h, (b.x + b.w) / w, (b.y + b.h) / h);
            let c = bbox.center();
            if !(-0.1..=1.1).contains(&c.x) || !(-0.1..=1.1).contains(&c.y) {
                anyhow::bail!(
                    "{}: box centre ({:.0}, {:.0}) px lies outside the {}x{} video: this ground truth is for another size; fix: give the matching video",
                    at(), b.x + b.w / 2.0, b.y + b.h / 2.0, aw, ah
                );
            }
            let class = b.class.unwrap_or(PEDESTRIAN);
            let walker = class == PEDESTRIAN;
            if !walker && !IGNORED_CLASSES.contains(&class) {
                continue;
            }
            frames.entry(b.frame).or_default().push(GtBox {
                id: b.id,
                bbox,
                ignore: b.conf == Some(0.0) || !walker,
                walker,
                person: walker || OTHER_PEOPLE.contains(&class),
                visibility: b.visibility,
            });
        }
        if frames.is_empty() {
            anyhow::bail!(
                "{}: no annotation in the file; fix: give the sequence's gt.txt",
                path.display()
            );
        }
        let feet: Vec<Point> = frames
            .values()
            .flatten()
            .filter(|g| g.walker)
            .map(|g| g.bbox.foot())
            .collect();
        Ok(GroundTruth {
            path: path.to_path_buf(),
            frames,
            region: convex_hull(feet),
        })
    }

    /// The boxes of frame `n` (1-based).
    pub fn frame(&self, n: u64) -> &[GtBox] {
        self.frames.get(&n).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every annotated frame, in order.
    pub fn frames(&self) -> impl Iterator<Item = (u64, &[GtBox])> {
        self.frames.iter().map(|(n, v)| (*n, v.as_slice()))
    }

    /// Whether a foot point lies where the annotators worked (the hull of the annotated feet,
    /// grown a little): people beyond it (a far footpath nobody annotated) are neither missed
    /// nor false alarms.
    pub fn annotated(&self, p: Point) -> bool {
        in_polygon(p, &self.region) || distance_to_polygon(p, &self.region) <= REGION_MARGIN
    }

    /// Where people walk: the convex hull of the pedestrians' annotated feet.
    pub fn region(&self) -> &[Point] {
        &self.region
    }

    /// Whether the annotation says how much of each person is in view (MOT17's visibility).
    pub fn has_visibility(&self) -> bool {
        self.frames
            .values()
            .flatten()
            .any(|g| g.visibility.is_some())
    }
}

struct Line {
    frame: u64,
    id: u64,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    conf: Option<f32>,
    /// MOT17's class (eighth column) when it is one (MOT15 files have -1 there).
    class: Option<u32>,
    visibility: Option<f32>,
}

fn parse_line(line: &str) -> Result<Line, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() < 6 {
        return Err(format!("{} fields, at least 6 needed", fields.len()));
    }
    let num = |i: usize, name: &str| -> Result<f32, String> {
        fields[i]
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("field {} ({name}) is {:?}, not a number", i + 1, fields[i]))
    };
    let whole = |i: usize, name: &str| -> Result<u64, String> {
        let v = num(i, name)?;
        if v < 0.0 || v.fract() != 0.0 {
            return Err(format!(
                "field {} ({name}) is {v}, not a whole number",
                i + 1
            ));
        }
        Ok(v as u64)
    };
    let frame = whole(0, "frame")?;
    if frame == 0 {
        return Err("frame 0: frames count from 1".into());
    }
    let (w, h) = (num(4, "width")?, num(5, "height")?);
    if w <= 0.0 || h <= 0.0 {
        return Err(format!("box of {w}x{h} px"));
    }
    // MOT17 (9 columns): conf, class, visibility. MOT15 (10): conf, then world x, y, z (-1).
    let class = match fields.len() {
        9 => Some(whole(7, "class")? as u32),
        _ => None,
    };
    let visibility = match class {
        Some(_) => Some(num(8, "visibility")?.clamp(0.0, 1.0)),
        None => None,
    };
    Ok(Line {
        frame,
        id: whole(1, "id")?,
        x: num(2, "x")?,
        y: num(3, "y")?,
        w,
        h,
        conf: fields.get(6).map(|_| num(6, "conf")).transpose()?,
        class,
        visibility,
    })
}

/// MOTChallenge's seqinfo.ini next to gt.txt (or in the sequence folder above `gt/`).
fn check_seqinfo(gt: &Path, video: VideoFacts) -> anyhow::Result<()> {
    let dir = gt.parent().unwrap_or(Path::new("."));
    let Some(ini) = [dir.join("seqinfo.ini"), dir.join("../seqinfo.ini")]
        .into_iter()
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&ini)?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k)?.trim().strip_prefix('='))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    for (key, want) in [
        ("imWidth", u64::from(video.width)),
        ("imHeight", u64::from(video.height)),
    ] {
        if let Some(v) = get(key) {
            if v != want {
                anyhow::bail!(
                    "{}: {key}={v} but the video's is {want}: this ground truth is for another video; fix: give the matching video (or re-annotate)",
                    ini.display()
                );
            }
        }
    }
    if let Some(n) = get("seqLength") {
        // Container durations are approximate by a frame or two.
        if n.abs_diff(video.frames) > 2 {
            anyhow::bail!(
                "{}: seqLength={n} but the video has about {} frames: this ground truth is for another cut; fix: give the matching video",
                ini.display(),
                video.frames
            );
        }
    }
    Ok(())
}

/// Andrew's monotone chain.
fn convex_hull(mut pts: Vec<Point>) -> Vec<Point> {
    pts.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross =
        |o: Point, a: Point, b: Point| (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
    let mut hull: Vec<Point> = Vec::with_capacity(2 * pts.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

fn distance_to_polygon(p: Point, poly: &[Point]) -> f32 {
    let seg = |a: Point, b: Point| {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (p.x - a.x - t * dx).hypot(p.y - a.y - t * dy)
    };
    (0..poly.len())
        .map(|i| seg(poly[i], poly[(i + 1) % poly.len()]))
        .fold(f32::INFINITY, f32::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, gt: &str, seqinfo: Option<&str>) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("gt.txt");
        std::fs::write(&p, gt).unwrap();
        if let Some(s) = seqinfo {
            std::fs::write(dir.join("seqinfo.ini"), s).unwrap();
        }
        p
    }

    const VIDEO: VideoFacts = VideoFacts {
        width: 640,
        height: 480,
        frames: 100,
    };

    #[test]
    fn a_good_file_is_read_with_ignored_boxes_flagged() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "1,1,100,100,20,60,1,-1,-1,-1\n1,2,300,100,20,60,0,-1\n2,1,104,100,20,60\n",
            Some("[Sequence]\nimWidth=640\nimHeight=480\nseqLength=100\nframeRate=7\n"),
        );
        let gt = GroundTruth::read(&p, VIDEO).unwrap();
        assert_eq!(gt.frame(1).len(), 2);
        assert!(gt.frame(1)[1].ignore && !gt.frame(1)[0].ignore);
        assert_eq!(gt.frame(3).len(), 0);
        assert!((gt.frame(2)[0].bbox.x1 - 104.0 / 640.0).abs() < 1e-6);
    }

    #[test]
    fn mismatched_or_malformed_ground_truth_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let cases: [(&str, Option<&str>, &str); 6] = [
            (
                "1,1,100,100,20,60\nx,1,1,1,1,1\n",
                None,
                "gt.txt:2: field 1 (frame)",
            ),
            ("1,1,100,100,20\n", None, "at least 6 needed"),
            ("1,1,100,100,0,60\n", None, "box of 0x60"),
            (
                "150,1,100,100,20,60\n",
                None,
                "beyond the video's 100 frames",
            ),
            ("1,1,1000,900,20,60\n", None, "outside the 640x480 video"),
            (
                "1,1,100,100,20,60\n",
                Some("imWidth=768\nimHeight=576\n"),
                "imWidth=768 but the video's is 640",
            ),
        ];
        for (i, (text, ini, want)) in cases.into_iter().enumerate() {
            let p = write(&d.path().join(i.to_string()), text, ini);
            let e = GroundTruth::read(&p, VIDEO).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("fix:"), "case {i}: {e}");
        }
        let p = write(
            &d.path().join("len"),
            "1,1,100,100,20,60\n",
            Some("seqLength=795\n"),
        );
        let e = GroundTruth::read(&p, VIDEO).unwrap_err().to_string();
        assert!(e.contains("seqLength=795"), "{e}");
        let p = write(&d.path().join("empty"), "\n", None);
        assert!(GroundTruth::read(&p, VIDEO)
            .unwrap_err()
            .to_string()
            .contains("no annotation"));
    }

    #[test]
    fn the_annotated_region_is_the_hull_of_the_annotated_feet() {
        let d = tempfile::tempdir().unwrap();
        // Feet at (0.2,0.5), (0.8,0.5), (0.5,0.9) (pixels: foot = x + w/2, y + h).
        let p = write(
            d.path(),
            "1,1,118,180,20,60\n1,2,502,180,20,60\n1,3,310,372,20,60\n",
            None,
        );
        let gt = GroundTruth::read(&p, VIDEO).unwrap();
        assert!(gt.annotated(Point { x: 0.5, y: 0.6 }));
        assert!(gt.annotated(Point { x: 0.5, y: 0.48 }), "within the margin");
        assert!(
            !gt.annotated(Point { x: 0.5, y: 0.2 }),
            "a far footpath nobody annotated"
        );
    }
}
