//! The character encoding of a data file: UTF-8 (the default, checked, so
//! that a Latin-1 file is an error naming the line rather than garbled
//! categories), or a single-byte encoding decoded to UTF-8 before parsing.

use std::borrow::Cow;

use crate::DataError;

/// A file's character encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextEncoding {
    #[default]
    Utf8,
    /// ISO 8859-1: each byte is the code point of the same value.
    Latin1,
    /// Windows-1252: Latin-1 with printable characters in 0x80–0x9F.
    Windows1252,
}

/// The names `--encoding` takes, as listed in errors.
pub const ENCODING_NAMES: &str = "utf-8, latin-1 (iso-8859-1), windows-1252 (cp1252)";

impl std::str::FromStr for TextEncoding {
    type Err = DataError;

    fn from_str(name: &str) -> Result<Self, DataError> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Ok(TextEncoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => Ok(TextEncoding::Latin1),
            "windows-1252" | "cp1252" => Ok(TextEncoding::Windows1252),
            _ => Err(DataError::invalid("--encoding", format!("unknown encoding '{name}' (known: {ENCODING_NAMES})"))),
        }
    }
}

/// The code points of Windows-1252's bytes 0x80–0x9F (the five it leaves
/// undefined are kept as the C1 controls, as WHATWG's decoder does).
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘', '’',
    '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

impl TextEncoding {
    /// `bytes` as UTF-8: checked when already UTF-8, decoded otherwise. An
    /// invalid UTF-8 sequence is an error naming `source`'s line and
    /// suggesting `--encoding`.
    pub fn decode<'a>(self, bytes: &'a [u8], source: &str) -> Result<Cow<'a, [u8]>, DataError> {
        match self {
            TextEncoding::Utf8 => match std::str::from_utf8(bytes) {
                Ok(_) => Ok(Cow::Borrowed(bytes)),
                Err(e) => {
                    let at = e.valid_up_to();
                    let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                    let column = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
                    Err(DataError::Malformed {
                        path: source.into(),
                        line,
                        message: format!(
                            "byte 0x{:02X} (byte {column} of the line) is not valid UTF-8; if the file is in a single-byte \
                             encoding, say which with --encoding (e.g. --encoding latin-1)",
                            bytes[at]
                        ),
                    })
                }
            },
            TextEncoding::Latin1 => Ok(Cow::Owned(bytes.iter().map(|&b| b as char).collect::<String>().into_bytes())),
            TextEncoding::Windows1252 => Ok(Cow::Owned(
                bytes
                    .iter()
                    .map(|&b| if (0x80..0xA0).contains(&b) { CP1252_HIGH[(b - 0x80) as usize] } else { b as char })
                    .collect::<String>()
                    .into_bytes(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_byte_files_decode_and_bad_utf8_names_the_line() {
        let bytes = b"name,y\ncaf\xe9,1\n\x80uro,2\n";
        let latin1 = TextEncoding::Latin1.decode(bytes, "t.csv").unwrap();
        assert_eq!(std::str::from_utf8(&latin1).unwrap(), "name,y\ncafé,1\n\u{80}uro,2\n");
        let cp1252 = TextEncoding::Windows1252.decode(bytes, "t.csv").unwrap();
        assert_eq!(std::str::from_utf8(&cp1252).unwrap(), "name,y\ncafé,1\n€uro,2\n");
        let err = TextEncoding::Utf8.decode(bytes, "t.csv").unwrap_err().to_string();
        assert!(err.starts_with("t.csv:2: malformed CSV: byte 0xE9 (byte 4 of the line) is not valid UTF-8"), "{err}");
        assert!(err.contains("--encoding latin-1"), "{err}");
        assert_eq!("Latin_1".parse::<TextEncoding>().unwrap(), TextEncoding::Latin1);
        let err = "ebcdic".parse::<TextEncoding>().unwrap_err().to_string();
        assert!(err.contains("unknown encoding 'ebcdic' (known: utf-8, latin-1"), "{err}");
    }
}
