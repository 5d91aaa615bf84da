//! Server-sent events: the decoder for an upstream's `text/event-stream` body. Bytes arrive in
//! arbitrary pieces (a line, or a UTF-8 character, may be split between two), so the decoder
//! buffers and hands out the `data` of each complete event.

/// Feeds on byte chunks; yields each complete event's data (multi-line data joined by `\n`).
#[derive(Default, Debug)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the data of every event they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_string());
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing we use.
        }
        events
    }

    /// True when bytes of an unfinished event are still buffered (a stream cut mid-event).
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty() || !self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_anywhere() {
        let body = "data: {\"a\":1}\n\n: keep-alive\n\ndata: é\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let bytes = body.as_bytes();
        // Every split point, including inside the two-byte 'é'.
        for split in 0..bytes.len() {
            let mut decoder = SseDecoder::new();
            let mut events = decoder.push(&bytes[..split]);
            events.extend(decoder.push(&bytes[split..]));
            assert_eq!(
                events,
                vec!["{\"a\":1}", "é", "one\ntwo", "[DONE]"],
                "split at {split}"
            );
            assert!(!decoder.has_partial());
        }
    }

    #[test]
    fn knows_when_a_stream_was_cut_mid_event() {
        let mut decoder = SseDecoder::new();
        assert_eq!(
            decoder.push(b"data: {\"a\":1}\n\ndata: {\"b\""),
            vec!["{\"a\":1}"]
        );
        assert!(decoder.has_partial());
    }
}
