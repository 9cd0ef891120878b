//! A small YAML tree that remembers the line of every node, so a validation error can point at
//! the line the pipeline wrote. Parsed by yaml-rust2; anchors, aliases and tags are refused
//! (a task file has no use for them).

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar {
        value: String,
        /// Quoted scalars are always strings (`"true"` is not a bool).
        quoted: bool,
        line: usize,
    },
    Seq {
        items: Vec<Node>,
        line: usize,
    },
    Map {
        entries: Vec<(String, usize, Node)>,
        line: usize,
    },
}

impl Node {
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Parses one YAML document. An empty document is `None`.
pub fn parse(text: &str, first_line: usize) -> Result<Option<Node>, YamlError> {
    let mut builder = Builder {
        stack: Vec::new(),
        done: None,
        error: None,
        offset: first_line.saturating_sub(1),
        documents: 0,
    };
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| YamlError {
            line: e.marker().line() + builder.offset,
            message: e.info().to_owned(),
        })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.done)
}

enum Open {
    Seq(Vec<Node>, usize),
    Map(Vec<(String, usize, Node)>, Option<(String, usize)>, usize),
}

struct Builder {
    stack: Vec<Open>,
    done: Option<Node>,
    error: Option<YamlError>,
    offset: usize,
    documents: usize,
}

impl Builder {
    fn fail(&mut self, line: usize, message: &str) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                line,
                message: message.to_owned(),
            });
        }
    }

    fn push(&mut self, node: Node) {
        let line = node.line();
        match self.stack.last_mut() {
            None => self.done = Some(node),
            Some(Open::Seq(items, _)) => items.push(node),
            Some(Open::Map(entries, pending, _)) => match pending.take() {
                Some((key, key_line)) => entries.push((key, key_line, node)),
                None => match node {
                    Node::Scalar { value, line, .. } => *pending = Some((value, line)),
                    _ => self.fail(line, "a key must be a plain name"),
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line() + self.offset;
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(line, "only one YAML document is expected");
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "anchors and tags are not supported");
                }
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push(Node::Scalar {
                    value,
                    quoted,
                    line,
                });
            }
            Event::SequenceStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "anchors and tags are not supported");
                }
                self.stack.push(Open::Seq(Vec::new(), line));
            }
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "anchors and tags are not supported");
                }
                self.stack.push(Open::Map(Vec::new(), None, line));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq(items, line)) => self.push(Node::Seq { items, line }),
                Some(Open::Map(entries, _, line)) => self.push(Node::Map { entries, line }),
                None => self.fail(line, "unbalanced YAML"),
            },
            Event::Alias(_) => self.fail(line, "aliases are not supported"),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_those_of_the_file() {
        let node = parse("a: 1\nlist:\n  - x\n  - \"y\"\n", 1)
            .expect("parses")
            .expect("a document");
        let Node::Map { entries, .. } = node else {
            panic!("a map")
        };
        assert_eq!(entries[0].0, "a");
        assert_eq!(entries[0].1, 1);
        assert_eq!(entries[1].1, 2);
        let Node::Seq { items, .. } = &entries[1].2 else {
            panic!("a list")
        };
        assert_eq!(items[1].line(), 4);
        assert!(matches!(&items[1], Node::Scalar { quoted: true, .. }));
    }

    #[test]
    fn an_offset_moves_the_lines_and_broken_yaml_says_where() {
        let node = parse("a: 1\n", 5).expect("parses").expect("doc");
        assert_eq!(node.line(), 5);
        let err = parse("a: [1, 2\nb: 3\n", 3).expect_err("broken");
        assert!(err.line >= 3, "{err}");
        assert!(parse("a: &x 1\nb: *x\n", 1).is_err());
        assert_eq!(parse("", 1).expect("empty"), None);
    }
}
