//! The scenario lexer: one source line in, its tokens out.
//!
//! Contract:
//! - The language is line-oriented, so the lexer is too: [`lex_line`] turns one line into
//!   [`Token`]s, the comment that ends it (if any), and the line's code with the comment and
//!   surrounding whitespace removed (what a failure report quotes). Tokens never span lines.
//! - Positions are 1-based columns counted in characters (Unicode scalar values, a tab counts
//!   as one), plus byte offsets into the line so the parser can slice the source.
//! - `#` starts a comment that runs to the end of the line, except inside a double-quoted
//!   string. A `"` opens a string only where a token starts (after whitespace or punctuation),
//!   so `a"b` is one bare word. Strings know two escapes, `\"` and `\\`.
//! - Punctuation: `=` `==` `!=` `<` `<=` `>` `>=` `,` `|` `{` `}` `->` `..`. Everything else
//!   that is not whitespace is a bare word; `-`, `+`, `.`, `!` and `"` belong to words unless
//!   they start `->`, `..` or `!=`. Each token records whether whitespace came before it, so
//!   the parser can glue adjacent tokens back into one bare key or value (`a=b,c`).
//! - Lexing never panics; malformed input (an unterminated string, an unknown escape) is a
//!   [`LexError`] naming the column.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: `crash`, `n1`, `20_000`, `0.05`, `-5000`, `heal-all`.
    Word,
    /// A double-quoted string, unescaped.
    Str(String),
    /// `=`
    Eq,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `,`
    Comma,
    /// `|`
    Pipe,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `->`
    Arrow,
    /// `..`
    DotDot,
}

/// One token of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// What it is.
    pub kind: TokenKind,
    /// The token as written (for a string: with its quotes and escapes).
    pub text: &'a str,
    /// Byte offset of the token's first byte in the line.
    pub start: usize,
    /// Byte offset just past the token's last byte in the line.
    pub end: usize,
    /// Column of the token's first character, from 1.
    pub col: u32,
    /// Whether whitespace (or the start of the line) comes right before the token.
    pub spaced: bool,
}

/// A lexed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexedLine<'a> {
    /// The line's number, from 1.
    pub number: u32,
    /// The line as written (without its line terminator).
    pub raw: &'a str,
    /// The code: the line without its comment, trimmed. Empty for blank and comment lines.
    pub code: &'a str,
    /// The tokens of the code, in order.
    pub tokens: Vec<Token<'a>>,
    /// The comment's text after its `#`, if the line has one.
    pub comment: Option<&'a str>,
    /// Column just past the code's last character (where "end of line" errors point).
    pub end_col: u32,
}

impl LexedLine<'_> {
    /// A line with nothing but (possibly) a comment.
    pub fn is_blank_or_comment(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// A malformed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Column of the offending character, from 1.
    pub col: u32,
    /// What is wrong.
    pub message: String,
    /// What would have been valid there.
    pub expected: String,
}

/// Splits a source into its lines, numbered from 1, without line terminators (`\n` or
/// `\r\n`). A source ending in a newline has no empty last line.
pub fn lines(source: &str) -> impl Iterator<Item = (u32, &str)> {
    source
        .lines()
        .enumerate()
        .map(|(i, line)| (u32::try_from(i + 1).unwrap_or(u32::MAX), line))
}

/// Converts a character count to a 1-based column, saturating on absurdly long lines.
fn col_of(chars_before: usize) -> u32 {
    u32::try_from(chars_before.saturating_add(1)).unwrap_or(u32::MAX)
}

/// Whether `c` (followed by `next`) starts a punctuation token.
fn starts_punct(c: char, next: Option<char>) -> bool {
    match c {
        '=' | '<' | '>' | ',' | '|' | '{' | '}' => true,
        '!' => next == Some('='),
        '-' => next == Some('>'),
        '.' => next == Some('.'),
        _ => false,
    }
}

/// Lexes one line (`number` is its 1-based line number).
pub fn lex_line(number: u32, raw: &str) -> Result<LexedLine<'_>, LexError> {
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(raw.len(), |&(b, _)| b);
    let char_at = |i: usize| chars.get(i).map(|&(_, c)| c);

    let mut tokens = Vec::new();
    let mut comment = None;
    let mut code_end_byte = 0;
    let mut code_end_chars = 0;
    let mut spaced = true;
    let mut i = 0;
    // Each iteration consumes at least one character, so the loop is bounded by the line.
    while let Some(c) = char_at(i) {
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        if c == '#' {
            let after = byte_at(i + 1);
            comment = raw.get(after..);
            break;
        }
        let start_index = i;
        let start = byte_at(i);
        let col = col_of(i);
        let next = char_at(i + 1);
        let kind = if c == '"' {
            let (value, after) =
                lex_string(&chars, i).map_err(|(at, message, expected)| LexError {
                    col: col_of(at),
                    message,
                    expected,
                })?;
            i = after;
            TokenKind::Str(value)
        } else if starts_punct(c, next) {
            let (kind, width) = match (c, next) {
                ('=', Some('=')) => (TokenKind::EqEq, 2),
                ('=', _) => (TokenKind::Eq, 1),
                ('!', _) => (TokenKind::Ne, 2),
                ('<', Some('=')) => (TokenKind::Le, 2),
                ('<', _) => (TokenKind::Lt, 1),
                ('>', Some('=')) => (TokenKind::Ge, 2),
                ('>', _) => (TokenKind::Gt, 1),
                (',', _) => (TokenKind::Comma, 1),
                ('|', _) => (TokenKind::Pipe, 1),
                ('{', _) => (TokenKind::LBrace, 1),
                ('}', _) => (TokenKind::RBrace, 1),
                ('-', _) => (TokenKind::Arrow, 2),
                _ => (TokenKind::DotDot, 2),
            };
            i += width;
            kind
        } else {
            i += 1;
            while let Some(c) = char_at(i) {
                if c.is_whitespace() || c == '#' || starts_punct(c, char_at(i + 1)) {
                    break;
                }
                i += 1;
            }
            TokenKind::Word
        };
        let end = byte_at(i);
        debug_assert!(i > start_index, "lexer: every token consumes a character");
        tokens.push(Token {
            kind,
            text: raw.get(start..end).unwrap_or(""),
            start,
            end,
            col,
            spaced,
        });
        spaced = false;
        code_end_byte = end;
        code_end_chars = i;
    }
    let code = raw.get(..code_end_byte).unwrap_or("").trim();
    Ok(LexedLine {
        number,
        raw,
        code,
        tokens,
        comment,
        end_col: col_of(code_end_chars),
    })
}

/// Lexes the string whose opening quote is character `open`: its unescaped value and the index
/// of the character after its closing quote, or (column index, message, expected).
fn lex_string(
    chars: &[(usize, char)],
    open: usize,
) -> Result<(String, usize), (usize, String, String)> {
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match chars.get(i).map(|&(_, c)| c) {
            None => {
                return Err((
                    open,
                    "unterminated string".to_string(),
                    "a closing `\"` on the same line".to_string(),
                ))
            }
            Some('"') => return Ok((value, i + 1)),
            Some('\\') => match chars.get(i + 1).map(|&(_, c)| c) {
                Some(c @ ('"' | '\\')) => {
                    value.push(c);
                    i += 2;
                }
                Some(c) => {
                    return Err((
                        i,
                        format!("unknown escape `\\{c}` in a string"),
                        "`\\\"` or `\\\\` (the only escapes)".to_string(),
                    ))
                }
                None => {
                    return Err((
                        open,
                        "unterminated string".to_string(),
                        "a closing `\"` on the same line".to_string(),
                    ))
                }
            },
            Some(c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<(TokenKind, String, u32, bool)> {
        lex_line(1, line)
            .unwrap()
            .tokens
            .into_iter()
            .map(|t| (t.kind, t.text.to_string(), t.col, t.spaced))
            .collect()
    }

    #[test]
    fn words_punctuation_and_positions() {
        use TokenKind::*;
        let toks = kinds("cut n1->n2  # a comment");
        assert_eq!(
            toks,
            vec![
                (Word, "cut".into(), 1, true),
                (Word, "n1".into(), 5, true),
                (Arrow, "->".into(), 7, false),
                (Word, "n2".into(), 9, false),
            ]
        );
        let toks = kinds("cluster election=10..20 loss=0.05 heal-all -5000 +20");
        let texts: Vec<&str> = toks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            texts,
            [
                "cluster", "election", "=", "10", "..", "20", "loss", "=", "0.05", "heal-all",
                "-5000", "+20"
            ]
        );
        let toks = kinds("expect leaders >= 2 != 3 == 4 <= 5 < 6 > 7 | { } ,");
        let ks: Vec<TokenKind> = toks.into_iter().map(|t| t.0).collect();
        assert_eq!(
            ks,
            [
                Word, Word, Ge, Word, Ne, Word, EqEq, Word, Le, Word, Lt, Word, Gt, Word, Pipe,
                LBrace, RBrace, Comma
            ]
        );
    }

    #[test]
    fn strings_comments_and_code() {
        let line = lex_line(7, "  mark \"a # b \\\"q\\\" \\\\\" # tail ").unwrap();
        assert_eq!(line.number, 7);
        assert_eq!(line.code, "mark \"a # b \\\"q\\\" \\\\\"");
        assert_eq!(line.comment, Some(" tail "));
        assert_eq!(line.tokens.len(), 2);
        assert_eq!(line.tokens[1].kind, TokenKind::Str("a # b \"q\" \\".into()));
        assert_eq!(line.tokens[1].col, 8);
        assert_eq!(line.end_col, 8 + 16);
        // A quote inside a word is part of the word; after `=` it opens a string.
        let toks = kinds("a\"b k=\"x y\"");
        assert_eq!(toks[0].0, TokenKind::Word);
        assert_eq!(toks[0].1, "a\"b");
        assert_eq!(toks[3].0, TokenKind::Str("x y".into()));
        assert!(!toks[3].3);
    }

    #[test]
    fn comment_and_blank_lines() {
        let line = lex_line(1, "# Goal: elect").unwrap();
        assert!(line.is_blank_or_comment());
        assert_eq!(line.comment, Some(" Goal: elect"));
        assert_eq!(line.code, "");
        assert!(lex_line(2, " \t ").unwrap().is_blank_or_comment());
    }

    #[test]
    fn malformed_strings() {
        let err = lex_line(1, "mark \"abc").unwrap_err();
        assert_eq!(err.col, 6);
        assert_eq!(err.message, "unterminated string");
        let err = lex_line(1, "print \"a\\nb\"").unwrap_err();
        assert_eq!(err.col, 9);
        assert!(err.message.contains("unknown escape"), "{}", err.message);
        let err = lex_line(1, "print \"ab\\").unwrap_err();
        assert_eq!(err.col, 7);
    }

    #[test]
    fn columns_count_characters() {
        let toks = kinds("print \"é\" ü n1");
        assert_eq!(toks[1].2, 7);
        assert_eq!(toks[2].2, 11);
        assert_eq!(toks[3].2, 13);
    }

    #[test]
    fn lines_are_numbered_from_one() {
        let got: Vec<(u32, &str)> = lines("a\r\nb\n\nc\n").collect();
        assert_eq!(got, [(1, "a"), (2, "b"), (3, ""), (4, "c")]);
    }
}
