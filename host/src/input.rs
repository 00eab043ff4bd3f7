//! Paths → bytes: files, directories (recursively, `.yaml`, `.yml`, `.json`)
//! and `-` for standard input, in a stable order.

use std::io::Read;
use std::path::{Path, PathBuf};

/// One input to read, named as the user will see it in reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
}

impl InputSource {
    pub fn display_name(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".into(),
            InputSource::File(p) => p.display().to_string(),
        }
    }
}

/// An input that could not be found or read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    pub path: String,
    pub message: String,
}

fn is_manifest(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
}

/// Expand the paths given on the command line into the inputs to read.
/// Files named explicitly are read whatever their extension; directories
/// contribute their manifest files, sorted by path.
pub fn expand(paths: &[String]) -> (Vec<InputSource>, Vec<InputError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p == "-" {
            inputs.push(InputSource::Stdin);
            continue;
        }
        let path = PathBuf::from(p);
        if let Some(chart) = chart_of(&path) {
            errors.push(chart_error(&chart));
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                walk(&path, &mut found, &mut errors);
                found.sort();
                inputs.extend(found.into_iter().map(InputSource::File));
            }
            Ok(_) => inputs.push(InputSource::File(path)),
            Err(e) => errors.push(InputError { path: p.clone(), message: format!("cannot read: {e}") }),
        }
    }
    (inputs, errors)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(InputError { path: dir.display().to_string(), message: format!("cannot list directory: {e}") });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Do not follow links to directories: a link cycle would never end.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && is_chart(&path) {
            errors.push(chart_error(&path));
        } else if kind.is_dir() {
            walk(&path, found, errors);
        } else if is_manifest(&path) && (kind.is_file() || path.is_file()) {
            found.push(path);
        }
    }
}

/// A directory holding `Chart.yaml` is a Helm chart: its templates are not
/// manifests until helm renders them.
fn is_chart(dir: &Path) -> bool {
    dir.join("Chart.yaml").is_file()
}

/// The chart `path` is, or whose `templates` folder (or a template in it) it
/// is: reading those as manifests would only give YAML errors.
fn chart_of(path: &Path) -> Option<PathBuf> {
    if path.is_dir() && is_chart(path) {
        return Some(path.to_path_buf());
    }
    let templates = if path.is_dir() { Some(path) } else { path.parent() }?;
    let chart = templates.parent().filter(|_| templates.file_name().is_some_and(|n| n == "templates"))?;
    is_chart(chart).then(|| chart.to_path_buf())
}

fn chart_error(chart: &Path) -> InputError {
    let dir = chart.display();
    InputError {
        path: dir.to_string(),
        message: format!(
            "a Helm chart (it has Chart.yaml): its templates are not manifests until rendered; check it with \
             `palisade check --helm {dir}` (add --values, --set, --release as for `helm template`), \
             or `helm template NAME {dir} | palisade check -`"
        ),
    }
}

/// Whether `file` sits beside a chart: in a chart's own folder (its
/// `values.yaml`), or in a folder that holds a chart (a values file kept next
/// to it). Such a file that holds no Kubernetes object is skipped with a note.
pub fn beside_chart(file: &Path) -> bool {
    let Some(dir) = file.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }) else {
        return false;
    };
    is_chart(dir)
        || std::fs::read_dir(dir)
            .map(|entries| entries.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && is_chart(&e.path())))
            .unwrap_or(false)
}

/// Bytes one input may hold: far above any rendered chart (the API server
/// takes 3 MiB an object), and a bound on what `/dev/zero` given as a file, or
/// an endless pipe, can cost.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

/// Read an input as text (see [`decode`]), at most [`MAX_INPUT_BYTES`].
pub fn read(source: &InputSource) -> Result<String, InputError> {
    let error = |message: String| InputError { path: source.display_name(), message };
    let mut bytes = Vec::new();
    let result = match source {
        InputSource::Stdin => std::io::stdin().lock().take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes),
        InputSource::File(p) => {
            std::fs::File::open(p).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        }
    };
    result.map_err(|e| error(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(error(format!("over the limit of {} MiB for one input", MAX_INPUT_BYTES >> 20)));
    }
    decode(&bytes).map_err(error)
}

/// Bytes → text, with the encodings YAML allows and kubectl's reader
/// (go-yaml) decodes: UTF-8, with or without a byte order mark, and UTF-16
/// with one (little- or big-endian).
fn decode(bytes: &[u8]) -> Result<String, String> {
    let utf16 = |body: &[u8], from: fn([u8; 2]) -> u16| -> Result<String, String> {
        if !body.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes".into());
        }
        let units: Vec<u16> = body.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16(&units).map_err(|_| "not valid UTF-16 text (an unpaired surrogate)".to_string())
    };
    if let Some(body) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(body, u16::from_le_bytes);
    }
    if let Some(body) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(body, u16::from_be_bytes);
    }
    // A UTF-8 byte order mark is allowed at the start of a YAML stream.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(body.to_vec())
        .map_err(|e| format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn utf8_and_utf16_with_a_byte_order_mark() {
        let text = "kind: Pod\nmetadata: {name: é}\n";
        assert_eq!(decode(text.as_bytes()).unwrap(), text);
        assert_eq!(decode(format!("\u{feff}{text}").as_bytes()).unwrap(), text);
        let le: Vec<u8> = [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        let be: Vec<u8> = [0xFE, 0xFF].into_iter().chain(text.encode_utf16().flat_map(u16::to_be_bytes)).collect();
        assert_eq!(decode(&le).unwrap(), text);
        assert_eq!(decode(&be).unwrap(), text);
        assert!(decode(&le[..le.len() - 1]).unwrap_err().contains("odd number"));
        assert!(decode(b"a: \xFF\n").unwrap_err().contains("offset 3"));
    }
}
