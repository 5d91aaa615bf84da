//! Token counting with a real tokenizer (OpenAI's o200k, as used by the GPT-4o family): the
//! demo model's exact counts, and the estimate for a reply that ended before its upstream
//! reported usage.
//!
//! The tables are kept compact: every token's bytes in one buffer, and a hash table of ranks
//! keyed by those bytes. `tiktoken-rs` keeps two hash maps of 200,000 separately allocated
//! byte vectors, a sorted copy and 128 copies of its pattern (about 30 MB once used); it is
//! used here only to read OpenAI's vocabulary once and is dropped right after. The counting
//! (pre-tokenizing with o200k's own pattern, then byte-pair merging by rank) is the same as
//! tiktoken's; the tests compare the two on varied texts.

use fancy_regex::Regex;
use hashbrown::HashTable;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

type Rank = u32;

/// The o200k vocabulary and pattern.
struct Vocab {
    /// Every token's bytes, by rank, back to back.
    bytes: Box<[u8]>,
    /// Where each rank's bytes end in `bytes` (they start where the previous rank's end).
    ends: Box<[u32]>,
    /// Ranks, found by their bytes.
    index: HashTable<Rank>,
    hasher: hashbrown::DefaultHashBuilder,
    pattern: Regex,
}

/// Ranks above o200k's ordinary vocabulary (its special tokens) are never produced by counting.
const VOCABULARY: Rank = 199_998;

impl Vocab {
    fn load() -> Vocab {
        let bpe = tiktoken_rs::o200k_base().expect("the o200k vocabulary bundled with tiktoken-rs");
        let mut bytes = Vec::with_capacity(1 << 21);
        let mut ends = Vec::with_capacity(VOCABULARY as usize);
        for rank in 0..VOCABULARY {
            bytes.extend(
                bpe.decode_bytes(&[rank])
                    .expect("o200k's ranks are contiguous"),
            );
            ends.push(u32::try_from(bytes.len()).expect("the vocabulary is under 4 GiB"));
        }
        drop(bpe);
        let mut vocab = Vocab {
            bytes: bytes.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
            index: HashTable::with_capacity(VOCABULARY as usize),
            hasher: hashbrown::DefaultHashBuilder::default(),
            pattern: Regex::new(tiktoken_rs::O200K_BASE_PAT_STR).expect("o200k's pattern"),
        };
        for rank in 0..VOCABULARY {
            let hash = vocab.hasher.hash_one(vocab.token(rank));
            let Vocab {
                index,
                hasher,
                bytes,
                ends,
                ..
            } = &mut vocab;
            index.insert_unique(hash, rank, |&r| {
                hasher.hash_one(token_bytes(bytes, ends, r))
            });
        }
        release_freed_memory();
        vocab
    }

    fn token(&self, rank: Rank) -> &[u8] {
        token_bytes(&self.bytes, &self.ends, rank)
    }

    fn rank(&self, piece: &[u8]) -> Option<Rank> {
        let hash = self.hasher.hash_one(piece);
        self.index
            .find(hash, |&rank| self.token(rank) == piece)
            .copied()
    }

    /// Where `piece`'s tokens start (and, last, its length): byte-pair merging by rank, as
    /// tiktoken does it.
    fn merge(&self, piece: &[u8], bounds: &mut Vec<usize>) {
        bounds.clear();
        if piece.len() < 100 {
            self.merge_small(piece, bounds);
        } else {
            self.merge_large(piece, bounds);
        }
    }

    /// A short piece: a vector of (start, rank of the pair starting there), the lowest merged
    /// first. O(n·m), which beats a heap at these lengths.
    fn merge_small(&self, piece: &[u8], bounds: &mut Vec<usize>) {
        let none = Rank::MAX;
        let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(piece.len() + 1);
        for i in 0..piece.len() - 1 {
            parts.push((i, self.rank(&piece[i..i + 2]).unwrap_or(none)));
        }
        parts.push((piece.len() - 1, none));
        parts.push((piece.len(), none));
        let rank_at = |parts: &[(usize, Rank)], i: usize| {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
                    .unwrap_or(none)
            } else {
                none
            }
        };
        while let Some((i, _)) = parts[..parts.len() - 1]
            .iter()
            .enumerate()
            .filter(|(_, &(_, rank))| rank != none)
            .min_by_key(|&(i, &(_, rank))| (rank, i))
        {
            if i > 0 {
                parts[i - 1].1 = rank_at(&parts, i - 1);
            }
            parts[i].1 = rank_at(&parts, i);
            parts.remove(i + 1);
        }
        bounds.extend(parts.iter().map(|&(start, _)| start));
    }

    /// A long piece: a heap of candidate merges over a linked list of tokens, O(m·log n).
    fn merge_large(&self, piece: &[u8], bounds: &mut Vec<usize>) {
        struct Node {
            prev: usize,
            end: usize,
            next_end: usize,
            next_rank: Rank,
        }
        #[derive(PartialEq, Eq)]
        struct Merge {
            start: usize,
            rank: Rank,
        }
        impl Ord for Merge {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                // The lowest rank first, then the leftmost: BinaryHeap pops the greatest.
                other
                    .rank
                    .cmp(&self.rank)
                    .then_with(|| other.start.cmp(&self.start))
            }
        }
        impl PartialOrd for Merge {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        let none = Rank::MAX;
        let len = piece.len();
        let mut nodes: Vec<Node> = (0..len)
            .map(|i| Node {
                prev: i.wrapping_sub(1),
                end: i + 1,
                next_end: i + 2,
                next_rank: none,
            })
            .collect();
        let mut heap = BinaryHeap::with_capacity(len);
        for i in 0..len - 1 {
            if let Some(rank) = self.rank(&piece[i..i + 2]) {
                heap.push(Merge { start: i, rank });
                nodes[i].next_rank = rank;
            }
        }
        let candidate =
            |nodes: &mut [Node], heap: &mut BinaryHeap<Merge>, start: usize, next_end: usize| {
                nodes[start].next_end = next_end;
                nodes[start].next_rank = none;
                if next_end <= len {
                    if let Some(rank) = self.rank(&piece[start..next_end]) {
                        heap.push(Merge { start, rank });
                        nodes[start].next_rank = rank;
                    }
                }
            };
        while let Some(left) = heap.pop() {
            if left.rank != nodes[left.start].next_rank {
                continue; // outdated by a merge since
            }
            let left_start = left.start;
            let right_start = nodes[left_start].end;
            let right_end = nodes[left_start].next_end;
            let right_next_end = nodes[right_start].next_end;
            nodes[left_start].end = right_end;
            candidate(&mut nodes, &mut heap, left_start, right_next_end);
            if right_end < len {
                nodes[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = nodes[left_start].prev;
                candidate(&mut nodes, &mut heap, prev_start, right_end);
            }
            nodes[right_start].next_rank = none;
        }
        let mut i = 0;
        while i < len {
            bounds.push(i);
            i = nodes[i].end;
        }
        bounds.push(len);
    }

    /// Calls `each` with every token of `text`, as its bytes.
    fn for_each_token(&self, text: &str, mut each: impl FnMut(&[u8])) {
        let mut bounds = Vec::new();
        PATTERN.with(|pattern| {
            for found in pattern.find_iter(text) {
                // o200k's pattern has no construct that can fail at run time (no backtracking
                // limit is reached by a lookahead of one character).
                let Ok(found) = found else { continue };
                let piece = found.as_str().as_bytes();
                if self.rank(piece).is_some() {
                    each(piece);
                    continue;
                }
                self.merge(piece, &mut bounds);
                for pair in bounds.windows(2) {
                    each(&piece[pair[0]..pair[1]]);
                }
            }
        });
    }

    fn count(&self, text: &str) -> usize {
        let mut n = 0;
        self.for_each_token(text, |_| n += 1);
        n
    }
}

fn token_bytes<'a>(bytes: &'a [u8], ends: &[u32], rank: Rank) -> &'a [u8] {
    let end = ends[rank as usize] as usize;
    let start = if rank == 0 {
        0
    } else {
        ends[rank as usize - 1] as usize
    };
    &bytes[start..end]
}

/// Gives the pages freed by reading the vocabulary (tens of MB in 400,000 small allocations)
/// back to the system.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

thread_local! {
    /// This thread's copy of the pattern: threads sharing one contend for its scratch space
    /// (tiktoken keeps a copy per thread for the same reason). A handful of threads count.
    static PATTERN: Regex = vocab().pattern.clone();
}

static VOCAB: OnceLock<Vocab> = OnceLock::new();

fn vocab() -> &'static Vocab {
    VOCAB.get_or_init(Vocab::load)
}

/// The size of counting `bytes` of text, for [`crate::server::work::Pool::run_sized`]: the
/// text's length once the tables are loaded; before, unbounded, as the count first loads them
/// (a fifth of a second), which must not happen on an async worker.
pub fn counting_size(bytes: usize) -> usize {
    if VOCAB.get().is_some() {
        bytes
    } else {
        usize::MAX
    }
}

/// Loads the tokenizer's tables now (about 0.2 s in a release build). The server loads them on
/// first need, the first count; benchmarks call this to time counting alone.
pub fn warm_up() {
    vocab();
}

/// Tokens of `text`. BPE merging costs more than the length of a pre-token, so a long text is
/// counted in slices (each on its own): cut before a space that starts a word, where the count
/// is exact, and inside a run with no such place (one letter repeated, a 99,000-character
/// "word", unspaced CJK) every [`RUN_SLICE_BYTES`], where it is an estimate off by about a
/// token a cut. Measured on one letter repeated 99,000 times: 22 ms whole, 11 ms in slices
/// (the robustness benchmark).
pub fn count(text: &str) -> i64 {
    slices(text).map(|slice| vocab().count(slice) as i64).sum()
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
    let mut pieces = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    vocab().for_each_token(text, |token| {
        pending.extend(token);
        if let Ok(piece) = std::str::from_utf8(&pending) {
            pieces.push(piece.to_string());
            pending.clear();
        }
    });
    if !pending.is_empty() {
        pieces.push(String::from_utf8_lossy(&pending).into_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tiktoken's own o200k, the reference.
    fn tiktoken(text: &str) -> Vec<Vec<u8>> {
        let bpe = tiktoken_rs::o200k_base_singleton();
        bpe.encode_ordinary(text)
            .into_iter()
            .map(|rank| bpe.decode_bytes(&[rank]).unwrap())
            .collect()
    }

    fn ours(text: &str) -> Vec<Vec<u8>> {
        let mut tokens = Vec::new();
        vocab().for_each_token(text, |token| tokens.push(token.to_vec()));
        tokens
    }

    #[test]
    fn tokens_are_tiktokens() {
        let fixed = [
            String::new(),
            "hello".into(),
            "Hello, World! It's 2026; we'll see. DON'T SHOUT".into(),
            "  leading and trailing spaces  \n\n\r\n\tend".into(),
            "émigré naïve Ångström ñ ß İstanbul ǅ".into(),
            "漢字かなカナ한국어 العربية עברית हिन्दी ไทย".into(),
            "🎉👩‍👩‍👧‍👦🏳️‍🌈 e\u{301} \u{200b}".into(),
            "fn main() { println!(\"{}\", 1_000_000 / 3.14159); } // <tag attr='x'>".into(),
            "https://example.com/a/b?c=d&e=%20#frag 12345678901234567890".into(),
            "a".repeat(300),
            "abcdefghij".repeat(40),
            "ab1".repeat(150),
            "字".repeat(200),
            "🎉".repeat(60),
            " ".repeat(150) + "x",
            "!?".repeat(120),
        ];
        for text in &fixed {
            assert_eq!(ours(text), tiktoken(text), "{text:?}");
        }
        // Random texts over an alphabet with every kind the pattern tells apart, some with
        // long runs (the heap merge, from 100 bytes).
        let alphabet: Vec<char> = "aAbBzZeé ß0123456789  \t\n\r.,;:!?'\"-_/()[]{}<>@#$%&*+=~\\漢字かナ한🎉\u{301}\u{200b}ǅİ"
            .chars()
            .collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..2_000 {
            let len = if next(10) == 0 {
                100 + next(400)
            } else {
                next(60)
            };
            let run = next(4) == 0;
            let text: String = (0..len)
                .map(|_| alphabet[if run { next(8) } else { next(alphabet.len()) }])
                .collect();
            assert_eq!(ours(&text), tiktoken(&text), "{text:?}");
        }
    }

    #[test]
    fn prose_counts_the_same_in_slices() {
        let paragraph = "Tokenmeter counts every token: prompts, replies, and the 12,345 \
            numbers in between. Don't forget punctuation!? Or `code_blocks()`, URLs like \
            https://example.com/a?b=c, and newlines.\n\n  Indented lines,\ttabs, émigré \
            words, 漢字 and emoji 🎉 too. ";
        let text = paragraph.repeat(200);
        assert!(text.len() > 10 * SLICE_BYTES);
        assert_eq!(count(&text), tiktoken(&text).len() as i64);
        assert_eq!(slices(&text).map(str::len).sum::<usize>(), text.len());
    }

    #[test]
    fn long_runs_are_cut_and_stay_close() {
        for text in ["a".repeat(99_000), "字".repeat(30_000), "🎉".repeat(20_000)] {
            let sliced = count(&text);
            let whole = tiktoken(&text).len() as i64;
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
