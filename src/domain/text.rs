//! Rules for text that comes from outside: PostgreSQL cannot store NUL (U+0000) in `text` or
//! `jsonb`, so input carrying it is refused naming the field (the same on both databases), and
//! text from an upstream reply has it dropped. User-supplied text is cut before it is logged.

use serde_json::Value;
use std::borrow::Cow;

/// The one character the databases refuse in text.
pub const NUL: char = '\0';

/// `text` without NUL characters (no copy when there are none).
pub fn without_nul(text: String) -> String {
    if text.contains(NUL) {
        text.replace(NUL, "")
    } else {
        text
    }
}

/// The path (`messages[0].content`, `title`) of the first string in `value` that holds a NUL,
/// in a key or a value; `None` when there is none.
pub fn nul_path(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains(NUL),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&without_nul(key.clone()));
                let found = key.contains(NUL) || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".into() } else { path })
}

/// The message of a refused NUL: names the field and what to do.
pub fn nul_message(field: &str) -> String {
    format!("{field} must not contain the NUL character (U+0000)")
}

/// At most `max` characters of `text`, with an ellipsis and the full length when cut, for
/// logs and spans (a 2 MB e-mail must not write megabytes to the log).
pub fn for_log(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len())),
    }
}

/// `text` quoted for an error message that echoes input: at most 64 characters of it.
pub fn quoted(text: &str) -> String {
    match text.char_indices().nth(64) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &text[..end], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_dropped_from_replies() {
        assert_eq!(without_nul("a\0b\0".into()), "ab");
        assert_eq!(without_nul("plain".into()), "plain");
        assert_eq!(without_nul(String::new()), "");
    }

    #[test]
    fn the_path_of_a_nul_names_the_field() {
        for (value, want) in [
            (json!({"title": "a\u{0}"}), Some("title")),
            (
                json!({"messages": [{"content": "ok"}, {"role": "user", "content": "x\u{0}y"}]}),
                Some("messages[1].content"),
            ),
            (json!({"a": {"b\u{0}": 1}}), Some("a.b")),
            (json!("\u{0}"), Some("body")),
            (json!({"email": "a@b.c", "n": 1, "list": [1, 2]}), None),
            // The six characters \u0000 written out are not NUL.
            (json!({"text": "\\u0000"}), None),
        ] {
            assert_eq!(nul_path(&value).as_deref(), want, "{value}");
        }
    }

    #[test]
    fn quoted_input_is_cut() {
        assert_eq!(quoted("usage"), "\"usage\"");
        let long = "x".repeat(100);
        assert_eq!(
            quoted(&long),
            format!("\"{}\"… (100 bytes)", "x".repeat(64))
        );
    }

    #[test]
    fn logged_text_is_cut() {
        assert_eq!(for_log("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = for_log(&long, 5);
        assert_eq!(cut, "ééééé… (2000 bytes)");
        assert_eq!(for_log("exactly10!", 10), "exactly10!");
    }
}
