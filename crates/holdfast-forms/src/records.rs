//! Message bodies as records for `holdfast sink --map`: one JSON object, JSON lines, or CSV, each
//! record's fields mapped onto the columns of a table (`customers(id, name, email, city)` from a
//! CSV producer is the classic case).
//!
//! Every record gets a key, which the sink's tracking table remembers so a redelivered message
//! (or, with `--key`, a record the producer sent twice) is stored once. Without `--key` the key is
//! the SQS message id, with `#N` for the Nth record of a message that holds several.

use clap::ValueEnum;

/// How a message body holds its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BodyFormat {
    /// One JSON object per message.
    #[default]
    Json,
    /// One JSON object per line; a message may hold several.
    #[value(alias = "ndjson", alias = "json-lines")]
    Jsonl,
    /// CSV: one record per line, fields named by --fields or by a header line (--header-row).
    Csv,
}

/// Where a column's value comes from in a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A JSON pointer, e.g. `/customer/email` (JSON records only).
    Pointer(String),
    /// A field by name: a top-level JSON key or a CSV field.
    Field(String),
}

impl Source {
    pub fn parse(text: &str) -> Source {
        if text.starts_with('/') {
            Source::Pointer(text.to_string())
        } else {
            Source::Field(text.to_string())
        }
    }
}

/// One record of a message: its tracking key and its values, in column order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub values: Vec<Option<String>>,
}

/// How bodies become records; built once from the command line.
#[derive(Clone, Debug)]
pub struct RecordMapping {
    pub format: BodyFormat,
    /// CSV field names, in order (--fields); `None` with `header` (each message starts with one).
    pub fields: Option<Vec<String>>,
    pub header: bool,
    /// (column, source) pairs, in the table's column order.
    pub columns: Vec<(String, Source)>,
    /// The field that identifies a record across messages (`--key`); else the message id.
    pub key: Option<Source>,
}

/// Records in one message, at most: a bound on what one body can make the sink build.
pub const MAX_RECORDS_PER_MESSAGE: usize = 10_000;
/// Longest record key (the tracking table's key column is 255 characters with the table name).
const MAX_KEY_CHARS: usize = 190;

impl RecordMapping {
    /// The records in `body`, or why the message cannot be stored.
    pub fn records(&self, message_id: &str, body: &str) -> Result<Vec<Record>, String> {
        let fields: Vec<Fields> = match self.format {
            BodyFormat::Json => {
                let value: serde_json::Value =
                    serde_json::from_str(body).map_err(|error| format!("not JSON ({error})"))?;
                vec![Fields::Json(value)]
            }
            BodyFormat::Jsonl => body
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(i, line)| {
                    serde_json::from_str(line)
                        .map(Fields::Json)
                        .map_err(|e| format!("line {} is not JSON ({e})", i + 1))
                })
                .collect::<Result<_, _>>()?,
            BodyFormat::Csv => self.csv_records(body)?,
        };
        if fields.is_empty() {
            return Err("no records in the message".into());
        }
        if fields.len() > MAX_RECORDS_PER_MESSAGE {
            return Err(format!("more than {MAX_RECORDS_PER_MESSAGE} records in one message"));
        }
        let several = fields.len() > 1;
        fields
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let key = match &self.key {
                    Some(source) => {
                        record.get(source).ok_or_else(|| format!("record {} has no key {}", i + 1, describe(source)))?
                    }
                    None if several => format!("{message_id}#{}", i + 1),
                    None => message_id.to_string(),
                };
                if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
                    return Err(format!("record {}: the key must be 1 to {MAX_KEY_CHARS} characters", i + 1));
                }
                let values = self.columns.iter().map(|(_, source)| record.get(source)).collect();
                Ok(Record { key, values })
            })
            .collect()
    }

    fn csv_records(&self, body: &str) -> Result<Vec<Fields>, String> {
        let mut reader =
            csv::ReaderBuilder::new().has_headers(self.header).flexible(false).from_reader(body.as_bytes());
        let names: Vec<String> = if self.header {
            reader
                .headers()
                .map_err(|e| format!("bad CSV header ({e})"))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect()
        } else {
            self.fields.clone().unwrap_or_default()
        };
        let mut records = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("bad CSV ({e})"))?;
            if row.len() != names.len() {
                return Err(format!("CSV record {} has {} fields, expected {}", i + 1, row.len(), names.len()));
            }
            records.push(Fields::Csv(names.iter().cloned().zip(row.iter().map(str::to_string)).collect()));
            if records.len() > MAX_RECORDS_PER_MESSAGE {
                break;
            }
        }
        Ok(records)
    }
}

fn describe(source: &Source) -> &str {
    match source {
        Source::Pointer(text) | Source::Field(text) => text,
    }
}

/// One record's fields, before mapping.
enum Fields {
    Json(serde_json::Value),
    Csv(Vec<(String, String)>),
}

impl Fields {
    /// The value for `source`: text as text, other JSON values as JSON, empty CSV fields and JSON
    /// nulls as SQL NULL.
    fn get(&self, source: &Source) -> Option<String> {
        match self {
            Fields::Json(value) => {
                let found = match source {
                    Source::Pointer(pointer) => value.pointer(pointer),
                    Source::Field(name) => value.get(name),
                }?;
                match found {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(text) => Some(text.clone()),
                    other => Some(other.to_string()),
                }
            }
            Fields::Csv(fields) => match source {
                Source::Field(name) => {
                    fields.iter().find(|(field, _)| field == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
                }
                Source::Pointer(_) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customers(format: BodyFormat, fields: Option<&[&str]>, header: bool, key: Option<&str>) -> RecordMapping {
        RecordMapping {
            format,
            fields: fields.map(|f| f.iter().map(|s| s.to_string()).collect()),
            header,
            columns: ["id", "name", "city"].iter().map(|c| (c.to_string(), Source::parse(c))).collect(),
            key: key.map(Source::parse),
        }
    }

    #[test]
    fn a_csv_line_becomes_a_row_in_column_order() {
        let mapping = customers(BodyFormat::Csv, Some(&["id", "name", "email", "city"]), false, None);
        let records = mapping.records("m-1", "7,\"Lovelace, Ada\",ada@example.com,London\n").unwrap();
        assert_eq!(
            records,
            [Record {
                key: "m-1".into(),
                values: vec![Some("7".into()), Some("Lovelace, Ada".into()), Some("London".into())]
            }]
        );
    }

    #[test]
    fn several_records_in_one_message_get_numbered_keys_or_their_own() {
        let mapping = customers(BodyFormat::Csv, None, true, None);
        let body = "id,name,city\n1,Ada,London\n2,Grace,\n";
        let records = mapping.records("m-2", body).unwrap();
        assert_eq!(records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["m-2#1", "m-2#2"]);
        assert_eq!(records[1].values[2], None, "an empty field is NULL");
        let by_id = customers(BodyFormat::Csv, None, true, Some("id"));
        assert_eq!(by_id.records("m-2", body).unwrap()[1].key, "2");
    }

    #[test]
    fn json_records_by_field_or_pointer() {
        let mut mapping = customers(BodyFormat::Jsonl, None, false, Some("/id"));
        mapping.columns[2].1 = Source::parse("/address/city");
        let body = "{\"id\":1,\"name\":\"Ada\",\"address\":{\"city\":\"London\"}}\n\n{\"id\":2,\"name\":null}\n";
        let records = mapping.records("m-3", body).unwrap();
        assert_eq!(records[0].values, [Some("1".into()), Some("Ada".into()), Some("London".into())]);
        assert_eq!(records[1].values, [Some("2".into()), None, None]);
        assert_eq!(records[1].key, "2");
    }

    #[test]
    fn what_cannot_be_stored_says_why() {
        let csv = customers(BodyFormat::Csv, Some(&["id", "name", "email", "city"]), false, None);
        assert!(csv.records("m", "1,Ada\n").unwrap_err().contains("has 2 fields, expected 4"));
        assert!(csv.records("m", "").unwrap_err().contains("no records"));
        let json = customers(BodyFormat::Json, None, false, Some("id"));
        assert!(json.records("m", "nope").unwrap_err().starts_with("not JSON"));
        assert!(json.records("m", "{\"name\":\"x\"}").unwrap_err().contains("no key id"));
        let many: String = (0..=MAX_RECORDS_PER_MESSAGE).map(|i| format!("{i},a,b,c\n")).collect();
        assert!(csv.records("m", &many).unwrap_err().contains("more than"));
    }
}
