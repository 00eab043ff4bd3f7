//! Where in a JSON text an error arose, as a field path (`spec.containers[0].image`).
//!
//! serde_json reports a line and column; the host hands objects over as one
//! line of JSON, so the column is an offset into the text. Scanning the text
//! up to it names the field without a second, path-tracking deserializer
//! (which would double the code of every component).

enum Frame {
    Object(Option<String>),
    Array(usize),
}

/// The path of the field being read at byte `offset` of `json`.
pub fn path_at(json: &str, offset: usize) -> String {
    let bytes = json.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut expecting_key = false;
    let mut i = 0;
    while i < bytes.len() && i < offset {
        match bytes[i] {
            b'{' => {
                stack.push(Frame::Object(None));
                expecting_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(key)) => {
                    *key = None;
                    expecting_key = true;
                }
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if expecting_key {
                    let text = json.get(start..=i.min(bytes.len() - 1)).unwrap_or("\"\"");
                    let key = serde_json::from_str::<String>(text).unwrap_or_default();
                    if let Some(Frame::Object(k)) = stack.last_mut() {
                        *k = Some(key);
                    }
                    expecting_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}

/// An error of `serde_json::from_str(json)` as `field `path`: message`,
/// without serde_json's line and column.
pub fn explain(json: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_string();
    // Single-line input: the column is the byte offset (1-based) of the error.
    let offset = if e.line() == 1 { e.column() } else { 0 };
    match path_at(json, offset) {
        p if p.is_empty() => message,
        p => format!("field `{p}`: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        explain(json, &serde_json::from_str::<T>(json).unwrap_err())
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Pod {
        spec: Spec,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Spec {
        #[serde(default)]
        other: Option<String>,
        containers: Vec<Container>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Container {
        name: String,
        #[serde(default)]
        ports: Vec<u16>,
    }

    #[test]
    fn names_the_field() {
        assert_eq!(
            err::<Pod>(r#"{"spec":{"other":"a,b{","containers":7}}"#),
            "field `spec.containers`: invalid type: integer `7`, expected a sequence"
        );
        let e = err::<Pod>(r#"{"spec":{"containers":[{"name":"a"},{"name":"b","ports":[1,"x"]}]}}"#);
        assert!(e.starts_with("field `spec.containers[1].ports[1]`: invalid type: string"), "{e}");
        let e = err::<Pod>(r#"{"spec":{"containers":[{"name":"a\"}","ports":[70000]}]}}"#);
        assert!(e.starts_with("field `spec.containers[0].ports[0]`"), "{e}");
    }
}
