//! The cursor the one-line notations of a step are read with, the call
//! notation (`call.rs`) and the ICMP notation (`icmp.rs`): blanks between
//! tokens are skipped, and an error names its byte offset and the token
//! found there.

use crate::packet::notation::NotationError;

/// A position in one line of notation.
pub(super) struct Cursor<'a> {
    /// The whole text.
    pub text: &'a str,
    /// The byte offset read up to.
    pub pos: usize,
    /// What the text is, for the error that finds nothing more (`the end of the call`).
    end: &'static str,
    /// The characters that end a token besides blanks, for naming what was found.
    delimiters: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`, which `end` names (`the end of ...`)
    /// and whose tokens `delimiters` end.
    pub fn new(text: &'a str, end: &'static str, delimiters: &'static str) -> Self {
        Cursor {
            text,
            pos: 0,
            end,
            delimiters,
        }
    }

    /// An error at `offset` of the text.
    pub fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, NotationError> {
        Err(NotationError {
            offset,
            message: message.into(),
        })
    }

    /// Moves past blanks.
    pub fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Moves past blanks and returns the character after them, without moving past it.
    pub fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.text[self.pos..].chars().next()
    }

    /// Whether the next character after blanks is `c`, moving past it if so.
    pub fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// What comes next, for an error: the token in backquotes, its first
    /// character where a delimiter starts it, or the end of the text.
    pub fn found(&mut self) -> String {
        match self.peek() {
            None => self.end.into(),
            Some(_) => {
                let token: String = self.text[self.pos..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !self.delimiters.contains(*c))
                    .collect();
                if token.is_empty() {
                    format!("`{}`", self.text[self.pos..].chars().next().unwrap_or(' '))
                } else {
                    format!("`{token}`")
                }
            }
        }
    }
}
