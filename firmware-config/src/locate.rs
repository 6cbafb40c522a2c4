//! Finds the line of a dotted field path (`cameras[0].zones[1].polygon`) in the TOML text, using
//! toml_edit's spans. A missing field is located at its nearest existing parent.

use crate::error::Problem;
use toml_edit::{ImDocument, Item, Table, Value};

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn normalize(self) -> Node<'a> {
        match self {
            Node::Item(Item::Table(t)) => Node::Table(t),
            Node::Item(Item::Value(v)) => Node::Value(v),
            other => other,
        }
    }

    fn start(self) -> Option<usize> {
        match self {
            Node::Table(t) => t.span().map(|s| s.start),
            Node::Item(i) => i.span().map(|s| s.start),
            Node::Value(v) => v.span().map(|s| s.start),
        }
    }

    fn step(self, seg: &Seg<'_>) -> (Option<Node<'a>>, Option<usize>) {
        match (self.normalize(), seg) {
            (Node::Table(t), Seg::Key(k)) => (
                t.get(k).map(Node::Item),
                t.key(k).and_then(|key| key.span()).map(|s| s.start),
            ),
            (Node::Value(Value::InlineTable(t)), Seg::Key(k)) => (
                t.get(k).map(Node::Value),
                t.key(k).and_then(|key| key.span()).map(|s| s.start),
            ),
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => {
                let t = a.get(*i);
                (
                    t.map(Node::Table),
                    t.and_then(|t| t.span()).map(|s| s.start),
                )
            }
            (Node::Value(Value::Array(a)), Seg::Index(i)) => {
                let v = a.get(*i);
                (
                    v.map(Node::Value),
                    v.and_then(|v| v.span()).map(|s| s.start),
                )
            }
            _ => (None, None),
        }
    }
}

/// Byte offset of the deepest part of `path` present in the document.
fn offset_of(doc: &ImDocument<String>, path: &str) -> Option<usize> {
    let mut node = Node::Item(doc.as_item());
    let mut best = None;
    for seg in segments(path) {
        let (next, key_start) = node.step(&seg);
        let Some(next) = next else { break };
        best = key_start.or_else(|| next.start()).or(best);
        node = next;
    }
    best
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Fill in `line` for every problem that does not have one yet.
pub(crate) fn add_lines(text: &str, problems: &mut [Problem]) {
    let Ok(doc) = ImDocument::parse(text.to_string()) else {
        return;
    };
    for p in problems.iter_mut().filter(|p| p.line.is_none()) {
        p.line = offset_of(&doc, &p.field).map(|o| line_at(text, o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[device]\nid = \"a\"\n\n[[cameras]]\nid = \"c1\"\nfps = 5\n\n[[cameras.zones]]\nid = \"z\"\npolygon = [[0,0],\n  [1,0],\n  [1,1]]\n\n[[cameras]]\nid = \"c2\"\n";

    fn line(path: &str) -> Option<usize> {
        let doc = ImDocument::parse(TEXT.to_string()).unwrap();
        offset_of(&doc, path).map(|o| line_at(TEXT, o))
    }

    #[test]
    fn finds_nested_fields() {
        assert_eq!(line("device.id"), Some(2));
        assert_eq!(line("cameras[0].fps"), Some(6));
        assert_eq!(line("cameras[0].zones[0].polygon"), Some(10));
        assert_eq!(line("cameras[0].zones[0].polygon[2]"), Some(12));
        assert_eq!(line("cameras[1].id"), Some(15));
    }

    #[test]
    fn missing_field_falls_back_to_parent() {
        // `fps` is absent from the second camera: point at its [[cameras]] header.
        assert_eq!(line("cameras[1].fps"), Some(14));
        assert_eq!(line("nothing.here"), None);
    }
}
