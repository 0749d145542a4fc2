//! Query-protocol responses: the XML success and error documents of the Query protocol <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-making-api-requests-xml.html>.
//!
//! A success document is written straight from the typed `Response` by a serde `Serializer`
//! that walks the operation's output shape in the Query-era model alongside the value: struct
//! fields are looked up as model members, whose `key_name` is the element name; flattened lists
//! repeat the member element (`<QueueUrl>`, `<Message>`, `<BatchResultErrorEntry>`); flattened
//! maps repeat `<Attribute><Name/><Value/></Attribute>`-style entries. No intermediate tree is
//! built. Elements come in struct-field order, which the api crate keeps equal to model order.
//!
//! Invariant: every text node goes through [`escape_into`], which escapes CR as `&#xD;`.
//! XML parsers normalise a literal CR to LF (XML 1.0 §2.11), which would change message bodies
//! and break clients' MD5 checks (the Query protocol).

use std::fmt::{self, Display, Write as _};

use holdfast_api::{ErrorCode, Response, SqsError};
use serde::ser::{self, Impossible, Serialize};

use crate::model::{model, Model, Shape, ShapeId};

pub(crate) const XMLNS: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
const DECLARATION: &str = "<?xml version=\"1.0\"?>\n";

/// The XML document answering `response`.
pub(crate) fn response_document(response: &Response, request_id: &str) -> String {
    let action = response.action();
    let op_name = action.name();
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{DECLARATION}<{op_name}Response xmlns=\"{XMLNS}\">");
    let op = model().operation(action);
    if let Some(output) = op.output {
        let start = out.len();
        let writer =
            ElementWriter { model: model(), out: &mut out, name: &op.result_wrapper, shape: output, flattened: false };
        if let Err(err) = response.serialize(writer) {
            // Only reachable if the api types and the model disagree, which the tests rule out;
            // an empty result is better than a half-written element.
            debug_assert!(false, "XML serialization of {op_name} failed: {err}");
            out.truncate(start);
            let _ = write!(out, "<{}/>", op.result_wrapper);
        }
    }
    out.push_str("<ResponseMetadata><RequestId>");
    escape_into(&mut out, request_id);
    let _ = write!(out, "</RequestId></ResponseMetadata></{op_name}Response>");
    out
}

/// The `<ErrorResponse>` document of the Query protocol.
pub(crate) fn error_document(error: &SqsError, request_id: &str) -> String {
    if error.code == ErrorCode::UnknownOperation {
        // AWS's whole answer to a GET that names no action.
        return format!("{DECLARATION}<UnknownOperationException/>");
    }
    let mut out = String::with_capacity(256 + error.message.len());
    let _ = write!(
        out,
        "{DECLARATION}<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{}</Type><Code>",
        error.code.fault().as_str()
    );
    escape_into(&mut out, error.code.query_code());
    out.push_str("</Code><Message>");
    escape_into(&mut out, query_message(error));
    out.push_str("</Message><Detail/></Error><RequestId>");
    escape_into(&mut out, request_id);
    out.push_str("</RequestId></ErrorResponse>");
    out
}

/// The message of `error` as the Query protocol words it. AWS answers a missing queue differently
/// in the two protocols (recorded against AWS: "…does not exist." in JSON, "…does not exist for
/// this wsdl version." in Query).
fn query_message(error: &SqsError) -> &str {
    match error.code {
        ErrorCode::QueueDoesNotExist => "The specified queue does not exist for this wsdl version.",
        _ => &error.message,
    }
}

/// Appends `text` with `& < > "` escaped and CR written as `&#xD;`.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let replacement = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\r' => "&#xD;",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

#[derive(Debug)]
pub(crate) struct XmlError(String);

impl Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

impl ser::Error for XmlError {
    fn custom<T: Display>(msg: T) -> Self {
        XmlError(msg.to_string())
    }
}

fn unsupported(what: &str) -> XmlError {
    XmlError(format!("{what} has no XML form in the SQS model"))
}

/// Writes one model member's value as the element(s) named `name`.
struct ElementWriter<'a> {
    model: &'static Model,
    out: &'a mut String,
    name: &'a str,
    shape: ShapeId,
    /// Whether a list/map is written as repeated elements (true for every SQS list and map).
    flattened: bool,
}

impl<'a> ElementWriter<'a> {
    fn scalar(self, text: impl Display) -> Result<(), XmlError> {
        let _ = write!(self.out, "<{}>", self.name);
        // Numbers and booleans need no escaping; strings come through `serialize_str`.
        let _ = write!(self.out, "{text}");
        let _ = write!(self.out, "</{}>", self.name);
        Ok(())
    }
}

impl<'a> ser::Serializer for ElementWriter<'a> {
    type Ok = ();
    type Error = XmlError;
    type SerializeSeq = ListWriter<'a>;
    type SerializeTuple = Impossible<(), XmlError>;
    type SerializeTupleStruct = Impossible<(), XmlError>;
    type SerializeTupleVariant = Impossible<(), XmlError>;
    type SerializeMap = MapWriter<'a>;
    type SerializeStruct = StructWriter<'a>;
    type SerializeStructVariant = Impossible<(), XmlError>;

    fn serialize_bool(self, v: bool) -> Result<(), XmlError> {
        self.scalar(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), XmlError> {
        self.scalar(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), XmlError> {
        Err(unsupported("a float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), XmlError> {
        Err(unsupported("a float"))
    }
    fn serialize_char(self, v: char) -> Result<(), XmlError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), XmlError> {
        let _ = write!(self.out, "<{}>", self.name);
        escape_into(self.out, v);
        let _ = write!(self.out, "</{}>", self.name);
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), XmlError> {
        Err(unsupported("raw bytes"))
    }
    fn serialize_none(self) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), XmlError> {
        Ok(())
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), XmlError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), XmlError> {
        Err(unsupported("an enum"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<ListWriter<'a>, XmlError> {
        let Shape::List(list) = self.model.shape(self.shape) else {
            return Err(XmlError(format!("{} is a list but not in the model", self.name)));
        };
        let element_name = if self.flattened {
            // A flattened list's elements already carry the member name (`Member::key_name`).
            self.name
        } else {
            let _ = write!(self.out, "<{}>", self.name);
            list.member_name.as_deref().unwrap_or("member")
        };
        Ok(ListWriter {
            model: self.model,
            out: self.out,
            wrapper: (!self.flattened).then_some(self.name),
            element_name,
            member: list.member,
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, XmlError> {
        Err(unsupported("a tuple"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, XmlError> {
        Err(unsupported("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, XmlError> {
        Err(unsupported("an enum"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapWriter<'a>, XmlError> {
        match self.model.shape(self.shape) {
            Shape::Map(map) => {
                if !self.flattened {
                    let _ = write!(self.out, "<{}>", self.name);
                }
                Ok(MapWriter {
                    model: self.model,
                    out: self.out,
                    name: self.name,
                    flattened: self.flattened,
                    key_name: &map.key_name,
                    value_name: &map.value_name,
                    value: map.value,
                    as_struct: None,
                })
            }
            // `NoOutput` and other empty structures serialize as an empty map.
            Shape::Struct(_) => {
                let start = open_element(self.out, self.name);
                Ok(MapWriter {
                    model: self.model,
                    out: self.out,
                    name: self.name,
                    flattened: false,
                    key_name: "",
                    value_name: "",
                    value: self.shape,
                    as_struct: Some(start),
                })
            }
            _ => Err(XmlError(format!("{} is a map but not in the model", self.name))),
        }
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<StructWriter<'a>, XmlError> {
        let Shape::Struct(_) = self.model.shape(self.shape) else {
            return Err(XmlError(format!("{} is a structure but not in the model", self.name)));
        };
        let content_start = open_element(self.out, self.name);
        Ok(StructWriter { model: self.model, out: self.out, name: self.name, shape: self.shape, content_start })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, XmlError> {
        Err(unsupported("an enum"))
    }
}

/// Writes `<name>` and returns where its content starts, so an empty element can be closed as
/// `<name/>` (the form SQS uses for an empty `<ReceiveMessageResult/>`).
fn open_element(out: &mut String, name: &str) -> usize {
    let _ = write!(out, "<{name}>");
    out.len()
}

fn close_element(out: &mut String, name: &str, content_start: usize) {
    if out.len() == content_start {
        out.pop();
        out.push_str("/>");
    } else {
        let _ = write!(out, "</{name}>");
    }
}

struct StructWriter<'a> {
    model: &'static Model,
    out: &'a mut String,
    name: &'a str,
    shape: ShapeId,
    content_start: usize,
}

impl ser::SerializeStruct for StructWriter<'_> {
    type Ok = ();
    type Error = XmlError;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), XmlError> {
        let Shape::Struct(shape) = self.model.shape(self.shape) else { unreachable!("checked in serialize_struct") };
        let member = shape
            .members
            .iter()
            .find(|member| member.name == key)
            .ok_or_else(|| XmlError(format!("{key} is not a member of {} in the model", self.name)))?;
        value.serialize(ElementWriter {
            model: self.model,
            out: self.out,
            name: &member.key_name,
            shape: member.shape,
            flattened: member.flattened,
        })
    }

    fn end(self) -> Result<(), XmlError> {
        close_element(self.out, self.name, self.content_start);
        Ok(())
    }
}

struct ListWriter<'a> {
    model: &'static Model,
    out: &'a mut String,
    /// The wrapper element of a non-flattened list, closed by `end`.
    wrapper: Option<&'a str>,
    element_name: &'a str,
    member: ShapeId,
}

impl ser::SerializeSeq for ListWriter<'_> {
    type Ok = ();
    type Error = XmlError;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), XmlError> {
        value.serialize(ElementWriter {
            model: self.model,
            out: self.out,
            name: self.element_name,
            shape: self.member,
            flattened: false,
        })
    }

    fn end(self) -> Result<(), XmlError> {
        if let Some(wrapper) = self.wrapper {
            let _ = write!(self.out, "</{wrapper}>");
        }
        Ok(())
    }
}

struct MapWriter<'a> {
    model: &'static Model,
    out: &'a mut String,
    /// The entry element of a flattened map, or the wrapper of a non-flattened one.
    name: &'a str,
    flattened: bool,
    key_name: &'a str,
    value_name: &'a str,
    value: ShapeId,
    /// Set when an empty structure was serialized as a map: its content start.
    as_struct: Option<usize>,
}

impl ser::SerializeMap for MapWriter<'_> {
    type Ok = ();
    type Error = XmlError;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), XmlError> {
        if self.as_struct.is_some() {
            return Err(XmlError(format!("{} is a structure, not a map", self.name)));
        }
        let entry = if self.flattened { self.name } else { "entry" };
        let _ = write!(self.out, "<{entry}><{}>", self.key_name);
        key.serialize(TextWriter { out: self.out })?;
        let _ = write!(self.out, "</{}>", self.key_name);
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), XmlError> {
        value.serialize(ElementWriter {
            model: self.model,
            out: self.out,
            name: self.value_name,
            shape: self.value,
            flattened: false,
        })?;
        let entry = if self.flattened { self.name } else { "entry" };
        let _ = write!(self.out, "</{entry}>");
        Ok(())
    }

    fn end(self) -> Result<(), XmlError> {
        if let Some(content_start) = self.as_struct {
            close_element(self.out, self.name, content_start);
        } else if !self.flattened {
            let _ = write!(self.out, "</{}>", self.name);
        }
        Ok(())
    }
}

/// Writes a map key as escaped text (keys are strings in every SQS map).
struct TextWriter<'a> {
    out: &'a mut String,
}

impl ser::Serializer for TextWriter<'_> {
    type Ok = ();
    type Error = XmlError;
    type SerializeSeq = Impossible<(), XmlError>;
    type SerializeTuple = Impossible<(), XmlError>;
    type SerializeTupleStruct = Impossible<(), XmlError>;
    type SerializeTupleVariant = Impossible<(), XmlError>;
    type SerializeMap = Impossible<(), XmlError>;
    type SerializeStruct = Impossible<(), XmlError>;
    type SerializeStructVariant = Impossible<(), XmlError>;

    fn serialize_str(self, v: &str) -> Result<(), XmlError> {
        escape_into(self.out, v);
        Ok(())
    }
    fn serialize_bool(self, _v: bool) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_i8(self, _v: i8) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_i16(self, _v: i16) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_i32(self, _v: i32) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_i64(self, _v: i64) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_u8(self, _v: u8) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_u16(self, _v: u16) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_u32(self, _v: u32) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_u64(self, _v: u64) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_f32(self, _v: f32) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_char(self, v: char) -> Result<(), XmlError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_none(self) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), XmlError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result<(), XmlError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, XmlError> {
        Err(unsupported("a non-string map key"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, XmlError> {
        Err(unsupported("a non-string map key"))
    }
}
