//! CBOR (RFC 8949) as the Smithy RPC v2 CBOR protocol uses it: maps with text keys, text and
//! byte strings, integers, floats, booleans, null, and timestamps as tag 1 over epoch seconds.
//!
//! The decoder reads definite and indefinite lengths, refuses nesting past `MAX_DEPTH`, and never
//! allocates more than the input could hold (a declared length is checked against the bytes left
//! before anything is reserved), so a hostile body costs at most its own size.

use serde_json::{Map, Number, Value};

/// Deeper nesting than any CloudWatch input needs.
const MAX_DEPTH: usize = 32;

/// Why a body did not decode.
#[derive(Debug, PartialEq, Eq)]
pub struct CborError(pub String);

fn fail<T>(message: impl Into<String>) -> Result<T, CborError> {
    Err(CborError(message.into()))
}

/// Decodes one CBOR item filling all of `input` into a JSON value: timestamps (tag 1) become
/// epoch seconds, byte strings base64 text, map keys must be text.
pub fn decode(input: &[u8]) -> Result<Value, CborError> {
    let mut reader = Reader { input, at: 0 };
    let value = reader.item(0)?;
    if reader.at != input.len() {
        return fail(format!("{} bytes after the end of the CBOR item", input.len() - reader.at));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

/// What one item's initial byte says.
enum Head {
    Unsigned(u64),
    Negative(u64),
    Bytes(Option<u64>),
    Text(Option<u64>),
    Array(Option<u64>),
    Map(Option<u64>),
    Tag(u64),
    Simple(u8),
    Float(f64),
    Break,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CborError> {
        let byte = *self.input.get(self.at).ok_or_else(|| CborError("the CBOR body ends early".into()))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, len: u64) -> Result<&[u8], CborError> {
        let left = (self.input.len() - self.at) as u64;
        if len > left {
            return fail(format!("a CBOR item declares {len} bytes but {left} are left"));
        }
        let start = self.at;
        self.at += len as usize;
        Ok(&self.input[start..self.at])
    }

    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        Ok(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().expect("two bytes"))),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().expect("four bytes"))),
            27 => u64::from_be_bytes(self.take(8)?.try_into().expect("eight bytes")),
            _ => return fail(format!("reserved CBOR additional information {info}")),
        })
    }

    fn length(&mut self, info: u8) -> Result<Option<u64>, CborError> {
        if info == 31 {
            return Ok(None);
        }
        self.argument(info).map(Some)
    }

    fn head(&mut self) -> Result<Head, CborError> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        Ok(match major {
            0 => Head::Unsigned(self.argument(info)?),
            1 => Head::Negative(self.argument(info)?),
            2 => Head::Bytes(self.length(info)?),
            3 => Head::Text(self.length(info)?),
            4 => Head::Array(self.length(info)?),
            5 => Head::Map(self.length(info)?),
            6 => Head::Tag(self.argument(info)?),
            _ => match info {
                0..=23 => Head::Simple(info),
                24 => Head::Simple(self.byte()?),
                25 => Head::Float(half_to_f64(u16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))),
                26 => Head::Float(f64::from(f32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))),
                27 => Head::Float(f64::from_be_bytes(self.take(8)?.try_into().expect("eight bytes"))),
                31 => Head::Break,
                _ => return fail(format!("reserved CBOR simple value {info}")),
            },
        })
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return fail(format!("the CBOR body nests deeper than {MAX_DEPTH} levels"));
        }
        let head = self.head()?;
        self.value(head, depth)
    }

    fn value(&mut self, head: Head, depth: usize) -> Result<Value, CborError> {
        Ok(match head {
            Head::Unsigned(n) => Value::Number(n.into()),
            Head::Negative(n) => match i64::try_from(n) {
                Ok(n) => Value::Number((-1 - n).into()),
                Err(_) => return fail("a CBOR negative integer is out of range"),
            },
            Head::Bytes(len) => {
                use base64::Engine as _;
                Value::String(base64::engine::general_purpose::STANDARD.encode(self.string(len, 2)?))
            }
            Head::Text(len) => match String::from_utf8(self.string(len, 3)?) {
                Ok(text) => Value::String(text),
                Err(_) => return fail("a CBOR text string is not UTF-8"),
            },
            Head::Array(len) => {
                let mut items = Vec::new();
                match len {
                    Some(len) => {
                        self.room_for(len)?;
                        for _ in 0..len {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => loop {
                        match self.head()? {
                            Head::Break => break,
                            head => items.push(self.value(head, depth + 1)?),
                        }
                    },
                }
                Value::Array(items)
            }
            Head::Map(len) => {
                let mut map = Map::new();
                let mut entry = |reader: &mut Self, key: Head| -> Result<(), CborError> {
                    let Value::String(key) = reader.value(key, depth + 1)? else {
                        return fail("a CBOR map key is not a text string");
                    };
                    let value = reader.item(depth + 1)?;
                    map.insert(key, value);
                    Ok(())
                };
                match len {
                    Some(len) => {
                        self.room_for(len.saturating_mul(2))?;
                        for _ in 0..len {
                            let key = self.head()?;
                            entry(self, key)?;
                        }
                    }
                    None => loop {
                        match self.head()? {
                            Head::Break => break,
                            key => entry(self, key)?,
                        }
                    },
                }
                Value::Object(map)
            }
            // Epoch-based date/time: the number as is.
            Head::Tag(1) => match self.item(depth + 1)? {
                number @ Value::Number(_) => number,
                _ => return fail("a CBOR timestamp (tag 1) does not hold a number"),
            },
            Head::Tag(tag) => return fail(format!("unexpected CBOR tag {tag}")),
            Head::Simple(20) => Value::Bool(false),
            Head::Simple(21) => Value::Bool(true),
            Head::Simple(22 | 23) => Value::Null,
            Head::Simple(other) => return fail(format!("unexpected CBOR simple value {other}")),
            Head::Float(f) => Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
            Head::Break => return fail("a CBOR break outside an indefinite-length item"),
        })
    }

    /// Each of `items` takes at least one byte: refuse a count the input cannot hold before
    /// anything is built for it.
    fn room_for(&self, items: u64) -> Result<(), CborError> {
        let left = (self.input.len() - self.at) as u64;
        if items > left {
            return fail(format!("a CBOR item declares {items} elements but {left} bytes are left"));
        }
        Ok(())
    }

    /// A byte or text string's bytes, joining an indefinite string's chunks (of its own major type).
    fn string(&mut self, len: Option<u64>, major: u8) -> Result<Vec<u8>, CborError> {
        if let Some(len) = len {
            return Ok(self.take(len)?.to_vec());
        }
        let mut bytes = Vec::new();
        loop {
            let initial = self.byte()?;
            if initial == 0xff {
                return Ok(bytes);
            }
            if initial >> 5 != major || initial & 0x1f == 31 {
                return fail("a chunk of an indefinite CBOR string has the wrong type");
            }
            let len = self.argument(initial & 0x1f)?;
            bytes.extend_from_slice(self.take(len)?);
        }
    }
}

fn half_to_f64(half: u16) -> f64 {
    let exponent = (half >> 10) & 0x1f;
    let mantissa = f64::from(half & 0x3ff);
    let value = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (mantissa + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    if half & 0x8000 != 0 {
        -value
    } else {
        value
    }
}

/// Writes CBOR items.
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    fn head(&mut self, major: u8, n: u64) {
        let major = major << 5;
        match n {
            0..=23 => self.out.push(major | n as u8),
            24..=0xff => self.out.extend_from_slice(&[major | 24, n as u8]),
            0x100..=0xffff => {
                self.out.push(major | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(major | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(major | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    pub fn text(&mut self, text: &str) {
        self.head(3, text.len() as u64);
        self.out.extend_from_slice(text.as_bytes());
    }

    pub fn array(&mut self, len: usize) {
        self.head(4, len as u64);
    }

    pub fn map(&mut self, len: usize) {
        self.head(5, len as u64);
    }

    pub fn double(&mut self, value: f64) {
        self.out.push(0xfb);
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    /// A timestamp: tag 1 over epoch seconds (a float, to keep milliseconds).
    pub fn timestamp(&mut self, millis: i64) {
        self.head(6, 1);
        self.double(millis as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_what_smithy_clients_send() {
        // {"Namespace": "AWS/SQS", "Period": 60, "StartTime": 1(1700000000.5), "Ok": true, "N": -2}
        let mut w = Writer::default();
        w.map(5);
        w.text("Namespace");
        w.text("AWS/SQS");
        w.text("Period");
        w.out.push(0x18);
        w.out.push(60);
        w.text("StartTime");
        w.timestamp(1_700_000_000_500);
        w.text("Ok");
        w.out.push(0xf5);
        w.text("N");
        w.out.push(0x21);
        let value = decode(&w.out).unwrap();
        assert_eq!(
            value,
            json!({"Namespace": "AWS/SQS", "Period": 60, "StartTime": 1_700_000_000.5, "Ok": true, "N": -2})
        );
    }

    #[test]
    fn indefinite_lengths_and_half_floats() {
        // [_ "a", {_ "k": 1.5 (half)}]
        let bytes = [0x9f, 0x61, b'a', 0xbf, 0x61, b'k', 0xf9, 0x3e, 0x00, 0xff, 0xff];
        assert_eq!(decode(&bytes).unwrap(), json!(["a", {"k": 1.5}]));
        // An indefinite text string in two chunks.
        assert_eq!(decode(&[0x7f, 0x62, b'a', b'b', 0x61, b'c', 0xff]).unwrap(), json!("abc"));
    }

    #[test]
    fn hostile_bodies_fail_without_allocating() {
        // An array claiming 2^32 elements in a 6-byte body.
        assert!(decode(&[0x9a, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
        // A string claiming more bytes than are left.
        assert!(decode(&[0x78, 0xff, b'a']).is_err());
        // Nesting past the limit.
        let deep = vec![0x81; MAX_DEPTH + 2];
        assert!(decode(&deep).unwrap_err().0.contains("deeper"));
        // Trailing bytes, a bare break, a non-text key, an unknown tag.
        for bad in [&[0x01, 0x02][..], &[0xff], &[0xa1, 0x01, 0x01], &[0xc2, 0x41, 0x00], &[]] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
