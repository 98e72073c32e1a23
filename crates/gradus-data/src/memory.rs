//! The memory budget that loading keeps to: a file whose text would not fit
//! is refused before it is read (or, gzip'd, as soon as it unpacks past the
//! limit), with an error that says how large it is and what the budget is,
//! rather than the process aborting when an allocation fails.
//!
//! The budget is `GRADUS_MAX_MEMORY` (bytes, or with K, M, G or T, powers of
//! 1024) when set, else the memory this machine has available (Linux's
//! `MemAvailable`), else none. A table takes up to about [`TEXT_SHARE`]
//! times its text while it is read and encoded (the text, its typed columns,
//! the encoded matrix and the splits), so the text may take a quarter of it.

use std::io::Read;

use crate::DataError;

/// The variable that sets the budget.
pub const MAX_MEMORY_VAR: &str = "GRADUS_MAX_MEMORY";

/// How many times its text a table takes, at most, while it is loaded.
pub const TEXT_SHARE: u64 = 4;

/// The budget in bytes and where it came from, or `None` when nothing sets one.
pub fn budget() -> Result<Option<(u64, String)>, DataError> {
    if let Ok(text) = std::env::var(MAX_MEMORY_VAR) {
        let bytes = parse_size(&text).ok_or_else(|| {
            DataError::invalid(
                "GRADUS_MAX_MEMORY",
                format!("'{text}' is not a size (bytes, or a number with K, M, G or T, such as 16G)"),
            )
        })?;
        return Ok(Some((bytes, format!("{MAX_MEMORY_VAR}={text}"))));
    }
    Ok(available().map(|bytes| (bytes, "this machine's available memory".to_string())))
}

/// A size such as `1048576`, `512M` or `16G` (powers of 1024).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&text[..i], text[i..].trim_end_matches(['B', 'b', 'i'])),
        None => (text, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0)?;
    let bytes = value * scale as f64;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `MemAvailable` of /proc/meminfo, in bytes.
fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A byte count for people: "1.2 GB".
pub fn human(bytes: u64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.1} {}", units[unit]) }
}

/// Reads the file at `path`, gunzipping it when it is gzip'd, refusing it
/// when its text would take more than its share of the budget.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DataError> {
    let shown = path.display().to_string();
    let io_error = |error| DataError::Io { path: path.to_path_buf(), error };
    let limit = budget()?.map(|(bytes, from)| (bytes / TEXT_SHARE, bytes, from));
    let too_large = |what: String, (_, bytes, from): &(u64, u64, String)| DataError::TooLarge {
        path: shown.clone(),
        what,
        budget: format!("{} ({from})", human(*bytes)),
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    let mut head = [0u8; 2];
    let n = file.read(&mut head).map_err(io_error)?;
    let gzipped = n == 2 && head == [0x1f, 0x8b];
    if let Some(limit) = &limit
        && !gzipped
        && size > limit.0
    {
        return Err(too_large(format!("its {} of text", human(size)), limit));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    bytes.extend_from_slice(&head[..n]);
    file.read_to_end(&mut bytes).map_err(io_error)?;
    if !gzipped {
        return Ok(bytes);
    }
    let most = limit.as_ref().map_or(u64::MAX, |l| l.0);
    let mut out = Vec::with_capacity((bytes.len() * 4).min(most as usize));
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(most.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| io_error(std::io::Error::new(e.kind(), format!("not a valid gzip file: {e}"))))?;
    if let Some(limit) = &limit
        && out.len() as u64 > limit.0
    {
        return Err(too_large(format!("it unpacks to more than {} of text", human(limit.0)), limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("16G"), Some(16 << 30));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("2 kb"), Some(2048));
        for bad in ["", "G", "-1G", "0", "12X", "lots"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(human(1536 << 20), "1.5 GB");
        assert_eq!(human(12), "12 bytes");
    }
}
