//! Query-protocol requests: form/query-string parameters to the typed request (the Query protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html>).
//!
//! The flat `Key.1.Sub=value` pairs are first folded into a tree on `.`, then read against the
//! operation's input shape from the Query-era model into a `serde_json::Value` whose keys are
//! model member names, which the api crate's serde derives decode. Reading the tree is driven
//! by the model, so every key rule lives here once:
//! * a struct member is found under its Query key (`Member::key_name`, e.g. `AttributeName`,
//!   `Attribute`, `SendMessageBatchRequestEntry`) or under its bare member name
//!   (`AttributeNames`, kombu's `MessageAttributeNames.{n}`);
//! * list elements and map entries sit under 1-based indices that may be sparse or unordered
//!   (sorted numerically); the non-flattened `.member.{n}` / `.entry.{n}.key|value` forms and
//!   kombu's unindexed `Attribute.Name`/`Attribute.Value` are accepted too;
//! * a bare empty list key (`Entries=`, botocore's empty list) reads as `[]`;
//! * integers are decimal text, booleans `true`/`false`, blobs stay base64 text.
//!
//! Errors name the parameter as the client spelled it (`SendMessageBatchRequestEntry.2.Id`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use holdfast_api::{sqs_error, SqsError};
use serde_json::{Map, Value};

use crate::model::{model, Model, Shape, ShapeId, StructShape};

/// Parameters every Query request may carry that are not members of any input shape: the
/// protocol version, SigV2 authentication, and SigV4 presigning (`X-Amz-*`, matched by prefix).
const IGNORED_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "AWSAccessKeyId",
    "SignatureVersion",
    "SignatureMethod",
    "Signature",
    "Timestamp",
    "Expires",
];

/// Whether `name` is protocol plumbing rather than an operation parameter.
pub(crate) fn is_ignored_param(name: &str) -> bool {
    IGNORED_PARAMS.contains(&name) || name.starts_with("X-Amz-")
}

/// One level of the parameter tree: `Attribute.1.Name=x` becomes
/// `Attribute -> 1 -> Name = "x"`. Children are looked up by name in a map, so building the tree
/// is O(n log n) however many distinct parameters there are, and its depth is bounded by
/// `form::MAX_NAME_SEGMENTS` (dropping it recurses once per level).
#[derive(Default, Debug)]
pub(crate) struct Node<'a> {
    value: Option<&'a str>,
    children: BTreeMap<&'a str, Node<'a>>,
}

impl<'a> Node<'a> {
    /// Folds `(key, value)` pairs into a tree; a later duplicate key replaces an earlier one.
    pub fn build(params: &'a [(Cow<'a, str>, Cow<'a, str>)]) -> Node<'a> {
        let mut root = Node::default();
        for (key, value) in params {
            if is_ignored_param(key) {
                continue;
            }
            let mut node = &mut root;
            for segment in key.split('.') {
                node = node.child_mut(segment);
            }
            node.value = Some(value);
        }
        root
    }

    fn child_mut(&mut self, segment: &'a str) -> &mut Node<'a> {
        self.children.entry(segment).or_default()
    }

    fn child(&self, segment: &str) -> Option<&Node<'a>> {
        self.children.get(segment)
    }

    pub fn has_child(&self, segment: &str) -> bool {
        self.child(segment).is_some()
    }

    /// Children whose segment is a decimal index, in numeric order.
    fn indexed(&self) -> Vec<(u64, &Node<'a>)> {
        let mut items: Vec<(u64, &Node<'a>)> =
            self.children.iter().filter_map(|(segment, node)| Some((parse_index(segment)?, node))).collect();
        items.sort_by_key(|(index, _)| *index);
        items
    }
}

fn parse_index(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// Reads the input structure `input` from the parameter tree. `default_queue_url` is used when
/// no `QueueUrl` parameter is present (the queue taken from the request path: docs/compatibility.md, "Queue URLs and regions").
pub(crate) fn read_input(root: &Node<'_>, input: ShapeId, default_queue_url: Option<&str>) -> Result<Value, SqsError> {
    let reader = Reader { model: model() };
    let Shape::Struct(shape) = reader.model.shape(input) else { unreachable!("inputs are structures") };
    let mut object = reader.read_members(root, shape, "")?;
    if let Some(url) = default_queue_url {
        if shape.members.iter().any(|m| m.name == "QueueUrl") && !object.contains_key("QueueUrl") {
            object.insert("QueueUrl".to_owned(), Value::String(url.to_owned()));
        }
    }
    check_required(shape, &object, "")?;
    Ok(Value::Object(object))
}

fn check_required(shape: &StructShape, object: &Map<String, Value>, prefix: &str) -> Result<(), SqsError> {
    for member in shape.members.iter().filter(|m| m.required) {
        if !object.contains_key(&member.name) {
            // A list/map is named by its member name (`Entries`), a scalar by its key.
            let name = match shape_kind_is_collection(member.shape) {
                true => &member.name,
                false => &member.key_name,
            };
            return Err(missing(&format!("{prefix}{name}")));
        }
    }
    Ok(())
}

fn shape_kind_is_collection(shape: ShapeId) -> bool {
    matches!(model().shape(shape), Shape::List(_) | Shape::Map(_))
}

pub(crate) fn missing(name: &str) -> SqsError {
    sqs_error!(MissingParameter, "The request must contain the parameter {name}.")
}

pub(crate) fn invalid(value: &str, name: &str, reason: &str) -> SqsError {
    sqs_error!(InvalidParameterValue, "Value {value} for parameter {name} is invalid. Reason: {reason}")
}

struct Reader {
    model: &'static Model,
}

impl Reader {
    /// Reads every member of `shape` present under `node`. `prefix` is the parameter path so
    /// far (`SendMessageBatchRequestEntry.1.`), for error messages.
    fn read_members(&self, node: &Node<'_>, shape: &StructShape, prefix: &str) -> Result<Map<String, Value>, SqsError> {
        let mut object = Map::new();
        for member in &shape.members {
            // The Query key first, then the bare member name (`AttributeNames.1`,
            // `MessageAttributeNames.1`, `Entries=`), which lenient clients use.
            let found = [member.key_name.as_str(), member.name.as_str()]
                .into_iter()
                .find_map(|key| node.child(key).map(|child| (key, child)));
            let Some((key, child)) = found else { continue };
            let path = format!("{prefix}{key}");
            if let Some(value) = self.read_value(child, member.shape, &path)? {
                object.insert(member.name.clone(), value);
            }
        }
        Ok(object)
    }

    /// Reads the value of shape `shape` at `node`; `None` when the node carries nothing
    /// usable for that shape (e.g. `QueueUrl.1=x`), which counts as absent.
    fn read_value(&self, node: &Node<'_>, shape: ShapeId, path: &str) -> Result<Option<Value>, SqsError> {
        Ok(Some(match self.model.shape(shape) {
            Shape::Str => match node.value {
                Some(text) => Value::String(text.to_owned()),
                None => return Ok(None),
            },
            Shape::Blob => match node.value {
                Some(text) if crate::json::is_base64(text) => Value::String(text.to_owned()),
                Some(text) => return Err(invalid(text, path, "must be base64-encoded binary data.")),
                None => return Ok(None),
            },
            Shape::Int => match node.value {
                Some(text) => match text.trim().parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return Err(invalid(text, path, "must be an integer.")),
                },
                None => return Ok(None),
            },
            Shape::Bool => match node.value {
                Some(text) if text.eq_ignore_ascii_case("true") => Value::Bool(true),
                Some(text) if text.eq_ignore_ascii_case("false") => Value::Bool(false),
                Some(text) => return Err(invalid(text, path, "must be true or false.")),
                None => return Ok(None),
            },
            Shape::List(list) => {
                // `.member.{n}` is the non-flattened form; SQS lists are flattened.
                let entries = node.child("member").unwrap_or(node);
                let mut items = Vec::new();
                for (index, element) in entries.indexed() {
                    let element_path = format!("{path}.{index}");
                    if let Some(value) = self.read_value(element, list.member, &element_path)? {
                        items.push(value);
                    }
                }
                if items.is_empty() && node.value.is_none() {
                    return Ok(None);
                }
                Value::Array(items)
            }
            Shape::Map(map) => {
                let entries = node.child("entry").unwrap_or(node);
                let mut indexed = entries.indexed();
                // kombu's unindexed `Attribute.Name=…&Attribute.Value=…`.
                if entries.has_child(&map.key_name) {
                    indexed.insert(0, (0, entries));
                }
                if indexed.is_empty() {
                    return Ok(None);
                }
                let mut object = Map::new();
                for (index, entry) in indexed {
                    let entry_path = if index == 0 { path.to_owned() } else { format!("{path}.{index}") };
                    let key = entry
                        .child(&map.key_name)
                        .or_else(|| entry.child("key"))
                        .and_then(|key| key.value)
                        .ok_or_else(|| missing(&format!("{entry_path}.{}", map.key_name)))?;
                    let value_path = format!("{entry_path}.{}", map.value_name);
                    let value = match entry.child(&map.value_name).or_else(|| entry.child("value")) {
                        Some(value_node) => self.read_value(value_node, map.value, &value_path)?,
                        None => None,
                    };
                    let value = value.ok_or_else(|| missing(&value_path))?;
                    object.insert(key.to_owned(), value);
                }
                Value::Object(object)
            }
            Shape::Struct(structure) => {
                if node.children.is_empty() {
                    return Ok(None);
                }
                let prefix = format!("{path}.");
                let object = self.read_members(node, structure, &prefix)?;
                check_required(structure, &object, &prefix)?;
                Value::Object(object)
            }
        }))
    }
}
