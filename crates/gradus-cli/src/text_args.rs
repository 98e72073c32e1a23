//! The flags that say how text columns are read, shared by `train` and `tune`.

use clap::Args;
use gradus::data::{Analyzer, NgramRange, TextOptions};

#[derive(Args, Clone, Debug, Default)]
pub struct TextArgs {
    /// Text columns: cut into words (Unicode word boundaries) or chars
    /// [default: chars when most letters are Chinese or Japanese, else words].
    #[arg(long, value_parser = parse_tokens, value_name = "words|chars")]
    tokens: Option<Analyzer>,
    /// Text columns: the n-gram orders taken, LOW-HIGH [default: 1-2 for
    /// words, 1-3 for chars].
    #[arg(long, value_parser = parse_ngram, value_name = "LOW-HIGH")]
    ngram: Option<NgramRange>,
    /// Text columns: vocabulary (the training rows' n-grams, weighted by
    /// TF-IDF) or hashing (each n-gram into one of --text-buckets, nothing
    /// fitted) [default: vocabulary].
    #[arg(long, value_parser = ["vocabulary", "hashing"], value_name = "HOW")]
    text_features: Option<String>,
    /// Text with hashing: the buckets of each column, a power of two from 1024
    /// (2^10) to 16777216 (2^24) [default: 262144 = 2^18].
    #[arg(long, value_name = "N")]
    text_buckets: Option<usize>,
    /// Text with a vocabulary: keep the n-grams in at least this many training rows [default: 2].
    #[arg(long, value_name = "N")]
    min_df: Option<usize>,
    /// Text with a vocabulary: keep at most this many n-grams, those in most rows [default: 262144].
    #[arg(long, value_name = "N")]
    max_features: Option<usize>,
    /// Text columns: leave these out, comma-separated: urls, mentions (@name), numbers.
    #[arg(long, value_delimiter = ',', value_parser = ["urls", "mentions", "numbers"], value_name = "WHAT,...")]
    strip: Vec<String>,
}

impl TextArgs {
    /// Whether any flag was given.
    pub fn given(&self) -> bool {
        self.tokens.is_some()
            || self.ngram.is_some()
            || self.text_buckets.is_some()
            || !self.strip.is_empty()
            || self.text_features.is_some()
            || self.min_df.is_some()
            || self.max_features.is_some()
    }

    /// That the flags are given only where there is text to read: `data`
    /// has text columns when `has_text`; `hint` says where else text comes from.
    pub fn check_applies(&self, has_text: bool, data: &str, hint: &str) -> anyhow::Result<()> {
        if self.given() && !has_text {
            anyhow::bail!(
                "--tokens, --ngram, --strip, --text-features, --text-buckets, --min-df and --max-features say how \
                 text columns are read; {data} has none (a column of long, mostly distinct values{hint})"
            );
        }
        Ok(())
    }

    pub fn options(&self) -> anyhow::Result<TextOptions> {
        if let Some(b) = self.text_buckets
            && gradus::data::check_text_buckets(b).is_err()
        {
            anyhow::bail!("invalid --text-buckets {b}: a power of two from 1024 (2^10) to 16777216 (2^24)");
        }
        let hashing = self.text_features.as_deref() == Some("hashing");
        if hashing && (self.min_df.is_some() || self.max_features.is_some()) {
            anyhow::bail!("--min-df and --max-features apply to a vocabulary, not --text-features hashing");
        }
        if !hashing && self.text_buckets.is_some() {
            anyhow::bail!("--text-buckets applies to --text-features hashing (a vocabulary's size is --max-features)");
        }
        if self.min_df == Some(0) || self.max_features == Some(0) {
            anyhow::bail!("--min-df and --max-features must be at least 1");
        }
        let strip = |what: &str| self.strip.iter().any(|s| s == what);
        Ok(TextOptions {
            analyzer: self.tokens,
            ngrams: self.ngram,
            buckets: self.text_buckets,
            hashing,
            min_df: self.min_df,
            max_features: self.max_features,
            strip_urls: strip("urls"),
            strip_mentions: strip("mentions"),
            strip_numbers: strip("numbers"),
        })
    }
}

fn parse_tokens(name: &str) -> Result<Analyzer, String> {
    name.parse().map_err(|e: gradus::data::DataError| e.to_string())
}

fn parse_ngram(text: &str) -> Result<NgramRange, String> {
    text.parse().map_err(|e: gradus::data::DataError| e.to_string())
}
