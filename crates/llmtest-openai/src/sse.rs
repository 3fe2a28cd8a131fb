//! A bounded Server-Sent Events parser (the subset of the WHATWG event-stream format that
//! OpenAI-compatible servers use: `data:` lines, `event:`, comments, blank-line dispatch).
//!
//! Hand-written rather than a dependency so that every buffer is bounded: a server that sends
//! an endless line or an endless event gets an error, not our memory.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event:` field; empty for the default `message` type.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why the event stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    #[error("stream line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("stream event longer than {0} bytes")]
    EventTooLong(usize),
    #[error("stream is not valid UTF-8")]
    Utf8,
}

/// Incremental parser: feed it bytes as they arrive, take the events that completed.
pub(crate) struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    max_line: usize,
    max_event: usize,
    /// Comment lines seen (`: keep-alive`), for the facts.
    pub comments: u64,
}

impl SseParser {
    pub fn new(max_line: usize, max_event: usize) -> Self {
        SseParser {
            line: Vec::new(),
            event: String::new(),
            data: String::new(),
            has_data: false,
            after_cr: false,
            max_line,
            max_event,
            comments: 0,
        }
    }

    /// Parses `bytes`, appending every completed event to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out)?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out)?;
                }
                _ => {
                    if self.line.len() >= self.max_line {
                        return Err(SseError::LineTooLong(self.max_line));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// True when bytes of an unfinished line or event are buffered (the stream was cut).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<(), SseError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
                self.has_data = false;
            } else {
                self.event.clear();
            }
            return Ok(());
        }
        let line = std::str::from_utf8(&line).map_err(|_| SseError::Utf8)?;
        if line.starts_with(':') {
            self.comments += 1;
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > self.max_event {
                    return Err(SseError::EventTooLong(self.max_event));
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = value.to_owned(),
            // `id` and `retry` steer browser reconnection, which a one-shot request never does.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Event>, SseParser) {
        let mut p = SseParser::new(1024, 4096);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        (out, p)
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let text = b"data: {\"a\":1}\n\n: keep-alive\n\nevent: error\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        let (whole, p) = parse_all(&[text]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(
            whole[1],
            Event {
                event: "error".into(),
                data: "x\ny".into()
            }
        );
        assert_eq!(whole[2].data, "[DONE]");
        assert_eq!(p.comments, 1);
        for cut in 0..text.len() {
            let (parts, _) = parse_all(&[&text[..cut], &text[cut..]]);
            assert_eq!(parts, whole, "cut at {cut}");
        }
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let (a, _) = parse_all(&[b"data: one\r\n\r\ndata: two\r\r"]);
        assert_eq!(
            a.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        // A CRLF split across chunks is one line ending, not two.
        let (b, _) = parse_all(&[b"data: one\r", b"\n\r", b"\n"]);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn unfinished_event_is_reported_as_partial() {
        let (out, p) = parse_all(&[b"data: {\"choices\":[]}\n"]);
        assert!(out.is_empty());
        assert!(p.has_partial());
        let (_, p) = parse_all(&[b"data: [DONE]\n\n"]);
        assert!(!p.has_partial());
    }

    #[test]
    fn long_lines_are_refused() {
        let mut p = SseParser::new(8, 64);
        let mut out = Vec::new();
        assert_eq!(
            p.feed(b"data: 0123456789", &mut out),
            Err(SseError::LineTooLong(8))
        );
        let mut p = SseParser::new(64, 8);
        assert_eq!(
            p.feed(b"data: 0123\ndata: 45678\n", &mut out),
            Err(SseError::EventTooLong(8))
        );
    }
}
