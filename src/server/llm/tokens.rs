//! Token counting with a real tokenizer (OpenAI's o200k, as used by the GPT-4o family): the
//! demo model's exact counts, and the estimate for a reply that ended before its upstream
//! reported usage.

use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::o200k_base_singleton()
}

/// Loads the tokenizer's tables (about a second) so the first chat does not wait for it.
pub fn warm_up() {
    let _ = bpe().encode_ordinary("warm up");
}

pub fn count(text: &str) -> i64 {
    bpe().encode_ordinary(text).len() as i64
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
