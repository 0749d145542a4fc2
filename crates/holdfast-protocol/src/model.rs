//! The Query-era botocore service model (botocore 1.34.89, `model/service-2.query-era.json`),
//! loaded once and pre-indexed for the wire codecs.
//!
//! It is the one model both protocols consult: its shapes give the Query key names
//! (`locationName`, `flattened`), the XML element names of responses, the required members
//! used to diagnose a request that does not decode, and the scalar types. The JSON-era model
//! differs only in ReceiveMessage's `MessageSystemAttributeNames`, which is patched in here
//! (see [`patch_receive_message`]), so no second model is carried.
//!
//! Invariant: the model is parsed exactly once per process ([`model`] is a `OnceLock`); the hot
//! path only follows pre-resolved indices and compares short strings.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use holdfast_api::Action;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

const MODEL_JSON: &str = include_str!("../model/service-2.query-era.json");

/// An index into [`Model::shapes`].
pub(crate) type ShapeId = usize;

#[derive(Debug)]
pub(crate) enum Shape {
    /// `string` (enums included).
    Str,
    /// `integer` and `long`: both travel as decimal text or JSON integers, held as `i64`.
    Int,
    Bool,
    /// base64 text on both wires.
    Blob,
    List(ListShape),
    Map(MapShape),
    Struct(StructShape),
}

#[derive(Debug)]
pub(crate) struct ListShape {
    pub member: ShapeId,
    /// The list member's `locationName`: the repeated element / Query key of a flattened list.
    pub member_name: Option<String>,
}

#[derive(Debug)]
pub(crate) struct MapShape {
    // No key shape: every SQS map is keyed by strings.
    pub value: ShapeId,
    /// `Name` / `Key` in SQS; `key` when the model gives none.
    pub key_name: String,
    /// `Value` in SQS; `value` when the model gives none.
    pub value_name: String,
}

#[derive(Debug)]
pub(crate) struct StructShape {
    pub members: Vec<Member>,
}

#[derive(Debug)]
pub(crate) struct Member {
    /// The model member name: the JSON key and the serde field name of the typed structs.
    pub name: String,
    pub shape: ShapeId,
    /// The Query key / XML element this member is written under: for a flattened list with a
    /// named member that name (`AttributeNames` -> `AttributeName`), else the member's or
    /// shape's `locationName` (`Attributes` -> `Attribute`, `Tags` -> `Tag`), else `name`.
    pub key_name: String,
    /// Member-level or shape-level `flattened` (SQS flattens every list and map).
    pub flattened: bool,
    pub required: bool,
}

#[derive(Debug)]
pub(crate) struct Operation {
    pub input: ShapeId,
    pub output: Option<ShapeId>,
    /// `<{Op}Result>`: the element wrapping the output members in an XML response.
    pub result_wrapper: String,
}

#[derive(Debug)]
pub(crate) struct Model {
    shapes: Vec<Shape>,
    operations: HashMap<Action, Operation>,
}

impl Model {
    pub fn shape(&self, id: ShapeId) -> &Shape {
        &self.shapes[id]
    }

    pub fn operation(&self, action: Action) -> &Operation {
        // Every action has an operation: checked by `load` at startup.
        &self.operations[&action]
    }
}

/// The process-wide model, parsed on first use.
pub(crate) fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| load(MODEL_JSON))
}

fn load(text: &str) -> Model {
    let mut raw: RawModel = serde_json::from_str(text).expect("embedded service model is valid");
    patch_receive_message(&mut raw);

    let mut builder = Builder { raw: &raw.shapes, ids: HashMap::new(), shapes: Vec::new() };
    let mut operations = HashMap::new();
    for &action in Action::ALL {
        let op = &raw.operations[action.name()];
        let input = builder.resolve(&op.input.as_ref().expect("operation has input").shape);
        let output = op.output.as_ref().map(|output| builder.resolve(&output.shape));
        let result_wrapper = op
            .output
            .as_ref()
            .and_then(|output| output.result_wrapper.clone())
            .unwrap_or_else(|| format!("{}Result", action.name()));
        assert_eq!(output.is_some(), action.has_output(), "model and api disagree on {action:?} output");
        operations.insert(action, Operation { input, output, result_wrapper });
    }
    Model { shapes: builder.shapes, operations }
}

/// botocore 1.34.101 (JSON era) added `ReceiveMessage.MessageSystemAttributeNames`; the
/// Query-era model predates it. kombu's hand-built Query requests send it as
/// `MessageSystemAttributeName.{n}`, so that is the key name given here.
fn patch_receive_message(raw: &mut RawModel) {
    let list: RawShape = serde_json::from_value(serde_json::json!({
        "type": "list",
        "member": {"shape": "MessageSystemAttributeName", "locationName": "MessageSystemAttributeName"},
        "flattened": true
    }))
    .expect("patch shape is valid");
    raw.shapes.insert("MessageSystemAttributeNameList".to_owned(), list);
    let receive = raw.shapes.get_mut("ReceiveMessageRequest").expect("ReceiveMessageRequest in model");
    let members = receive.members.as_mut().expect("ReceiveMessageRequest has members");
    let member = RawRef { shape: "MessageSystemAttributeNameList".to_owned(), ..RawRef::default() };
    // After `AttributeNames`, where the JSON-era model lists it.
    let at = members.0.iter().position(|(name, _)| name == "AttributeNames").map_or(members.0.len(), |i| i + 1);
    members.0.insert(at, ("MessageSystemAttributeNames".to_owned(), member));
}

// ---- the raw model file, only what the codecs use ----

#[derive(Deserialize)]
struct RawModel {
    operations: HashMap<String, RawOperation>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawOperation {
    input: Option<RawRef>,
    output: Option<RawRef>,
}

/// A shape reference with its member-level traits.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawRef {
    shape: String,
    location_name: Option<String>,
    flattened: Option<bool>,
    result_wrapper: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    member: Option<RawRef>,
    key: Option<RawRef>,
    value: Option<RawRef>,
    members: Option<Ordered<RawRef>>,
    #[serde(default)]
    required: Vec<String>,
    location_name: Option<String>,
    flattened: Option<bool>,
}

/// A JSON object read in document order: structure members keep the model's order, which is
/// the order diagnostics check them in (`QueueUrl` is reported before `Entries`).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Visit(PhantomData))
    }
}

struct Builder<'a> {
    raw: &'a HashMap<String, RawShape>,
    ids: HashMap<String, ShapeId>,
    shapes: Vec<Shape>,
}

impl Builder<'_> {
    /// Builds shape `name` (once) and returns its id. Member-level traits live on [`Member`],
    /// so one shape serves every reference. The SQS model has no recursive shapes.
    fn resolve(&mut self, name: &str) -> ShapeId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let raw = self.raw.get(name).unwrap_or_else(|| panic!("model shape {name} missing"));
        let shape = match raw.kind.as_str() {
            "string" => Shape::Str,
            "integer" | "long" => Shape::Int,
            "boolean" => Shape::Bool,
            "blob" => Shape::Blob,
            "list" => {
                let member_ref = raw.member.as_ref().expect("list has a member");
                let member = self.resolve(&member_ref.shape);
                Shape::List(ListShape { member, member_name: member_ref.location_name.clone() })
            }
            "map" => {
                let key_ref = raw.key.as_ref().expect("map has a key");
                let value_ref = raw.value.as_ref().expect("map has a value");
                Shape::Map(MapShape {
                    value: self.resolve(&value_ref.shape),
                    key_name: key_ref.location_name.clone().unwrap_or_else(|| "key".to_owned()),
                    value_name: value_ref.location_name.clone().unwrap_or_else(|| "value".to_owned()),
                })
            }
            "structure" => {
                let mut members = Vec::new();
                for (member_name, member_ref) in raw.members.iter().flat_map(|m| &m.0) {
                    let shape = self.resolve(&member_ref.shape);
                    let target = &self.raw[&member_ref.shape];
                    let location_name = member_ref.location_name.as_ref().or(target.location_name.as_ref());
                    let flattened = member_ref.flattened.or(target.flattened).unwrap_or(false);
                    let list_member_name = match &self.shapes[shape] {
                        Shape::List(list) if flattened => list.member_name.clone(),
                        _ => None,
                    };
                    let key_name =
                        list_member_name.or_else(|| location_name.cloned()).unwrap_or_else(|| member_name.clone());
                    members.push(Member {
                        name: member_name.clone(),
                        shape,
                        key_name,
                        flattened,
                        required: raw.required.contains(member_name),
                    });
                }
                Shape::Struct(StructShape { members })
            }
            other => panic!("model shape {name} has unsupported type {other}"),
        };
        let id = self.shapes.len();
        self.shapes.push(shape);
        self.ids.insert(name.to_owned(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input_member(action: Action, name: &str) -> &'static Member {
        let m = model();
        let Shape::Struct(s) = m.shape(m.operation(action).input) else { panic!("input is a structure") };
        s.members.iter().find(|member| member.name == name).expect("member exists")
    }

    #[test]
    fn member_key_names_follow_botocore_query_rules() {
        assert_eq!(input_member(Action::GetQueueAttributes, "AttributeNames").key_name, "AttributeName");
        assert_eq!(input_member(Action::CreateQueue, "Attributes").key_name, "Attribute");
        assert_eq!(input_member(Action::CreateQueue, "tags").key_name, "Tag");
        // TagQueue.Tags has no member locationName: the map shape's own one applies.
        assert_eq!(input_member(Action::TagQueue, "Tags").key_name, "Tag");
        assert_eq!(input_member(Action::UntagQueue, "TagKeys").key_name, "TagKey");
        assert_eq!(input_member(Action::AddPermission, "Actions").key_name, "ActionName");
        assert_eq!(input_member(Action::SendMessageBatch, "Entries").key_name, "SendMessageBatchRequestEntry");
        assert_eq!(
            input_member(Action::ReceiveMessage, "MessageSystemAttributeNames").key_name,
            "MessageSystemAttributeName"
        );
        assert!(input_member(Action::SendMessageBatch, "Entries").required);
        assert!(!input_member(Action::ReceiveMessage, "AttributeNames").required);
        assert!(input_member(Action::ReceiveMessage, "AttributeNames").flattened);
    }

    #[test]
    fn members_keep_model_order() {
        let m = model();
        let Shape::Struct(s) = m.shape(m.operation(Action::SendMessage).input) else { panic!("structure") };
        let names: Vec<&str> = s.members.iter().map(|member| member.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "QueueUrl",
                "MessageBody",
                "DelaySeconds",
                "MessageAttributes",
                "MessageSystemAttributes",
                "MessageDeduplicationId",
                "MessageGroupId"
            ]
        );
        let Shape::Struct(s) = m.shape(m.operation(Action::ReceiveMessage).input) else { panic!("structure") };
        assert_eq!(s.members[1].name, "AttributeNames");
        assert_eq!(s.members[2].name, "MessageSystemAttributeNames");
    }

    #[test]
    fn every_action_has_an_operation_with_the_right_result_wrapper() {
        for &action in Action::ALL {
            let op = model().operation(action);
            assert_eq!(op.result_wrapper, format!("{}Result", action.name()));
            assert!(matches!(model().shape(op.input), Shape::Struct(_)));
        }
    }
}
