//! Token counting with a real tokenizer (OpenAI's o200k, as used by the GPT-4o family): the
//! demo model's exact counts, and the estimate for a reply that ended before its upstream
//! reported usage.

use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

/// Loads the tokenizer's tables now (about 0.2 s in a release build, some 30 MB). The server
/// loads them on first need, the first count; benchmarks call this to time counting alone.
pub fn warm_up() {
    let _ = bpe().encode_ordinary("warm up");
}

/// Tokens of `text`. BPE merging costs more than the length of a pre-token, so a long text is
/// counted in slices (each on its own): cut before a space that starts a word, where the count
/// is exact, and inside a run with no such place (one letter repeated, a 99,000-character
/// "word", unspaced CJK) every [`RUN_SLICE_BYTES`], where it is an estimate off by about a
/// token a cut. Measured on one letter repeated 99,000 times: 22 ms whole, 11 ms in slices
/// (the robustness benchmark).
pub fn count(text: &str) -> i64 {
    slices(text)
        .map(|slice| bpe().encode_ordinary(slice).len() as i64)
        .sum()
}

/// Text up to this long is counted at once.
const SLICE_BYTES: usize = 4096;
/// A run without a word boundary is cut this often.
const RUN_SLICE_BYTES: usize = 1024;

/// `text` in slices of at most [`SLICE_BYTES`], each cut where the count stays exact if the
/// window has such a place.
fn slices(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= SLICE_BYTES {
            return Some(std::mem::take(&mut rest));
        }
        let bytes = rest.as_bytes();
        // The last " x" after a non-space in the window: the space starts the next pre-token.
        let word_cut = (1..SLICE_BYTES).rev().find(|&i| {
            bytes[i] == b' '
                && !bytes[i - 1].is_ascii_whitespace()
                && !bytes[i + 1].is_ascii_whitespace()
        });
        let cut = word_cut.unwrap_or_else(|| {
            let mut at = RUN_SLICE_BYTES;
            while !rest.is_char_boundary(at) {
                at -= 1;
            }
            at
        });
        let (head, tail) = rest.split_at(cut);
        rest = tail;
        Some(head)
    })
}

/// Prompt tokens of a chat request, counted the way OpenAI documents for its chat models:
/// three tokens of framing per message, the role and content, and three to prime the reply.
pub fn count_chat<'a>(messages: impl IntoIterator<Item = (&'a str, &'a str)>) -> i64 {
    messages
        .into_iter()
        .map(|(role, content)| 3 + count(role) + count(content))
        .sum::<i64>()
        + 3
}

/// The text split into its tokens, each as the string it decodes to. A character split
/// across two tokens is carried over to the token that completes it.
pub fn split(text: &str) -> Vec<String> {
    let bpe = bpe();
    let mut pieces = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for token in bpe.encode_ordinary(text) {
        if let Ok(bytes) = bpe.decode_bytes(&[token]) {
            pending.extend(bytes);
        }
        if let Ok(piece) = std::str::from_utf8(&pending) {
            pieces.push(piece.to_string());
            pending.clear();
        }
    }
    if !pending.is_empty() {
        pieces.push(String::from_utf8_lossy(&pending).into_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_counts_the_same_in_slices() {
        let paragraph = "Tokenmeter counts every token: prompts, replies, and the 12,345 \
            numbers in between. Don't forget punctuation!? Or `code_blocks()`, URLs like \
            https://example.com/a?b=c, and newlines.\n\n  Indented lines,\ttabs, émigré \
            words, 漢字 and emoji 🎉 too. ";
        let text = paragraph.repeat(200);
        assert!(text.len() > 10 * SLICE_BYTES);
        assert_eq!(count(&text), bpe().encode_ordinary(&text).len() as i64);
        assert_eq!(slices(&text).map(str::len).sum::<usize>(), text.len());
    }

    #[test]
    fn long_runs_are_cut_and_stay_close() {
        for text in ["a".repeat(99_000), "字".repeat(30_000), "🎉".repeat(20_000)] {
            let sliced = count(&text);
            let whole = bpe().encode_ordinary(&text).len() as i64;
            assert!(slices(&text).all(|s| s.len() <= SLICE_BYTES));
            let cuts = (text.len() / RUN_SLICE_BYTES) as i64;
            assert!((sliced - whole).abs() <= cuts + 1, "{sliced} vs {whole}");
        }
    }

    #[test]
    fn counts_with_the_real_tokenizer() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 1);
        assert!(count("The quick brown fox jumps over the lazy dog.") >= 9);
        assert_eq!(count_chat([("user", "hello")]), 3 + 1 + 1 + 3);
    }

    #[test]
    fn splitting_keeps_every_character() {
        for text in ["hello world", "héllo — 世界 🎉 `code`", ""] {
            let pieces = split(text);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.len() as i64 <= count(text));
        }
    }
}
