//! The packetdrill lexer: a script's text as a list of tokens, each with the
//! line and column (in characters) it starts at.
//!
//! It follows packetdrill's lexical rules (longest match; `.5` is a number,
//! so `F.5` is a word and a number; `0...0.2` is a number, `...` and a
//! number), with these liberties: any ASCII whitespace separates tokens (a
//! carriage return too), a `//` comment may end the file without a newline,
//! a leading byte order mark is skipped, strings have their escapes decoded,
//! and an option's value (`--name=value`) is read as one piece up to the next
//! blank, so addresses and `NAME=VALUE` need no token of their own. Text the
//! lexer cannot read becomes one [`TokenKind::Error`], the last token before
//! [`TokenKind::End`]; the parser reports it when it gets there, so errors
//! stay in file order.

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TokenKind {
    /// `[A-Za-z0-9_]+` that is not a number (`socket`, `S`, `3021b9d889017eeb`),
    /// or a define's value.
    Word(String),
    /// `-?[0-9]+`.
    Int,
    /// `0x[0-9a-fA-F]+`.
    Hex,
    /// `-?[0-9]*\.[0-9]+`.
    Float,
    /// `"..."`, escapes decoded.
    Str(Vec<u8>),
    /// `` `...` ``: the text between the backticks, unchanged.
    Command(String),
    /// `%{ ... }%`: the text between the delimiters, spaces and tabs trimmed.
    Code(String),
    /// `--name` or `--name=value`; the value as written (quotes kept).
    Opt {
        /// The name without the dashes.
        name: String,
        /// What follows `=`, when there is one.
        value: Option<String>,
    },
    /// `...`.
    Ellipsis,
    /// Any other single character (`<`, `(`, `,`, `.`, `é`).
    Punct(char),
    /// Text that cannot be read, and why (one line).
    Error(String),
    /// The end of the text.
    End,
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    /// What it is.
    pub(super) kind: TokenKind,
    /// 1-based line of its first character.
    pub(super) line: u32,
    /// 1-based column of its first character, in characters.
    pub(super) col: u32,
    /// Byte offset of its first character.
    pub(super) start: usize,
    /// Byte offset just past it.
    pub(super) end: usize,
}

/// Splits a script into tokens; the last is always [`TokenKind::End`].
pub(super) fn lex(text: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        text,
        pos: 0,
        line: 1,
        col: 1,
        tokens: Vec::new(),
    };
    if text.starts_with('\u{feff}') {
        // A byte order mark: editors do not show it, so it takes no column.
        lexer.pos = '\u{feff}'.len_utf8();
    }
    lexer.run();
    lexer.tokens
}

/// Decodes the escapes of a string's body: `\xHH \n \r \t \\ \" \0`.
/// On error, the byte offset of the backslash in `body` and the message.
pub(super) fn decode_string(body: &str) -> Result<Vec<u8>, (usize, String)> {
    let mut bytes = Vec::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let byte = match chars.next().map(|(_, e)| e) {
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('t') => b'\t',
            Some('\\') => b'\\',
            Some('"') => b'"',
            Some('0') => 0,
            Some('x') => {
                let hex: String = chars.clone().take(2).map(|(_, h)| h).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()) => {
                        chars.nth(1);
                        b
                    }
                    _ => return Err((at, "`\\x` must be followed by two hex digits, as in `\\xa1`".into())),
                }
            }
            Some(other) => {
                let escape = if other.is_control() || other.is_whitespace() {
                    format!("`\\` followed by U+{:04X}", u32::from(other))
                } else {
                    format!("`\\{other}`")
                };
                return Err((
                    at,
                    format!("unknown escape {escape} (a string knows \\xHH \\n \\r \\t \\\\ \\\" \\0)"),
                ));
            }
            None => return Err((at, "a backslash ends the string".into())),
        };
        bytes.push(byte);
    }
    Ok(bytes)
}

/// Text the lexer cannot read, and where.
struct LexError {
    line: u32,
    col: u32,
    start: usize,
    message: String,
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    tokens: Vec<Token>,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    fn run(&mut self) {
        loop {
            if let Err(error) = self.skip_blanks().and_then(|()| self.token()) {
                self.tokens.push(Token {
                    kind: TokenKind::Error(error.message),
                    line: error.line,
                    col: error.col,
                    start: error.start,
                    end: error.start,
                });
                // The end is where the error is: nothing after it is read.
                self.tokens.push(Token {
                    kind: TokenKind::End,
                    line: error.line,
                    col: error.col,
                    start: error.start,
                    end: error.start,
                });
                return;
            }
            if self.tokens.last().is_some_and(|t| t.kind == TokenKind::End) {
                return;
            }
        }
    }

    fn here(&self) -> (u32, u32, usize) {
        (self.line, self.col, self.pos)
    }

    fn error_at(&self, (line, col, start): (u32, u32, usize), message: impl Into<String>) -> LexError {
        LexError {
            line,
            col,
            start,
            message: message.into(),
        }
    }

    /// Reads one token (or the end) and pushes it.
    fn token(&mut self) -> Result<(), LexError> {
        let at = self.here();
        let kind = match self.peek() {
            None => TokenKind::End,
            Some('"') => self.string()?,
            Some('`') => self.command()?,
            Some('%') if self.peek_at(1) == Some('{') => self.code()?,
            Some('-') if self.peek_at(1) == Some('-') && self.peek_at(2).is_some_and(is_word_char) => self.option()?,
            Some('-')
                if self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
                    || self.peek_at(1) == Some('.') && self.peek_at(2).is_some_and(|d| d.is_ascii_digit()) =>
            {
                self.bump();
                self.number_after_sign()
            }
            Some('.') if self.rest().starts_with("...") => {
                self.pos += 3;
                self.col += 3;
                TokenKind::Ellipsis
            }
            Some('.') if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.bump();
                self.bump_while(|d| d.is_ascii_digit());
                TokenKind::Float
            }
            Some(c) if is_word_char(c) => self.word(),
            Some(c) => {
                self.bump();
                TokenKind::Punct(c)
            }
        };
        let (line, col, start) = at;
        self.tokens.push(Token {
            kind,
            line,
            col,
            start,
            end: self.pos,
        });
        Ok(())
    }

    /// Skips whitespace and comments; an unterminated `/*` is an error at it.
    fn skip_blanks(&mut self) -> Result<(), LexError> {
        loop {
            let rest = self.rest();
            if rest.starts_with("//") {
                self.bump_while(|c| c != '\n');
            } else if rest.starts_with("/*") {
                let at = self.here();
                self.bump();
                self.bump();
                loop {
                    if self.rest().starts_with("*/") {
                        self.bump();
                        self.bump();
                        break;
                    }
                    if self.bump().is_none() {
                        return Err(self.error_at(at, "unterminated comment: `/*` without `*/`"));
                    }
                }
            } else if self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                self.bump_while(|c| c.is_ascii_whitespace());
            } else {
                return Ok(());
            }
        }
    }

    /// From the opening `quote` to the closing one, a backslash escaping any
    /// character: where the body starts and its text, or `None` when the
    /// text ends first.
    fn quoted(&mut self, quote: char) -> Option<((u32, u32, usize), &'a str)> {
        self.bump();
        let body = self.here();
        loop {
            match self.peek()? {
                '\\' => {
                    self.bump();
                    self.bump()?;
                }
                c if c == quote => {
                    let end = self.pos;
                    self.bump();
                    let text: &'a str = self.text;
                    return Some((body, &text[body.2..end]));
                }
                _ => {
                    self.bump();
                }
            }
        }
    }

    fn string(&mut self) -> Result<TokenKind, LexError> {
        let at = self.here();
        let Some(((mut line, mut col, start), body)) = self.quoted('"') else {
            return Err(self.error_at(at, "unterminated string: `\"` without its closing `\"`"));
        };
        decode_string(body).map(TokenKind::Str).map_err(|(offset, message)| {
            // At the escape itself.
            for c in body[..offset].chars() {
                if c == '\n' {
                    line += 1;
                    col = 1;
                } else {
                    col += 1;
                }
            }
            LexError {
                line,
                col,
                start: start + offset,
                message,
            }
        })
    }

    fn command(&mut self) -> Result<TokenKind, LexError> {
        let at = self.here();
        match self.quoted('`') {
            Some((_, body)) => Ok(TokenKind::Command(body.to_string())),
            None => Err(self.error_at(at, "unterminated command: a backtick without its closing backtick")),
        }
    }

    fn code(&mut self) -> Result<TokenKind, LexError> {
        let at = self.here();
        self.bump();
        self.bump();
        let start = self.pos;
        loop {
            if self.rest().starts_with("}%") {
                let body = self.text[start..self.pos].trim_matches([' ', '\t']).to_string();
                self.bump();
                self.bump();
                return Ok(TokenKind::Code(body));
            }
            if self.bump().is_none() {
                return Err(self.error_at(at, "unterminated code block: `%{` without `}%`"));
            }
        }
    }

    /// `--name`, then `=value` if an `=` follows on the same line.
    fn option(&mut self) -> Result<TokenKind, LexError> {
        self.bump();
        self.bump();
        let start = self.pos;
        self.bump_while(is_word_char);
        let name = self.text[start..self.pos].to_string();
        let after_name = self.here();
        self.bump_while(|c| c == ' ' || c == '\t');
        if self.peek() != Some('=') {
            (self.line, self.col, self.pos) = after_name;
            return Ok(TokenKind::Opt { name, value: None });
        }
        self.bump();
        self.bump_while(|c| c == ' ' || c == '\t');
        let start = self.pos;
        while let Some(c) = self.peek() {
            let rest = self.rest();
            if c.is_ascii_whitespace() || rest.starts_with("//") || rest.starts_with("/*") {
                break;
            }
            if c == '"' || c == '`' {
                let at = self.here();
                if self.quoted(c).is_none() {
                    return Err(self.error_at(at, format!("unterminated quote in the value of `--{name}`")));
                }
            } else {
                self.bump();
            }
        }
        Ok(TokenKind::Opt {
            name,
            value: Some(self.text[start..self.pos].to_string()),
        })
    }

    /// After a `-` followed by a digit or `.digit`.
    fn number_after_sign(&mut self) -> TokenKind {
        self.bump_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
            self.bump();
            self.bump_while(|c| c.is_ascii_digit());
            TokenKind::Float
        } else {
            TokenKind::Int
        }
    }

    /// A run of word characters: a number, a hex number or a word.
    fn word(&mut self) -> TokenKind {
        let start = self.pos;
        self.bump_while(is_word_char);
        let run = &self.text[start..self.pos];
        if run.bytes().all(|b| b.is_ascii_digit()) {
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) {
                self.bump();
                self.bump_while(|c| c.is_ascii_digit());
                return TokenKind::Float;
            }
            return TokenKind::Int;
        }
        match run.strip_prefix("0x") {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => TokenKind::Hex,
            _ => TokenKind::Word(run.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        lex(text)
            .into_iter()
            .map(|t| (t.kind, text.get(t.start..t.end).unwrap_or("")))
            .collect()
    }

    #[test]
    fn numbers_split_as_packetdrill_splits_them() {
        use TokenKind::*;
        let w = |s: &str| Word(s.to_string());
        assert_eq!(
            kinds("0...0.300 F.5 .5 P. 1. 5abc 0x1f 0x1g -1 -.5 000102"),
            vec![
                (Int, "0"),
                (Ellipsis, "..."),
                (Float, "0.300"),
                (w("F"), "F"),
                (Float, ".5"),
                (Float, ".5"),
                (w("P"), "P"),
                (Punct('.'), "."),
                (Int, "1"),
                (Punct('.'), "."),
                (w("5abc"), "5abc"),
                (Hex, "0x1f"),
                (w("0x1g"), "0x1g"),
                (Int, "-1"),
                (Float, "-.5"),
                (Int, "000102"),
                (End, ""),
            ]
        );
    }

    #[test]
    fn positions_count_characters_and_lines() {
        let tokens = lex("\u{feff}a\r\n  é /* x\n */ b // c");
        let at: Vec<(u32, u32)> = tokens.iter().map(|t| (t.line, t.col)).collect();
        assert_eq!(at, vec![(1, 1), (2, 3), (3, 5), (3, 11)]);
        assert_eq!(tokens[1].kind, TokenKind::Punct('é'));
    }

    #[test]
    fn quoted_tokens_keep_their_text() {
        let tokens = lex("`a\\`b\nc` \"\\x41\\n\" %{ x }\n%}% }%\t");
        assert_eq!(tokens[0].kind, TokenKind::Command("a\\`b\nc".into()));
        assert_eq!(tokens[1].kind, TokenKind::Str(b"A\n".to_vec()));
        assert_eq!(tokens[2].kind, TokenKind::Code("x }\n%".into()));
    }

    #[test]
    fn options_read_their_value_as_one_piece() {
        let tokens = lex("--ip_version=ipv4-mapped-ipv6 --define=X=\"a b\"// c\n--flag\t// c\n--x = 1");
        let options: Vec<TokenKind> = tokens.into_iter().map(|t| t.kind).collect();
        let opt = |name: &str, value: Option<&str>| TokenKind::Opt {
            name: name.into(),
            value: value.map(Into::into),
        };
        assert_eq!(
            options,
            vec![
                opt("ip_version", Some("ipv4-mapped-ipv6")),
                opt("define", Some("X=\"a b\"")),
                opt("flag", None),
                opt("x", Some("1")),
                TokenKind::End
            ]
        );
    }

    #[test]
    fn errors_end_the_tokens_at_their_place() {
        for (text, line, col, message) in [
            ("a \"b", 1, 3, "unterminated string"),
            ("a\n  \"b\\q\"", 2, 5, "unknown escape `\\q`"),
            ("\"\\\n\"", 1, 2, "unknown escape `\\` followed by U+000A"),
            ("\"\\x4\"", 1, 2, "two hex digits"),
            ("x `b", 1, 3, "unterminated command"),
            ("%{ b }", 1, 1, "unterminated code block"),
            ("/* b", 1, 1, "unterminated comment"),
        ] {
            let tokens = lex(text);
            let error = &tokens[tokens.len() - 2];
            match &error.kind {
                TokenKind::Error(m) => assert!(m.contains(message), "{text:?}: {m}"),
                other => panic!("{text:?}: {other:?}"),
            }
            assert_eq!((error.line, error.col), (line, col), "{text:?}");
            assert_eq!(tokens.last().map(|t| &t.kind), Some(&TokenKind::End));
        }
    }
}
