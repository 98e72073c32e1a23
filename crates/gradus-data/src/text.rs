//! Free-text columns into sparse features: tokens (Unicode words, or
//! characters for text written without spaces), their n-grams, and either
//! a vocabulary of the training rows' n-grams (kept by document frequency,
//! weighted by TF-IDF) or the hashing trick (a signed bucket per n-gram,
//! nothing stored), with sublinear term frequencies and rows scaled to
//! unit length.
//!
//! Words follow Unicode's word boundaries (UAX #29, which keeps "don't"
//! and "3.5" whole and cuts "hp的这款" into "hp", "的", "这", "款"), lowered,
//! with URLs, @mentions and numbers optionally left out; emoji and other
//! pictographs are kept as tokens (they carry sentiment). Characters: the
//! text's characters with runs of white space made one space. A column
//! whose letters are mostly Chinese or Japanese is read as characters
//! (n-grams 1–3), any other as words (n-grams 1–2).
//!
//! The hash of an n-gram is FNV-1a (64-bit) of each token's UTF-8 bytes,
//! chained and then mixed (SplitMix64's finaliser): the same text gives the
//! same buckets on every run and platform (tested against fixed values).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::table::Column;
use crate::{DataError, fnv1a};

/// What a text is cut into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analyzer {
    /// Unicode words (UAX #29 word boundaries).
    Words,
    /// Characters, for text without spaces between words.
    Chars,
}

impl Analyzer {
    pub fn name(self) -> &'static str {
        match self {
            Analyzer::Words => "words",
            Analyzer::Chars => "chars",
        }
    }

    /// The n-grams this analyzer takes unless told otherwise: word 1–2-grams,
    /// character 1–3-grams.
    pub fn default_ngrams(self) -> NgramRange {
        match self {
            Analyzer::Words => NgramRange { low: 1, high: 2 },
            Analyzer::Chars => NgramRange { low: 1, high: 3 },
        }
    }

    /// The analyzer for a column holding `texts`: characters when more than
    /// 30% of their letters are Chinese or Japanese (Han, kana), words
    /// otherwise (an empty column: words).
    pub fn for_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Analyzer {
        let (mut letters, mut cjk) = (0usize, 0usize);
        for c in texts.into_iter().flat_map(str::chars).filter(|c| c.is_alphabetic()) {
            letters += 1;
            cjk += is_cjk(c) as usize;
        }
        if cjk * 10 > letters * 3 { Analyzer::Chars } else { Analyzer::Words }
    }
}

impl FromStr for Analyzer {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "words" | "word" => Ok(Analyzer::Words),
            "chars" | "char" | "characters" => Ok(Analyzer::Chars),
            _ => Err(DataError::invalid("tokens", format!("'{s}' is not words or chars"))),
        }
    }
}

/// Whether `c` is a wide (East Asian) character: Han, kana or Hangul.
pub(crate) fn is_wide(c: char) -> bool {
    is_cjk(c) || matches!(c as u32, 0xAC00..=0xD7AF)
}

/// Han ideographs (with extension A and compatibility ideographs) and kana.
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// A pictograph or symbol kept as a token: arrows, technical and
/// miscellaneous symbols, dingbats, emoji.
fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x2190..=0x2BFF | 0x1F000..=0x1FAFF)
}

/// An inclusive range of n-gram orders, `LOW-HIGH` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramRange {
    pub low: usize,
    pub high: usize,
}

/// The longest n-grams taken.
pub const MAX_NGRAM: usize = 6;

impl NgramRange {
    pub fn new(low: usize, high: usize) -> Result<Self, DataError> {
        if low == 0 || low > high || high > MAX_NGRAM {
            return Err(DataError::invalid(
                "--ngram",
                format!("{low}-{high}: the range must be LOW-HIGH with 1 <= LOW <= HIGH <= {MAX_NGRAM}"),
            ));
        }
        Ok(Self { low, high })
    }
}

impl fmt::Display for NgramRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

impl FromStr for NgramRange {
    type Err = DataError;

    /// `LOW-HIGH` (`1-2`) or one order (`2`, meaning `2-2`).
    fn from_str(s: &str) -> Result<Self, DataError> {
        let number = |t: &str| {
            t.trim().parse::<usize>().map_err(|_| {
                DataError::invalid("--ngram", format!("'{s}' is not LOW-HIGH (such as 1-2) or one order (such as 2)"))
            })
        };
        match s.split_once('-') {
            Some((low, high)) => Self::new(number(low)?, number(high)?),
            None => {
                let n = number(s)?;
                Self::new(n, n)
            }
        }
    }
}

/// How a text becomes tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokenizer {
    pub analyzer: Analyzer,
    pub lowercase: bool,
    /// Leave out pieces that are URLs (`http://…`, `https://…`, `www.…`).
    pub strip_urls: bool,
    /// Leave out @mentions.
    pub strip_mentions: bool,
    /// Leave out words that are numbers (words only).
    pub strip_numbers: bool,
}

impl Tokenizer {
    /// Lowered, URLs, mentions and numbers kept.
    pub fn new(analyzer: Analyzer) -> Self {
        Self { analyzer, lowercase: true, strip_urls: false, strip_mentions: false, strip_numbers: false }
    }

    /// The tokens of `text`, appended to `out` (cleared first).
    pub fn tokens(&self, text: &str, out: &mut Vec<String>) {
        out.clear();
        self.visit(text, &mut String::new(), |t| out.push(String::from_utf8_lossy(t).into_owned()));
    }

    /// Calls `f` with each token's bytes (UTF-8), in order: borrowed from
    /// `text` where lowering leaves it as it is, made in `lowered` otherwise,
    /// so that hashing a row allocates nothing.
    fn visit(&self, text: &str, lowered: &mut String, mut f: impl FnMut(&[u8])) {
        let kept = text.split_whitespace().filter(|piece| {
            !(self.strip_urls && is_url(piece) || self.strip_mentions && piece.starts_with('@') && piece.len() > 1)
        });
        let mut token = |t: &str, f: &mut dyn FnMut(&[u8])| {
            if self.lowercase && t.chars().any(char::is_uppercase) {
                lowered.clear();
                lowered.extend(t.chars().flat_map(char::to_lowercase));
                f(lowered.as_bytes());
            } else {
                f(t.as_bytes());
            }
        };
        match self.analyzer {
            Analyzer::Words => {
                for piece in kept {
                    for word in piece.split_word_bounds() {
                        let wordy = word.chars().any(char::is_alphanumeric);
                        if !(wordy || word.chars().any(is_pictograph)) {
                            continue;
                        }
                        if self.strip_numbers && wordy && is_number(word) {
                            continue;
                        }
                        token(word, &mut f);
                    }
                }
            }
            Analyzer::Chars => {
                for (i, piece) in kept.enumerate() {
                    if i > 0 {
                        f(b" ");
                    }
                    for (at, c) in piece.char_indices() {
                        token(&piece[at..at + c.len_utf8()], &mut f);
                    }
                }
            }
        }
    }
}

fn is_url(piece: &str) -> bool {
    let p = piece.trim_start_matches(|c: char| !c.is_alphanumeric());
    let lower = |prefix: &str| p.get(..prefix.len()).is_some_and(|s| s.eq_ignore_ascii_case(prefix));
    lower("http://") || lower("https://") || (lower("www.") && p.len() > 4)
}

/// Digits with at most separators (`.`, `,`) between them.
fn is_number(word: &str) -> bool {
    word.chars().any(|c| c.is_numeric()) && word.chars().all(|c| c.is_numeric() || c == '.' || c == ',')
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of the n-gram of tokens whose FNV-1a hashes are `tokens`.
fn ngram_hash(tokens: &[u64]) -> u64 {
    let chained = tokens.iter().fold(tokens.len() as u64, |h, &t| h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ t);
    mix(chained)
}

/// The fewest and most hash buckets a text column may have: 2¹⁰ and 2²⁴.
pub const MIN_TEXT_BUCKETS: usize = 1 << 10;
pub const MAX_TEXT_BUCKETS: usize = 1 << 24;

/// Whether `buckets` may be a text column's hash buckets: a power of two
/// in [`MIN_TEXT_BUCKETS`]..=[`MAX_TEXT_BUCKETS`].
pub fn check_text_buckets(buckets: usize) -> Result<(), DataError> {
    if !buckets.is_power_of_two() || !(MIN_TEXT_BUCKETS..=MAX_TEXT_BUCKETS).contains(&buckets) {
        return Err(DataError::invalid(
            "--text-buckets",
            format!("{buckets}: a power of two from 2^10 to 2^24 (such as 262144 = 2^18)"),
        ));
    }
    Ok(())
}

/// How one free-text column becomes sparse inputs: its tokens' n-grams,
/// hashed into `buckets` (a power of two) with a sign each, counted
/// sublinearly (1 + ln count), and the row scaled to unit L2 norm. Nothing is learnt from the data but the choices themselves, so
/// there is nothing to store but them — unless a [`Vocabulary`] fitted on
/// the training rows gives each of its n-grams an input of its own
/// (TF-IDF), in place of the buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextEncoder {
    pub column: String,
    pub tokenizer: Tokenizer,
    pub ngrams: NgramRange,
    pub buckets: usize,
    /// Shared: every copy of an encoding (each trial's rows, each model)
    /// points at one vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<std::sync::Arc<Vocabulary>>,
}

/// The n-grams of the training rows kept as inputs (those in at least
/// `min_df` rows, the `max_features` in most rows), each looked up by its
/// 64-bit hash, with its inverse document frequency, scikit-learn's smooth
/// form `ln((1 + n) / (1 + df)) + 1`. Input `i` is the n-gram `terms[i]`
/// (ascending), weighted by `idf[i]`; `ngrams[i]` is its text (tokens
/// joined by a space, characters by nothing), for reading a model, and
/// `orders[i]` its tokens (a vocabulary may be narrowed by them, see
/// [`TextEncoder::narrowed`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vocabulary {
    pub terms: Vec<u64>,
    pub idf: Vec<f32>,
    pub min_df: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ngrams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<u8>,
    /// `terms` looked up by hash, built on first use.
    #[serde(skip)]
    index: std::sync::OnceLock<TermIndex>,
}

impl PartialEq for Vocabulary {
    fn eq(&self, other: &Self) -> bool {
        (&self.terms, &self.idf, self.min_df, &self.ngrams, &self.orders)
            == (&other.terms, &other.idf, other.min_df, &other.ngrams, &other.orders)
    }
}

impl Vocabulary {
    pub fn new(terms: Vec<u64>, idf: Vec<f32>, min_df: usize, ngrams: Vec<String>) -> Self {
        Self { terms, idf, min_df, ngrams, orders: Vec::new(), index: Default::default() }
    }

    /// The input of the n-gram whose hash is `hash`, if it is a term.
    pub fn position(&self, hash: u64) -> Option<usize> {
        self.index.get_or_init(|| TermIndex::new(&self.terms)).find(&self.terms, hash)
    }
}

/// An open-addressing table from a term's hash to its position: the
/// hashes are mixed already, so their low bits pick the slot. At most half
/// full; a slot holds position + 1, 0 when empty. (A binary search over
/// 2^18 terms cost a cache miss per step and a sixth of a Chinese corpus's
/// training time.)
#[derive(Clone, Debug, Default)]
struct TermIndex {
    slots: Vec<u32>,
}

impl TermIndex {
    fn new(terms: &[u64]) -> Self {
        let mut slots = vec![0u32; (terms.len() * 2).next_power_of_two().max(2)];
        let mask = slots.len() - 1;
        for (i, &t) in terms.iter().enumerate() {
            let mut at = t as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = i as u32 + 1;
        }
        Self { slots }
    }

    fn find(&self, terms: &[u64], hash: u64) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            match self.slots[at] {
                0 => return None,
                i if terms[i as usize - 1] == hash => return Some(i as usize - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }
}

/// Hashes a key that is a well-mixed 64-bit hash already by taking it as it
/// is (for maps keyed by n-gram hashes, which SipHash would slow).
#[derive(Default)]
struct Premixed(u64);

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.0 = self.0.rotate_left(8) ^ b as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The buffers [`TextEncoder::features`] reuses between rows.
#[derive(Default)]
pub struct TextScratch {
    lowered: String,
    hashes: Vec<u64>,
    /// Whether each token is the one space between pieces (characters).
    spaces: Vec<bool>,
}

impl TextEncoder {
    /// An encoder for `column`; `buckets` must be a power of two in
    /// [`MIN_TEXT_BUCKETS`]..=[`MAX_TEXT_BUCKETS`].
    pub fn new(column: String, tokenizer: Tokenizer, ngrams: NgramRange, buckets: usize) -> Result<Self, DataError> {
        check_text_buckets(buckets)?;
        Ok(Self { column, tokenizer, ngrams, buckets, vocabulary: None })
    }

    /// The sparse inputs it writes per row: the buckets, or the vocabulary's n-grams.
    pub fn width(&self) -> usize {
        self.vocabulary.as_ref().map_or(self.buckets, |v| v.terms.len())
    }

    /// Calls `f` with the 64-bit hash of each n-gram of `text`, in order.
    fn each_ngram(&self, text: &str, scratch: &mut TextScratch, mut f: impl FnMut(u64)) {
        let TextScratch { lowered, hashes, spaces } = scratch;
        hashes.clear();
        spaces.clear();
        self.tokenizer.visit(text, lowered, |t| {
            hashes.push(fnv1a(t));
            spaces.push(t == b" ");
        });
        self.each_window(hashes, spaces, |h, _| f(h));
    }

    /// Calls `f` with the hash of each n-gram of the tokens whose hashes are
    /// `hashes` and the tokens it spans, skipping those all of white space
    /// (`spaces`: the one space between pieces, with characters), which say
    /// nothing.
    fn each_window(&self, hashes: &[u64], spaces: &[bool], mut f: impl FnMut(u64, std::ops::Range<usize>)) {
        for n in self.ngrams.low..=self.ngrams.high {
            for (i, window) in hashes.windows(n).enumerate() {
                if !spaces[i..i + n].iter().all(|&s| s) {
                    f(ngram_hash(window), i..i + n);
                }
            }
        }
    }

    /// Fits a vocabulary on `texts` (the training rows): the n-grams in at
    /// least `min_df` of them, the `max_features` in most (ties by hash).
    /// None left is an error naming the column.
    pub fn fit_vocabulary<'a>(
        &mut self,
        texts: impl IntoIterator<Item = &'a str>,
        min_df: usize,
        max_features: usize,
        source: &str,
    ) -> Result<(), DataError> {
        let texts: Vec<&str> = texts.into_iter().collect();
        // Per n-gram: the rows it is in, the last row counted (plus one), its tokens.
        type Counts = std::collections::HashMap<u64, (u32, u32, u8), std::hash::BuildHasherDefault<Premixed>>;
        let mut df = Counts::default();
        let mut scratch = TextScratch::default();
        for (row, &text) in texts.iter().enumerate() {
            let stamp = row as u32 + 1;
            let TextScratch { lowered, hashes, spaces } = &mut scratch;
            hashes.clear();
            spaces.clear();
            self.tokenizer.visit(text, lowered, |t| {
                hashes.push(fnv1a(t));
                spaces.push(t == b" ");
            });
            self.each_window(hashes, spaces, |h, span| {
                let entry = df.entry(h).or_insert((0, 0, span.len() as u8));
                if entry.1 != stamp {
                    (entry.0, entry.1) = (entry.0 + 1, stamp);
                }
            });
        }
        let n = texts.len();
        let mut kept: Vec<(u64, u32, u8)> = df
            .into_iter()
            .filter(|&(_, (d, _, _))| d as usize >= min_df.max(1))
            .map(|(h, (d, _, order))| (h, d, order))
            .collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        kept.truncate(max_features);
        if kept.is_empty() {
            return Err(DataError::invalid(
                "--min-df",
                format!("{source}: no n-gram of column '{}' is in {min_df} or more rows", self.column),
            ));
        }
        kept.sort_unstable_by_key(|k| k.0);
        let idf = |d: u32| (((1 + n) as f64 / (1 + d as usize) as f64).ln() + 1.0) as f32;
        let mut vocabulary = Vocabulary::new(kept.iter().map(|k| k.0).collect(), Vec::new(), min_df, Vec::new());
        // Each kept n-gram's text, from the first row that has it: the
        // row's tokens one after another in `bytes`, token `t` ending at `ends[t]`.
        let mut ngrams = vec![String::new(); vocabulary.terms.len()];
        let (mut bytes, mut ends, mut hashes, mut spaces) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let joiner = if self.tokenizer.analyzer == Analyzer::Words { " " } else { "" };
        for &text in &texts {
            bytes.clear();
            ends.clear();
            hashes.clear();
            spaces.clear();
            self.tokenizer.visit(text, &mut scratch.lowered, |t| {
                bytes.extend_from_slice(t);
                ends.push(bytes.len());
                hashes.push(fnv1a(t));
                spaces.push(t == b" ");
            });
            self.each_window(&hashes, &spaces, |h, span| {
                if let Some(at) = vocabulary.position(h)
                    && ngrams[at].is_empty()
                {
                    let token = |t: usize| {
                        let start = if t == 0 { 0 } else { ends[t - 1] };
                        String::from_utf8_lossy(&bytes[start..ends[t]])
                    };
                    ngrams[at] = span.map(token).collect::<Vec<_>>().join(joiner);
                }
            });
        }
        vocabulary.ngrams = ngrams;
        vocabulary.orders = kept.iter().map(|k| k.2).collect();
        vocabulary.idf = kept.iter().map(|k| idf(k.1)).collect();
        self.vocabulary = Some(std::sync::Arc::new(vocabulary));
        Ok(())
    }

    /// This encoder with a vocabulary of only the n-grams of at most
    /// `longest` tokens, and of them the `most` in most rows (ties by hash),
    /// as fitting with that n-gram range and `max_features` would have made
    /// it (the same rows, so the same IDF, unless this vocabulary had cut
    /// them already); and for each of this encoder's inputs, its input in
    /// the narrower one, `u32::MAX` where it has none. An error for a
    /// hashing encoder, for a vocabulary that does not know its n-grams'
    /// lengths (a model file made before they were kept), and for `longest`
    /// below the range's low end.
    pub fn narrowed(&self, longest: usize, most: usize) -> Result<(TextEncoder, Vec<u32>), DataError> {
        let column = &self.column;
        let Some(v) = &self.vocabulary else {
            return Err(DataError::invalid(
                "text_ngrams",
                format!("column '{column}' is hashed (--text-features hashing): no vocabulary to narrow"),
            ));
        };
        if v.orders.len() != v.terms.len() {
            return Err(DataError::invalid(
                "text_ngrams",
                format!("the vocabulary of column '{column}' does not record its n-grams' lengths"),
            ));
        }
        if longest < self.ngrams.low || most == 0 {
            return Err(DataError::invalid(
                "text_ngrams",
                format!(
                    "column '{column}' reads {}-grams: cannot keep its n-grams of at most {longest} tokens, {most} of them",
                    self.ngrams
                ),
            ));
        }
        let mut kept: Vec<usize> = (0..v.terms.len()).filter(|&i| v.orders[i] as usize <= longest).collect();
        // Most rows first: the smallest IDF.
        kept.sort_unstable_by(|&a, &b| v.idf[a].total_cmp(&v.idf[b]).then(v.terms[a].cmp(&v.terms[b])));
        kept.truncate(most);
        kept.sort_unstable();
        let mut map = vec![u32::MAX; v.terms.len()];
        kept.iter().enumerate().for_each(|(new, &old)| map[old] = new as u32);
        fn pick<T: Clone>(values: &[T], kept: &[usize]) -> Vec<T> {
            kept.iter().map(|&i| values[i].clone()).collect()
        }
        let mut narrow = Vocabulary::new(pick(&v.terms, &kept), pick(&v.idf, &kept), v.min_df, Vec::new());
        narrow.orders = pick(&v.orders, &kept);
        if !v.ngrams.is_empty() {
            narrow.ngrams = pick(&v.ngrams, &kept);
        }
        let encoder = TextEncoder {
            ngrams: NgramRange { low: self.ngrams.low, high: longest.min(self.ngrams.high) },
            vocabulary: Some(std::sync::Arc::new(narrow)),
            ..self.clone()
        };
        Ok((encoder, map))
    }

    /// The text of input `i` (of [`Self::width`]): the vocabulary's n-gram,
    /// or `None` with the hashing trick, which keeps none.
    pub fn ngram(&self, i: usize) -> Option<&str> {
        self.vocabulary.as_ref().and_then(|v| v.ngrams.get(i)).map(String::as_str)
    }

    /// The features of `text` as (input, value) entries with columns
    /// offset by `offset`, appended to `out`; none for a text without tokens.
    pub fn features(&self, text: &str, offset: u32, scratch: &mut TextScratch, out: &mut Vec<(u32, f32)>) {
        let start = out.len();
        let mask = (self.buckets - 1) as u64;
        match &self.vocabulary {
            None => self.each_ngram(text, scratch, |h| {
                let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
                out.push((offset + (h & mask) as u32, sign));
            }),
            Some(v) => self.each_ngram(text, scratch, |h| {
                if let Some(i) = v.position(h) {
                    out.push((offset + i as u32, 1.0));
                }
            }),
        }
        // Counts per bucket (signed), then the weighting and the norm.
        let entries = &mut out[start..];
        entries.sort_unstable_by_key(|e| e.0);
        let mut merged = start;
        for i in start..out.len() {
            if merged > start && out[merged - 1].0 == out[i].0 {
                out[merged - 1].1 += out[i].1;
            } else {
                out[merged] = out[i];
                merged += 1;
            }
        }
        out.truncate(merged);
        let mut kept = start;
        for i in start..out.len() {
            if out[i].1 != 0.0 {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
        let entries = &mut out[start..];
        for e in entries.iter_mut() {
            e.1 = e.1.signum() * (1.0 + e.1.abs().ln());
        }
        if let Some(v) = &self.vocabulary {
            entries.iter_mut().for_each(|e| e.1 *= v.idf[(e.0 - offset) as usize]);
        }
        let norm = entries.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt();
        if norm > 0.0 {
            entries.iter_mut().for_each(|e| e.1 /= norm);
        }
    }

    /// A line for `inspect`: how the column is read.
    pub fn describe(&self) -> String {
        let t = &self.tokenizer;
        let mut strip = Vec::new();
        if t.strip_urls {
            strip.push("URLs");
        }
        if t.strip_mentions {
            strip.push("@mentions");
        }
        if t.strip_numbers {
            strip.push("numbers");
        }
        let inputs = match &self.vocabulary {
            None => format!("hashed into {} signed buckets", self.buckets),
            Some(v) => format!("a vocabulary of {} (in {} rows or more), TF-IDF", v.terms.len(), v.min_df),
        };
        format!(
            "text: {} {}-grams{}{}, {inputs}, sublinear term frequency, rows of unit length",
            if t.analyzer == Analyzer::Words { "word" } else { "character" },
            self.ngrams,
            if t.lowercase { ", lowered" } else { "" },
            if strip.is_empty() { String::new() } else { format!(", without {}", strip.join(", ")) },
        )
    }
}

/// The hash buckets a text column gets unless told otherwise: 2¹⁸.
pub const DEFAULT_TEXT_BUCKETS: usize = 1 << 18;

/// The rows an n-gram must be in to join a vocabulary unless told otherwise.
pub const DEFAULT_MIN_DF: usize = 2;
/// The most n-grams a vocabulary keeps unless told otherwise: 2¹⁸.
pub const DEFAULT_MAX_FEATURES: usize = 1 << 18;

/// How text columns are read, as the user gave it: each `None` is chosen
/// per column (the analyzer by the script, the n-grams by the analyzer) or
/// takes its default.
///
/// By default each column gets a vocabulary of its training rows' n-grams
/// weighted by TF-IDF (scikit-learn's TfidfVectorizer); with `hashing`,
/// the hashing trick, which fits nothing (HashingVectorizer). On the bench
/// split of the tweets, a softmax regression of 5 epochs scored 75.2% on
/// the vocabulary's inputs and 74.8% on the buckets; on the Chinese
/// reviews, 96.3% and 96.1% (BENCHMARKS.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextOptions {
    pub analyzer: Option<Analyzer>,
    pub ngrams: Option<NgramRange>,
    /// The hashing trick instead of a vocabulary.
    pub hashing: bool,
    /// With `hashing`: the buckets of each column.
    pub buckets: Option<usize>,
    /// Without `hashing`: the rows an n-gram must be in, and the most kept.
    pub min_df: Option<usize>,
    pub max_features: Option<usize>,
    pub strip_urls: bool,
    pub strip_mentions: bool,
    pub strip_numbers: bool,
}

impl TextOptions {
    /// The encoder of the free-text `column`, its analyzer chosen from the
    /// rows at `rows` (all, for `None`). A column with no text in any of
    /// them, or no token in any text, is an error naming it.
    pub fn fit(&self, column: &Column, rows: Option<&[usize]>, source: &str) -> Result<TextEncoder, DataError> {
        let n = rows.map_or(column.values.len(), <[usize]>::len);
        let texts: Vec<std::borrow::Cow<'_, str>> =
            (0..n).filter_map(|i| crate::encode::cell_str(column, rows.map_or(i, |r| r[i]))).collect();
        let empty = |what: &str| {
            DataError::invalid(
                "text column",
                format!("{source}: column '{}' is read as text but {what} in every row", column.name),
            )
        };
        if texts.iter().all(|t| t.trim().is_empty()) {
            return Err(empty("is empty"));
        }
        let analyzer = self.analyzer.unwrap_or_else(|| Analyzer::for_texts(texts.iter().map(|t| t.as_ref())));
        let tokenizer = Tokenizer {
            strip_urls: self.strip_urls,
            strip_mentions: self.strip_mentions,
            strip_numbers: self.strip_numbers,
            ..Tokenizer::new(analyzer)
        };
        let mut tokens = Vec::new();
        if !texts.iter().any(|t| {
            tokenizer.tokens(t, &mut tokens);
            !tokens.is_empty()
        }) {
            return Err(empty("has no word"));
        }
        let ngrams = self.ngrams.unwrap_or(analyzer.default_ngrams());
        let mut encoder =
            TextEncoder::new(column.name.clone(), tokenizer, ngrams, self.buckets.unwrap_or(DEFAULT_TEXT_BUCKETS))?;
        if !self.hashing {
            let (min_df, max_features) =
                (self.min_df.unwrap_or(DEFAULT_MIN_DF), self.max_features.unwrap_or(DEFAULT_MAX_FEATURES));
            encoder.fit_vocabulary(texts.iter().map(|t| t.as_ref()), min_df, max_features, source)?;
        }
        Ok(encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(tokenizer: &Tokenizer, text: &str) -> Vec<String> {
        let mut out = vec!["left over".to_string()];
        tokenizer.tokens(text, &mut out);
        out
    }

    #[test]
    fn words_are_cut_at_unicode_word_boundaries() {
        let words = Tokenizer::new(Analyzer::Words);
        let stripping = Tokenizer {
            strip_urls: true,
            strip_mentions: true,
            strip_numbers: true,
            ..Tokenizer::new(Analyzer::Words)
        };
        #[rustfmt::skip]
        let cases: &[(&Tokenizer, &str, &[&str])] = &[
            (&words, "", &[]),
            (&words, "   \t\r\n ", &[]),
            (&words, "Hello, World!", &["hello", "world"]),
            (&words, "I don't trust it... can't, won't.", &["i", "don't", "trust", "it", "can't", "won't"]),
            (&words, "It’s fine", &["it’s", "fine"]),
            (&words, "costs 3.50 dollars, 1,000 times", &["costs", "3.50", "dollars", "1,000", "times"]),
            (&words, "#driverless cars_ no", &["driverless", "cars_", "no"]),
            (&words, "great 😀 day 👍🏽!", &["great", "😀", "day", "👍🏽"]),
            (&words, "see https://t.co/x1 now", &["see", "https", "t.co", "x1", "now"]),
            (&stripping, "see https://t.co/x1 now www.a.com", &["see", "now"]),
            (&stripping, "@united thanks @ you", &["thanks", "you"]),
            (&stripping, "I paid 300 for 2 seats in 2015", &["i", "paid", "for", "seats", "in"]),
            (&words, "hp的这款机 OK", &["hp", "的", "这", "款", "机", "ok"]),
            (&words, "ÉCOLE Straße", &["école", "straße"]),
        ];
        for (tokenizer, text, want) in cases {
            assert_eq!(tokens(tokenizer, text), *want, "{text:?}");
        }
    }

    #[test]
    fn characters_keep_every_character_and_one_space_between_pieces() {
        let chars = Tokenizer::new(Analyzer::Chars);
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("好书", &["好", "书"]),
            ("不错  OK!", &["不", "错", " ", "o", "k", "!"]),
            (" 酒店\r\n很好 ", &["酒", "店", " ", "很", "好"]),
        ];
        for (text, want) in cases {
            assert_eq!(tokens(&chars, text), *want, "{text:?}");
        }
    }

    #[test]
    fn the_analyzer_follows_the_script() {
        assert_eq!(Analyzer::for_texts(["这本书很好看", "hp的这款机不错"]), Analyzer::Chars);
        assert_eq!(Analyzer::for_texts(["日本語のテキスト"]), Analyzer::Chars);
        assert_eq!(Analyzer::for_texts(["a fine book", "won't buy 好"]), Analyzer::Words);
        assert_eq!(Analyzer::for_texts(["한국어 텍스트"]), Analyzer::Words);
        assert_eq!(Analyzer::for_texts([""]), Analyzer::Words);
    }

    #[test]
    fn ngram_ranges_parse_and_bad_ones_are_errors() {
        assert_eq!("1-2".parse::<NgramRange>().unwrap(), NgramRange { low: 1, high: 2 });
        assert_eq!("3".parse::<NgramRange>().unwrap(), NgramRange { low: 3, high: 3 });
        for bad in ["2-1", "0-2", "1-9", "a-b", "", "1-"] {
            let err = bad.parse::<NgramRange>().unwrap_err().to_string();
            assert!(err.contains("--ngram"), "{bad}: {err}");
        }
        assert!("3-1".parse::<NgramRange>().unwrap_err().to_string().contains("LOW <= HIGH"));
    }

    fn encoder(analyzer: Analyzer, ngrams: &str) -> TextEncoder {
        TextEncoder::new("text".into(), Tokenizer::new(analyzer), ngrams.parse().unwrap(), 1 << 18).unwrap()
    }

    fn features(e: &TextEncoder, text: &str) -> Vec<(u32, f32)> {
        let mut out = Vec::new();
        e.features(text, 0, &mut TextScratch::default(), &mut out);
        out
    }

    #[test]
    fn a_vocabulary_finds_each_term_and_nothing_else() {
        // Hashes whose low bits collide, so that the probing is exercised.
        let terms: Vec<u64> = (0..1000u64).map(|i| (i << 40) | (i % 7)).collect();
        let v = Vocabulary::new(terms.clone(), vec![1.0; terms.len()], 1, Vec::new());
        for (i, &t) in terms.iter().enumerate() {
            assert_eq!(v.position(t), Some(i));
            assert_eq!(v.position(t + (1 << 20)), None);
        }
        // Read back from a model file, it finds them the same way.
        let back: Vocabulary = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        assert!(terms.iter().enumerate().all(|(i, &t)| back.position(t) == Some(i)));
    }

    #[test]
    fn hashing_is_stable_across_runs_and_platforms() {
        // Pinned values (this implementation's first output; FNV-1a of "a" is
        // the published test vector): a change of tokens, hash or mixing
        // changes them, and with them every saved text model's meaning.
        let words = encoder(Analyzer::Words, "1-2");
        let got: Vec<u32> = features(&words, "Good movie").iter().map(|e| e.0).collect();
        assert_eq!(got, [117361, 176734, 220782]);
        let chars = encoder(Analyzer::Chars, "1-3");
        let got: Vec<u32> = features(&chars, "好书").iter().map(|e| e.0).collect();
        assert_eq!(got, [15830, 196890, 255620]);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn features_are_signed_sublinear_counts_of_unit_length() {
        let e = encoder(Analyzer::Words, "1-1");
        let f = features(&e, "spam spam spam eggs");
        assert_eq!(f.len(), 2);
        let norm: f32 = f.iter().map(|e| e.1 * e.1).sum();
        assert!((norm - 1.0).abs() < 1e-6);
        // spam: 1 + ln 3, eggs: 1, before the norm.
        let mut mags: Vec<f32> = f.iter().map(|e| e.1.abs()).collect();
        mags.sort_by(f32::total_cmp);
        assert!((mags[1] / mags[0] - (1.0 + 3f32.ln())).abs() < 1e-5, "{mags:?}");
        assert!(features(&e, "").is_empty());
        assert!(features(&e, " ... !!! ").is_empty());
        // Columns sorted and distinct, offset as asked.
        let mut out = Vec::new();
        e.features("b a c a", 1 << 20, &mut TextScratch::default(), &mut out);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0) && out.iter().all(|e| e.0 >= 1 << 20));
        // Bigrams: "a b" and "b a" differ.
        let bi = encoder(Analyzer::Words, "2-2");
        assert_ne!(features(&bi, "a b"), features(&bi, "b a"));
    }

    #[test]
    fn a_vocabulary_keeps_the_frequent_ngrams_and_weighs_them_by_idf() {
        let mut e = encoder(Analyzer::Words, "1-1");
        let texts = ["good good film", "bad film", "good plot", "rare"];
        e.fit_vocabulary(texts, 2, 10, "t.csv").unwrap();
        // good and film (in 2 rows each) are kept; bad, plot and rare (1 each) are not.
        let v = e.vocabulary.clone().unwrap();
        assert_eq!(v.terms.len(), 2);
        assert_eq!(e.width(), 2);
        // scikit-learn's smooth idf: ln((1 + 4) / (1 + 2)) + 1 for both.
        for idf in &v.idf {
            assert!((idf - ((5.0f32 / 3.0).ln() + 1.0)).abs() < 1e-6);
        }
        // "good good film": good 1 + ln 2, film 1, times the same idf, unit length.
        let f = features(&e, "good good film unseen");
        assert_eq!(f.len(), 2);
        let mut mags: Vec<f32> = f.iter().map(|x| x.1).collect();
        mags.sort_by(f32::total_cmp);
        assert!((mags[1] / mags[0] - (1.0 + 2f32.ln())).abs() < 1e-5, "{mags:?}");
        assert!(features(&e, "nothing known here").is_empty());
        let names: Vec<&str> = (0..2).map(|i| e.ngram(i).unwrap()).collect();
        assert!(names.contains(&"good") && names.contains(&"film"), "{names:?}");
        let mut bigrams = encoder(Analyzer::Words, "2-2");
        bigrams.fit_vocabulary(["Good Film", "good film!"], 2, 10, "t.csv").unwrap();
        assert_eq!(bigrams.ngram(0), Some("good film"));
        let mut chars = encoder(Analyzer::Chars, "1-2");
        chars.fit_vocabulary(["好书", "好书"], 2, 10, "t.csv").unwrap();
        let mut names: Vec<&str> = (0..3).map(|i| chars.ngram(i).unwrap()).collect();
        names.sort();
        assert_eq!(names, ["书", "好", "好书"]);
        // max_features keeps those in most rows; none at all is an error.
        let mut one = encoder(Analyzer::Words, "1-1");
        one.fit_vocabulary(["a b", "a c", "a b"], 1, 1, "t.csv").unwrap();
        assert_eq!(one.vocabulary.as_ref().unwrap().terms, [ngram_hash(&[fnv1a(b"a")])]);
        let err = encoder(Analyzer::Words, "1-1").fit_vocabulary(["x", "y"], 2, 10, "t.csv").unwrap_err();
        assert!(err.to_string().contains("no n-gram of column 'text' is in 2 or more rows"), "{err}");
    }

    #[test]
    fn buckets_must_be_a_power_of_two_in_range() {
        let t = Tokenizer::new(Analyzer::Words);
        for bad in [1000, 1 << 9, 1 << 25] {
            assert!(TextEncoder::new("t".into(), t.clone(), NgramRange { low: 1, high: 1 }, bad).is_err());
        }
    }
}
