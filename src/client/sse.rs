//! Server-Sent Events, as far as Streamable HTTP needs them: the `data` of each event, in order.
//! Event names, ids and `retry` are not needed to drive load; an event with no data (the
//! priming event a server sends first so that a client could resume) is skipped.

/// Feeds bytes as they arrive and yields each complete event's data.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The current event's data lines, joined by `\n`.
    data: Vec<u8>,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

impl SseParser {
    /// Parses `chunk`, calling `event` with each complete event's data.
    pub fn feed(&mut self, chunk: &[u8], mut event: impl FnMut(&[u8])) {
        let mut rest = chunk;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(end);
            let line = if self.line.is_empty() {
                head
            } else {
                self.line.extend_from_slice(head);
                &self.line[..]
            };
            let line = line.to_vec();
            self.line.clear();
            self.on_line(&line, &mut event);
            // `\r\n` is one line ending.
            rest = match tail {
                [b'\r', b'\n', more @ ..] => more,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, more @ ..] => more,
                [] => &[],
            };
        }
        self.line.extend_from_slice(rest);
    }

    fn on_line(&mut self, line: &[u8], event: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            if self.has_data && !self.data.is_empty() {
                event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            // A line starting with `:` is a comment.
            Some(0) => return,
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        if field == b"data" {
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<String> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c.as_bytes(), |d| out.push(String::from_utf8(d.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn priming_events_comments_and_fields_other_than_data_are_skipped() {
        let stream = "id: 1\ndata: \n\n: keep-alive\nevent: message\nid: 2\ndata: {\"id\":1}\n\n";
        assert_eq!(events(&[stream]), [r#"{"id":1}"#]);
    }

    #[test]
    fn events_split_anywhere_across_chunks_and_any_line_ending() {
        let stream = "data: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\rdata:z\n\n";
        let whole = events(&[stream]);
        assert_eq!(whole, [r#"{"a":1}"#, "x\ny", "z"]);
        for cut in 1..stream.len() {
            assert_eq!(events(&[&stream[..cut], &stream[cut..]]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn an_unterminated_event_is_not_delivered() {
        assert!(events(&["data: {\"partial\":"]).is_empty());
    }
}
