//! The setup page's save: one camera's lines, zones and displays written into `agent.toml`
//! with toml_edit, so comments, key order, formatting and every other key stay as they were.
//! An entry the page kept (same id) keeps its table — its comments and its other keys (a
//! display's gaze settings) — and only its coordinates change; a new entry is appended; an
//! entry the page removed is dropped. Pure: text in, text out (validation is the caller's).

use serde::Deserialize;
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

/// What the page sends: one camera's geometry, in the order it shows it. A kind left out
/// (`zones` missing) stays as it is in the file; an empty list removes them all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geometry {
    pub camera: String,
    #[serde(default)]
    pub lines: Option<Vec<LineIn>>,
    #[serde(default)]
    pub zones: Option<Vec<AreaIn>>,
    #[serde(default)]
    pub displays: Option<Vec<AreaIn>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub id: String,
    pub from: [f64; 2],
    pub to: [f64; 2],
    #[serde(rename = "in")]
    pub in_side: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaIn {
    pub id: String,
    pub polygon: Vec<[f64; 2]>,
}

/// Why the geometry could not be written (the file itself is not what the page expects).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("the configuration file is not valid TOML: {0}")]
    Toml(String),
    #[error("the configuration has no [[cameras]] with id = {0:?}")]
    NoCamera(String),
}

/// `text` with camera `g.camera`'s geometry replaced by `g`; also the camera's index in
/// `[[cameras]]` (validation errors name it).
pub fn apply(text: &str, g: &Geometry) -> Result<(String, usize), EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Toml(e.message().to_string()))?;
    let cameras = doc
        .get_mut("cameras")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| EditError::NoCamera(g.camera.clone()))?;
    let (index, cam) = cameras
        .iter_mut()
        .enumerate()
        .find(|(_, t)| t.get("id").and_then(Item::as_str) == Some(g.camera.as_str()))
        .ok_or_else(|| EditError::NoCamera(g.camera.clone()))?;
    if let Some(lines) = &g.lines {
        let lines = lines.iter().map(|l| {
            (
                l.id.as_str(),
                vec![
                    ("from", point(l.from)),
                    ("to", point(l.to)),
                    ("in", Value::from(l.in_side.as_str())),
                ],
            )
        });
        replace(cam, "lines", lines.collect());
    }
    for (key, areas) in [("zones", &g.zones), ("displays", &g.displays)] {
        let Some(areas) = areas else { continue };
        let areas = areas
            .iter()
            .map(|a| (a.id.as_str(), vec![("polygon", polygon(&a.polygon))]))
            .collect();
        replace(cam, key, areas);
    }
    Ok((doc.to_string(), index))
}

/// The camera's `key` array of tables becomes `entries` (id, then the values to set).
fn replace(cam: &mut Table, key: &str, entries: Vec<(&str, Vec<(&str, Value)>)>) {
    let old: Vec<Table> = cam
        .get(key)
        .and_then(Item::as_array_of_tables)
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default();
    if entries.is_empty() {
        cam.remove(key);
        return;
    }
    let mut new = ArrayOfTables::new();
    for (id, values) in entries {
        let mut t = old
            .iter()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
            .cloned()
            .unwrap_or_else(|| {
                let mut t = Table::new();
                t.insert("id", Item::Value(Value::from(id)));
                t
            });
        for (k, mut v) in values {
            if let Some(old) = t.get(k).and_then(Item::as_value) {
                // The same value as the page shows it (coordinates to a thousandth): the file
                // keeps its own writing of it, so a save of unchanged geometry changes nothing.
                if same_value(old, &v) {
                    continue;
                }
                // Keep the comment written after the old value.
                *v.decor_mut() = old.decor().clone();
            }
            t.insert(k, Item::Value(v));
        }
        new.push(t);
    }
    cam.insert(key, Item::ArrayOfTables(new));
}

/// Whether `old` (as written in the file) and `new` (as the page sends it, coordinates rounded
/// to a thousandth) are the same value.
fn same_value(old: &Value, new: &Value) -> bool {
    let number = |v: &Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    match (old, new) {
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same_value(x, y))
        }
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        _ => match (number(old), number(new)) {
            (Some(a), Some(b)) => (a - b).abs() <= 0.000_5 + 1e-9,
            _ => false,
        },
    }
}

/// A coordinate rounded to 3 decimals (a thousandth of the image: below a pixel's worth).
fn coord(v: f64) -> Value {
    Value::from((v * 1000.0).round() / 1000.0)
}

fn point(p: [f64; 2]) -> Value {
    let mut a = Array::new();
    a.push(coord(p[0]));
    a.push(coord(p[1]));
    Value::Array(a)
}

fn polygon(points: &[[f64; 2]]) -> Value {
    let mut a = Array::new();
    for p in points {
        a.push(point(*p));
    }
    Value::Array(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# The box at the entrance.
[device]
id = "box1"   # keep me
store_id = "s1"

[[cameras]]
id = "door"
file = "clip.mp4"
fps = 5

# The entrance line.
[[cameras.lines]]
id = "entry"
from = [0.1, 0.5]   # left edge
to = [0.9, 0.5]
in = "right"

[[cameras.lines]]
id = "old"
from = [0.1, 0.1]
to = [0.2, 0.1]
in = "left"

[[cameras.displays]]
id = "window"
polygon = [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]]
gaze_yaw = 10.0     # towards the shelf

[[cameras]]
id = "aisle"
file = "aisle.mp4"
"#;

    fn geometry() -> Geometry {
        Geometry {
            camera: "door".into(),
            lines: Some(vec![
                LineIn {
                    id: "entry".into(),
                    from: [0.2, 0.61234],
                    to: [0.8, 0.6],
                    in_side: "left".into(),
                },
                LineIn {
                    id: "new".into(),
                    from: [0.5, 0.1],
                    to: [0.5, 0.9],
                    in_side: "right".into(),
                },
            ]),
            zones: Some(vec![AreaIn {
                id: "promo".into(),
                polygon: vec![[0.5, 0.5], [0.9, 0.5], [0.9, 0.9]],
            }]),
            displays: Some(vec![AreaIn {
                id: "window".into(),
                polygon: vec![[0.2, 0.2], [0.4, 0.2], [0.4, 0.4]],
            }]),
        }
    }

    #[test]
    fn geometry_changes_and_everything_else_stays() {
        let (out, index) = apply(FILE, &geometry()).unwrap();
        assert_eq!(index, 0);
        for kept in [
            "# The box at the entrance.",
            "id = \"box1\"   # keep me",
            "# The entrance line.",
            "# left edge",
            "gaze_yaw = 10.0     # towards the shelf",
            "id = \"aisle\"",
        ] {
            assert!(out.contains(kept), "lost {kept:?} in:\n{out}");
        }
        assert!(out.contains("from = [0.2, 0.612]"), "{out}");
        assert!(!out.contains("\"old\""), "removed line stays:\n{out}");
        let v: toml::Value = toml::from_str(&out).unwrap();
        let door = &v["cameras"][0];
        assert_eq!(door["lines"].as_array().unwrap().len(), 2);
        assert_eq!(door["lines"][0]["in"].as_str(), Some("left"));
        assert_eq!(door["lines"][1]["id"].as_str(), Some("new"));
        assert_eq!(door["zones"][0]["id"].as_str(), Some("promo"));
        assert_eq!(door["displays"][0]["polygon"][0][0].as_float(), Some(0.2));
        assert_eq!(door["displays"][0]["gaze_yaw"].as_float(), Some(10.0));
        assert!(v["cameras"][1].get("lines").is_none());
    }

    /// The page's view of `FILE`'s door camera, unchanged.
    fn as_shown() -> Geometry {
        Geometry {
            camera: "door".into(),
            lines: Some(vec![
                LineIn {
                    id: "entry".into(),
                    from: [0.1, 0.5],
                    to: [0.9, 0.5],
                    in_side: "right".into(),
                },
                LineIn {
                    id: "old".into(),
                    from: [0.1, 0.1],
                    to: [0.2, 0.1],
                    in_side: "left".into(),
                },
            ]),
            zones: Some(vec![]),
            displays: Some(vec![AreaIn {
                id: "window".into(),
                polygon: vec![[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]],
            }]),
        }
    }

    #[test]
    fn unchanged_geometry_leaves_the_file_byte_for_byte() {
        let (out, _) = apply(FILE, &as_shown()).unwrap();
        assert_eq!(out, FILE);
    }

    #[test]
    fn unchanged_geometry_written_otherwise_in_the_file_leaves_it_byte_for_byte() {
        // Trailing zeros, an integer and more decimals than the page shows (it rounds to a
        // thousandth): the same geometry, so the same file.
        let file = FILE
            .replace(
                "from = [0.1, 0.5]   # left edge",
                "from = [0.1000, 0.50012]   # left edge",
            )
            .replace("[0.3, 0.1], [0.3, 0.3]]", "[0.3, 0.1], [0.29990, 0.3]]")
            .replace("to = [0.2, 0.1]", "to = [0.2, 1e-1]");
        let (out, _) = apply(&file, &as_shown()).unwrap();
        assert_eq!(out, file);
    }

    #[test]
    fn a_save_without_zones_or_displays_keeps_them() {
        let file = FILE.replace(
            "[[cameras.displays]]",
            "[[cameras.zones]]\nid = \"promo\"\npolygon = [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9]]\n\n[[cameras.displays]]",
        );
        let g = Geometry {
            zones: None,
            displays: None,
            ..as_shown()
        };
        let (out, _) = apply(&file, &g).unwrap();
        assert_eq!(out, file);
        let g = Geometry {
            zones: Some(vec![]),
            ..as_shown()
        };
        let (out, _) = apply(&file, &g).unwrap();
        assert!(!out.contains("promo") && out.contains("window"), "{out}");
    }

    #[test]
    fn an_unknown_camera_or_broken_file_is_an_error() {
        let mut g = geometry();
        g.camera = "roof".into();
        assert_eq!(apply(FILE, &g), Err(EditError::NoCamera("roof".into())));
        assert!(matches!(
            apply("[[cameras]\n", &geometry()),
            Err(EditError::Toml(_))
        ));
    }
}
