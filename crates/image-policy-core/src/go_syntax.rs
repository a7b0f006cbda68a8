//! Go's regular-expression syntax rules, checked before a pattern reaches the `regex` crate.
//!
//! Flux compiles `filterTags.pattern` and `exclusionList` with Go's `regexp.Compile`, whose
//! parser refuses some patterns the `regex` crate takes: stacked repetition operators
//! (`a**`, `a*+`, `a{2}{3}`), counts over 1000 (also as a product of nested counts,
//! `(a{100}){11}`), flags other than `imsU` (`(?x)`, `(?u)`, `(?-u:...)`), group names with
//! other characters than `[A-Za-z0-9_]`, `\u`/`\U` escapes, `\p{...}` names that Go's
//! Unicode tables do not have (`\p{Emoji}`, and scripts whose name has an underscore, which
//! Go 1.26 cannot look up), POSIX classes with an unknown name (`[[:foo:]]`) and class
//! ranges that only `regex` reads as set operations (`[a--b]`). A policy with such a pattern
//! fails in Flux, so it fails here, with Go's message.
//!
//! The check walks the pattern the way Go's parser reads it (escapes, classes, groups, flag
//! groups, repetitions) and reports the first error Go reports, with Go's text:
//! ``error parsing regexp: invalid nested repetition operator: `**` ``. It does not build a
//! matcher; the `regex` crate matches. Not modelled: Go's limits on the size of the compiled
//! program and on the depth of the parse tree (`expression too large`, `expression nests too
//! deeply`), which sit well above what the `regex` crate accepts (its default nesting limit is
//! 250 and its size limit 10 MB), so such patterns are refused by `regex` with its own words.

/// Go's error kinds (`regexp/syntax.ErrorCode`), as Go prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    InvalidCharRange,
    InvalidEscape,
    InvalidNamedCapture,
    InvalidPerlOp,
    InvalidRepeatOp,
    InvalidRepeatSize,
    MissingBracket,
    MissingParen,
    MissingRepeatArgument,
    TrailingBackslash,
    UnexpectedParen,
}

impl Code {
    fn text(self) -> &'static str {
        match self {
            Code::InvalidCharRange => "invalid character class range",
            Code::InvalidEscape => "invalid escape sequence",
            Code::InvalidNamedCapture => "invalid named capture",
            Code::InvalidPerlOp => "invalid or unsupported Perl syntax",
            Code::InvalidRepeatOp => "invalid nested repetition operator",
            Code::InvalidRepeatSize => "invalid repeat count",
            Code::MissingBracket => "missing closing ]",
            Code::MissingParen => "missing closing )",
            Code::MissingRepeatArgument => "missing argument to repetition operator",
            Code::TrailingBackslash => "trailing backslash at end of expression",
            Code::UnexpectedParen => "unexpected )",
        }
    }
}

/// A Go parse error: the kind and the piece of the pattern Go quotes.
#[derive(Debug)]
struct GoError {
    code: Code,
    expr: String,
}

impl GoError {
    fn new(code: Code, expr: &str) -> Self {
        GoError {
            code,
            expr: expr.to_string(),
        }
    }

    fn message(&self) -> String {
        format!(
            "error parsing regexp: {}: `{}`",
            self.code.text(),
            self.expr
        )
    }
}

type Step<T> = Result<T, GoError>;

/// The names `\p{...}` resolves in Go 1.26 (Unicode 15.0.0), after Go's canonicalization
/// ([`canonical`]): general categories and their long aliases, scripts, and `Any`,
/// `Assigned`, `Ascii`, `Lc`. Scripts whose Go table key holds an underscore
/// (`Old_Italic`) are absent because the canonical form of any name has none.
/// `tests/go_regexp.rs` checks this list against the one the Go harness prints.
#[rustfmt::skip]
const GO_UNICODE_NAMES: &[&str] = &[
    "Adlam", "Ahom", "Any", "Arabic", "Armenian", "Ascii", "Assigned", "Avestan", "Balinese",
    "Bamum", "Batak", "Bengali", "Bhaiksuki", "Bopomofo", "Brahmi", "Braille", "Buginese",
    "Buhid", "C", "Carian", "Casedletter", "Cc", "Cf", "Chakma", "Cham", "Cherokee",
    "Chorasmian", "Closepunctuation", "Cn", "Cntrl", "Co", "Combiningmark", "Common",
    "Connectorpunctuation", "Control", "Coptic", "Cs", "Cuneiform", "Currencysymbol", "Cypriot",
    "Cyrillic", "Dashpunctuation", "Decimalnumber", "Deseret", "Devanagari", "Digit", "Dogra",
    "Duployan", "Elbasan", "Elymaic", "Enclosingmark", "Ethiopic", "Finalpunctuation", "Format",
    "Georgian", "Glagolitic", "Gothic", "Grantha", "Greek", "Gujarati", "Gurmukhi", "Han",
    "Hangul", "Hanunoo", "Hatran", "Hebrew", "Hiragana", "Inherited", "Initialpunctuation",
    "Javanese", "Kaithi", "Kannada", "Katakana", "Kawi", "Kharoshthi", "Khmer", "Khojki",
    "Khudawadi", "L", "Lao", "Latin", "Lc", "Lepcha", "Letter", "Letternumber", "Limbu",
    "Lineseparator", "Lisu", "Ll", "Lm", "Lo", "Lowercaseletter", "Lt", "Lu", "Lycian",
    "Lydian", "M", "Mahajani", "Makasar", "Malayalam", "Mandaic", "Manichaean", "Marchen",
    "Mark", "Mathsymbol", "Mc", "Me", "Medefaidrin", "Miao", "Mn", "Modi", "Modifierletter",
    "Modifiersymbol", "Mongolian", "Mro", "Multani", "Myanmar", "N", "Nabataean", "Nandinagari",
    "Nd", "Newa", "Nko", "Nl", "No", "Nonspacingmark", "Number", "Nushu", "Ogham",
    "Openpunctuation", "Oriya", "Osage", "Osmanya", "Other", "Otherletter", "Othernumber",
    "Otherpunctuation", "Othersymbol", "P", "Palmyrene", "Paragraphseparator", "Pc", "Pd", "Pe",
    "Pf", "Phoenician", "Pi", "Po", "Privateuse", "Ps", "Punct", "Punctuation", "Rejang",
    "Runic", "S", "Samaritan", "Saurashtra", "Sc", "Separator", "Sharada", "Shavian", "Siddham",
    "Sinhala", "Sk", "Sm", "So", "Sogdian", "Soyombo", "Spaceseparator", "Spacingmark",
    "Sundanese", "Surrogate", "Symbol", "Syriac", "Tagalog", "Tagbanwa", "Takri", "Tamil",
    "Tangsa", "Tangut", "Telugu", "Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta",
    "Titlecaseletter", "Toto", "Ugaritic", "Unassigned", "Uppercaseletter", "Vai", "Vithkuqi",
    "Wancho", "Yezidi", "Yi", "Z", "Zl", "Zp", "Zs",
];

/// The POSIX classes Go knows inside brackets, each also negated as `[:^name:]`.
const POSIX_NAMES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Go's largest repetition count, alone or as the product of nested counts.
const MAX_REPEAT: i64 = 1000;

/// Go's message when Go's `regexp.Compile` refuses `pattern`, `None` when Go's parser takes
/// it (bar the size and depth limits named in the module docs).
pub(crate) fn go_syntax_error(pattern: &str) -> Option<String> {
    Parser::new(pattern).run().err().map(|e| e.message())
}

/// Go's key for a `\p` name: separators (`_`, `-`, space) dropped, the first remaining
/// byte upper-cased and the others lower-cased (ASCII only).
fn canonical(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name.as_bytes() {
        if matches!(b, b'_' | b'-' | b' ') {
            continue;
        }
        out.push(if out.is_empty() {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        });
    }
    out
}

fn known_unicode_name(name: &str) -> bool {
    let key = canonical(name);
    GO_UNICODE_NAMES
        .binary_search_by(|n| n.as_bytes().cmp(key.as_slice()))
        .is_ok()
}

/// A counted repetition (`{n}`, `{n,}`, `{n,m}`) in the parse tree, the only node kind
/// Go's count limit looks at; everything else is transparent to it. Kept in an arena so
/// that neither the walk nor the drop recurses on deeply nested input.
struct Repeat {
    min: i64,
    /// `-1` for no upper bound, as in Go.
    max: i64,
    children: Vec<usize>,
}

/// One open group: the counted repetitions of its finished items, and the last item (the
/// operand a repetition operator applies to), `None` at the start and after `|`.
struct Frame {
    done: Vec<usize>,
    last: Option<Vec<usize>>,
}

impl Frame {
    fn new() -> Self {
        Frame {
            done: Vec::new(),
            last: None,
        }
    }

    fn push_item(&mut self, repeats: Vec<usize>) {
        if let Some(previous) = self.last.replace(repeats) {
            self.done.extend(previous);
        }
    }

    fn close(mut self) -> Vec<usize> {
        if let Some(last) = self.last.take() {
            self.done.extend(last);
        }
        self.done
    }
}

struct Parser<'p> {
    whole: &'p str,
    pos: usize,
    frames: Vec<Frame>,
    repeats: Vec<Repeat>,
}

impl<'p> Parser<'p> {
    fn new(whole: &'p str) -> Self {
        Parser {
            whole,
            pos: 0,
            frames: vec![Frame::new()],
            repeats: Vec::new(),
        }
    }

    fn rest(&self) -> &'p str {
        &self.whole[self.pos..]
    }

    fn frame(&mut self) -> &mut Frame {
        // The outermost frame is never popped (a `)` without a group is an error first).
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    fn item(&mut self) {
        self.frame().push_item(Vec::new());
    }

    fn run(mut self) -> Step<()> {
        // Where the previous token, if it was a repetition operator, started: Go refuses a
        // repetition operator right after another one.
        let mut last_repeat: Option<usize> = None;
        while let Some(c) = self.rest().chars().next() {
            let start = self.pos;
            let mut repeat = None;
            match c {
                '(' => {
                    if self.rest().as_bytes().get(1) == Some(&b'?') {
                        self.perl_group()?;
                    } else {
                        self.frames.push(Frame::new());
                        self.pos += 1;
                    }
                }
                '|' => {
                    let frame = self.frame();
                    if let Some(last) = frame.last.take() {
                        frame.done.extend(last);
                    }
                    self.pos += 1;
                }
                ')' => {
                    if self.frames.len() < 2 {
                        return Err(GoError::new(Code::UnexpectedParen, self.whole));
                    }
                    let closed = self.frames.pop().map(Frame::close).unwrap_or_default();
                    self.frame().push_item(closed);
                    self.pos += 1;
                }
                '^' | '$' | '.' => {
                    self.item();
                    self.pos += 1;
                }
                '[' => {
                    self.class()?;
                    self.item();
                }
                '*' | '+' | '?' => {
                    self.pos += 1;
                    self.repetition(start, None, last_repeat)?;
                    repeat = Some(start);
                }
                '{' => match parse_count(self.rest()) {
                    None => {
                        // Not a count: `{` is a literal.
                        self.item();
                        self.pos += 1;
                    }
                    Some((min, max, len)) => {
                        self.pos += len;
                        if min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && min > max) {
                            return Err(GoError::new(
                                Code::InvalidRepeatSize,
                                &self.whole[start..self.pos],
                            ));
                        }
                        self.repetition(start, Some((min, max)), last_repeat)?;
                        repeat = Some(start);
                    }
                },
                '\\' => self.escape_outside_class()?,
                _ => {
                    self.item();
                    self.pos += c.len_utf8();
                }
            }
            last_repeat = repeat;
        }
        if self.frames.len() > 1 {
            return Err(GoError::new(Code::MissingParen, self.whole));
        }
        Ok(())
    }

    /// A repetition operator whose text (a count, if any, already consumed) started at
    /// `start`; takes a lazy `?`, then checks as Go does: stacked operator, missing
    /// operand, count product.
    fn repetition(
        &mut self,
        start: usize,
        count: Option<(i64, i64)>,
        last_repeat: Option<usize>,
    ) -> Step<()> {
        if self.rest().starts_with('?') {
            self.pos += 1;
        }
        if let Some(previous) = last_repeat {
            return Err(GoError::new(
                Code::InvalidRepeatOp,
                &self.whole[previous..self.pos],
            ));
        }
        let Some(operand) = self.frame().last.take() else {
            return Err(GoError::new(
                Code::MissingRepeatArgument,
                &self.whole[start..self.pos],
            ));
        };
        let Some((min, max)) = count else {
            // `*`, `+`, `?` do not count toward the limit.
            self.frame().last = Some(operand);
            return Ok(());
        };
        let node = self.repeats.len();
        self.repeats.push(Repeat {
            min,
            max,
            children: operand,
        });
        self.frame().last = Some(vec![node]);
        if (min >= 2 || max >= 2) && !self.within_limit(node) {
            return Err(GoError::new(
                Code::InvalidRepeatSize,
                &self.whole[start..self.pos],
            ));
        }
        Ok(())
    }

    /// Whether the counts under `root` multiply to at most 1000 copies of the innermost
    /// thing, dividing the budget (integer division) by each count on the way down, and
    /// stopping below a `{0}`, as Go's check does.
    fn within_limit(&self, root: usize) -> bool {
        let mut stack = vec![(root, MAX_REPEAT)];
        while let Some((node, budget)) = stack.pop() {
            let repeat = &self.repeats[node];
            if repeat.max == 0 {
                continue;
            }
            let count = if repeat.max < 0 {
                repeat.min
            } else {
                repeat.max
            };
            if count > budget {
                return false;
            }
            let budget = if count > 0 { budget / count } else { budget };
            stack.extend(repeat.children.iter().map(|&child| (child, budget)));
        }
        true
    }

    /// `(?` ...: a named group, a flag group `(?i)`, or a group with flags `(?i:`.
    fn perl_group(&mut self) -> Step<()> {
        let t = self.rest();
        let bytes = t.as_bytes();
        let with_p = bytes.len() > 4 && bytes[2] == b'P' && bytes[3] == b'<';
        let with_angle = bytes.len() > 3 && bytes[2] == b'<';
        if with_p || with_angle {
            let name_start = if with_p { 4 } else { 3 };
            let Some(end) = t.find('>') else {
                return Err(GoError::new(Code::InvalidNamedCapture, t));
            };
            let name = &t[name_start..end];
            if name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                return Err(GoError::new(Code::InvalidNamedCapture, &t[..=end]));
            }
            self.frames.push(Frame::new());
            self.pos += end + 1;
            return Ok(());
        }
        let mut negated = false;
        let mut saw_flag = false;
        let mut consumed = 2;
        for c in t[2..].chars() {
            consumed += c.len_utf8();
            match c {
                'i' | 'm' | 's' | 'U' => saw_flag = true,
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    if c == ':' {
                        self.frames.push(Frame::new());
                    }
                    self.pos += consumed;
                    return Ok(());
                }
                _ => break,
            }
        }
        Err(GoError::new(Code::InvalidPerlOp, &t[..consumed]))
    }

    /// A backslash outside a class: assertions, `\Q...\E`, Unicode and Perl classes, or
    /// a one-character escape.
    fn escape_outside_class(&mut self) -> Step<()> {
        let t = self.rest();
        match t.as_bytes().get(1) {
            Some(b'A' | b'b' | b'B' | b'z') => {
                self.item();
                self.pos += 2;
                return Ok(());
            }
            Some(b'C') => return Err(GoError::new(Code::InvalidEscape, &t[..2])),
            Some(b'Q') => {
                // Everything up to `\E` (or the end) is literal, one item per character,
                // so an empty `\Q\E` leaves the previous operand in place.
                let body = &t[2..];
                let (literal, skip) = match body.find(r"\E") {
                    Some(at) => (&body[..at], at + 2),
                    None => (body, body.len()),
                };
                for _ in literal.chars() {
                    self.item();
                }
                self.pos += 2 + skip;
                return Ok(());
            }
            Some(b'p' | b'P') => {
                self.pos += unicode_class(t)?;
                self.item();
                return Ok(());
            }
            Some(b'd' | b'D' | b's' | b'S' | b'w' | b'W') => {
                self.item();
                self.pos += 2;
                return Ok(());
            }
            _ => {}
        }
        let (_, len) = escape(t)?;
        self.item();
        self.pos += len;
        Ok(())
    }

    /// A bracketed class starting at `[`.
    fn class(&mut self) -> Step<()> {
        let whole_class = self.rest();
        let mut at = 1;
        if whole_class[at..].starts_with('^') {
            at += 1;
        }
        let mut first = true;
        loop {
            let t = &whole_class[at..];
            if t.starts_with(']') && !first {
                at += 1;
                break;
            }
            first = false;
            if t.len() > 2 && t.starts_with("[:") {
                if let Some(end) = t[2..].find(":]") {
                    let name = &t[..end + 4];
                    let inner = &name[2..name.len() - 2];
                    let inner = inner.strip_prefix('^').unwrap_or(inner);
                    if !POSIX_NAMES.contains(&inner) {
                        return Err(GoError::new(Code::InvalidCharRange, name));
                    }
                    at += name.len();
                    continue;
                }
            }
            if t.starts_with(r"\p") || t.starts_with(r"\P") {
                at += unicode_class(t)?;
                continue;
            }
            if matches!(
                t.as_bytes(),
                [b'\\', b'd' | b'D' | b's' | b'S' | b'w' | b'W', ..]
            ) {
                at += 2;
                continue;
            }
            let (lo, lo_len) = class_char(t, whole_class)?;
            let mut len = lo_len;
            let after = &t[lo_len..];
            if after.len() >= 2 && after.starts_with('-') && !after[1..].starts_with(']') {
                let (hi, hi_len) = class_char(&after[1..], whole_class)?;
                len += 1 + hi_len;
                if hi < lo {
                    return Err(GoError::new(Code::InvalidCharRange, &t[..len]));
                }
            }
            at += len;
        }
        self.pos += at;
        Ok(())
    }
}

/// One character of a class: an escape or the character itself; `whole_class` (from `[` to
/// the end of the pattern) is what Go quotes when the class never closes.
fn class_char(t: &str, whole_class: &str) -> Step<(u32, usize)> {
    match t.chars().next() {
        None => Err(GoError::new(Code::MissingBracket, whole_class)),
        Some('\\') => escape(t),
        Some(c) => Ok((c as u32, c.len_utf8())),
    }
}

/// `\p` or `\P` with a one-letter name or a `{name}`, optionally negated with `^`; returns
/// its length.
fn unicode_class(t: &str) -> Step<usize> {
    let after = &t[2..];
    let (seq_len, name) = match after.chars().next() {
        Some('{') => {
            let Some(end) = t.find('}') else {
                return Err(GoError::new(Code::InvalidCharRange, t));
            };
            (end + 1, &t[3..end])
        }
        Some(c) => (2 + c.len_utf8(), &after[..c.len_utf8()]),
        None => (2, ""),
    };
    let name = name.strip_prefix('^').unwrap_or(name);
    if !known_unicode_name(name) {
        return Err(GoError::new(Code::InvalidCharRange, &t[..seq_len]));
    }
    Ok(seq_len)
}

/// A one-character escape at `t` (which starts with `\`): its code point and length.
fn escape(t: &str) -> Step<(u32, usize)> {
    let mut chars = t[1..].char_indices().map(|(i, c)| (i + 1, c));
    let Some((_, c)) = chars.next() else {
        return Err(GoError::new(Code::TrailingBackslash, ""));
    };
    let bad = |end: usize| Err(GoError::new(Code::InvalidEscape, &t[..end]));
    let bytes = t.as_bytes();
    let octal = |i: usize| bytes.get(i).is_some_and(|b| (b'0'..=b'7').contains(b));
    match c {
        '1'..='7' if !octal(2) => bad(2),
        '0'..='7' => {
            // Up to three octal digits in all.
            let mut value = c as u32 - '0' as u32;
            let mut end = 2;
            while end < 4 && octal(end) {
                value = value * 8 + u32::from(bytes[end] - b'0');
                end += 1;
            }
            Ok((value, end))
        }
        'x' => hex_escape(t),
        'a' => Ok((0x07, 2)),
        'f' => Ok((0x0c, 2)),
        'n' => Ok((0x0a, 2)),
        'r' => Ok((0x0d, 2)),
        't' => Ok((0x09, 2)),
        'v' => Ok((0x0b, 2)),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c as u32, 2)),
        c => bad(1 + c.len_utf8()),
    }
}

/// `\xHH` or `\x{H...}` at `t`; Go's error quotes what it read up to the first bad
/// character, included.
fn hex_escape(t: &str) -> Step<(u32, usize)> {
    let bad = |end: usize| Err(GoError::new(Code::InvalidEscape, &t[..end]));
    let mut chars = t.char_indices().skip(2);
    let Some((_, first)) = chars.next() else {
        return bad(t.len());
    };
    if first == '{' {
        let mut value: u32 = 0;
        for (digits, (i, c)) in chars.enumerate() {
            let end = i + c.len_utf8();
            if c == '}' {
                return if digits == 0 {
                    bad(end)
                } else {
                    Ok((value, end))
                };
            }
            let Some(v) = c.to_digit(16) else {
                return bad(end);
            };
            value = value * 16 + v;
            if value > char::MAX as u32 {
                return bad(end);
            }
        }
        return bad(t.len());
    }
    let second = chars.next();
    let end = second.map_or(t.len(), |(i, c)| i + c.len_utf8());
    match (first.to_digit(16), second.and_then(|(_, c)| c.to_digit(16))) {
        (Some(x), Some(y)) => Ok((x * 16 + y, end)),
        _ => bad(end),
    }
}

/// `{n}`, `{n,}` or `{n,m}` at `t` as Go reads it: `(min, max, length)`, with `max == -1`
/// for no upper bound; `None` when the text is not a count (then `{` is a literal). Numbers
/// have no sign and no leading zero; one of nine digits or more reads as `i64::MAX`, which
/// fails the range check as Go's overflow marker does.
fn parse_count(t: &str) -> Option<(i64, i64, usize)> {
    let bytes = t.as_bytes();
    let mut at = 1;
    let (min, len) = parse_int(&bytes[at..])?;
    at += len;
    let max = if bytes.get(at)? == &b',' {
        at += 1;
        if bytes.get(at)? == &b'}' {
            -1
        } else {
            let (max, len) = parse_int(&bytes[at..])?;
            at += len;
            max
        }
    } else {
        min
    };
    (bytes.get(at)? == &b'}').then_some((min, max, at + 1))
}

fn parse_int(bytes: &[u8]) -> Option<(i64, usize)> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || (len >= 2 && bytes[0] == b'0') {
        return None;
    }
    let mut value: i64 = 0;
    for &b in &bytes[..len] {
        if value >= 100_000_000 {
            return Some((i64::MAX, len));
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(pattern: &str) -> String {
        go_syntax_error(pattern).unwrap_or_else(|| panic!("{pattern:?} should be refused"))
    }

    #[test]
    fn stacked_repetition_operators_are_refused_with_both_operators_quoted() {
        assert_eq!(
            err("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert!(err("a*??").ends_with("`*??`"));
        assert!(err("x{1}{2}").ends_with("`{1}{2}`"));
        assert!(err("a***").ends_with("`**`"));
        assert_eq!(go_syntax_error("a??"), None);
        assert_eq!(go_syntax_error("(?:a*)*"), None);
        // A flag group between two operators is a token of its own: Go takes it.
        assert_eq!(go_syntax_error("a*(?i)*"), None);
    }

    #[test]
    fn counts_over_a_thousand_are_refused_alone_or_multiplied() {
        assert!(err("a{1001}").ends_with("invalid repeat count: `{1001}`"));
        assert!(err("a{0,1001}").ends_with("`{0,1001}`"));
        assert!(err("a{100000000}").ends_with("`{100000000}`"));
        assert!(err("(a{100}){11}").ends_with("`{11}`"));
        assert!(err("(a{2}){501}?").ends_with("`{501}?`"));
        assert_eq!(go_syntax_error("a{1000}"), None);
        assert_eq!(go_syntax_error("((a{10}){10}){10}"), None);
        assert_eq!(go_syntax_error("((a{100}){0}){100}"), None);
        assert_eq!(go_syntax_error("(a*){1000}"), None);
    }

    #[test]
    fn braces_that_are_not_counts_are_literals() {
        for pattern in ["a{", "{", "a{,5}", "a{x}", "a{01}", "a{ 2}", "a{1,2"] {
            assert_eq!(go_syntax_error(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn flags_other_than_imsu_are_refused() {
        assert!(err("(?x)a").ends_with("invalid or unsupported Perl syntax: `(?x`"));
        assert!(err("(?i-u:a)").ends_with("`(?i-u`"));
        assert!(err("(?i-)a").ends_with("`(?i-)`"));
        assert!(err("(?=a)").ends_with("`(?=`"));
        assert!(err("(?i").ends_with("`(?i`"));
        for pattern in ["(?i)a", "(?im-sU:a)", "(?)", "(?ii)a"] {
            assert_eq!(go_syntax_error(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn group_names_are_word_characters_only() {
        assert!(err("(?P<a.b>x)").ends_with("invalid named capture: `(?P<a.b>`"));
        assert!(err("(?<>x)").ends_with("`(?<>`"));
        assert!(err("(?<=a)b").ends_with("`(?<=a)b`"));
        assert_eq!(go_syntax_error("(?P<1a>x)(?<_b>y)"), None);
    }

    #[test]
    fn escapes_follow_go() {
        assert!(err(r"\u0041").ends_with(r"invalid escape sequence: `\u`"));
        assert!(err(r"\x{110000}").ends_with(r"`\x{110000`"));
        assert!(err(r"\xg1").ends_with(r"`\xg1`"));
        assert!(err(r"\1").ends_with(r"`\1`"));
        assert!(err(r"a\").ends_with("trailing backslash at end of expression: ``"));
        for pattern in [r"\0", r"\012", r"\Qa*\E+", r"\<", r"\_", r"\x41", r"\z"] {
            assert_eq!(go_syntax_error(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn unicode_names_are_looked_up_as_go_does() {
        assert!(err(r"\p{Emoji}").ends_with(r"invalid character class range: `\p{Emoji}`"));
        assert!(err(r"\p{Old_Italic}").ends_with(r"`\p{Old_Italic}`"));
        assert!(err(r"[\pX]").ends_with(r"`\pX`"));
        for pattern in [
            r"\p{greek}",
            r"\p{Letter}",
            r"\pL",
            r"\P{^Lu}",
            r"[\p{lower_case-letter}]",
        ] {
            assert_eq!(go_syntax_error(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn classes_follow_go() {
        assert!(err("[[:foo:]]").ends_with("invalid character class range: `[:foo:]`"));
        assert!(err("[a--b]").ends_with("`a--`"));
        assert!(err("[abc").ends_with("missing closing ]: `[abc`"));
        assert!(err(r"[a-\d]").ends_with(r"`\d`"));
        for pattern in [
            "[]a]",
            "[^]a]",
            "[a[b]]",
            "[a&&b]",
            "[[:^alpha:]]",
            r"[\d-z]",
        ] {
            assert_eq!(go_syntax_error(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn parentheses_must_balance() {
        assert!(err("(a").ends_with("missing closing ): `(a`"));
        assert!(err("a)").ends_with("unexpected ): `a)`"));
        assert!(err("*a").ends_with("missing argument to repetition operator: `*`"));
        assert!(err("(|+?)").ends_with("`+?`"));
    }

    #[test]
    fn deep_nesting_does_not_exhaust_the_stack() {
        let deep = format!("{}a{}", "(?:".repeat(100_000), "){1}".repeat(100_000));
        assert_eq!(go_syntax_error(&deep), None);
        let deep = format!(
            "(?:{}a{}){{2}}",
            "(?:".repeat(100_000),
            "){1}".repeat(100_000)
        );
        assert_eq!(go_syntax_error(&deep), None);
    }

    #[test]
    fn the_names_list_is_sorted_for_binary_search() {
        assert!(GO_UNICODE_NAMES.windows(2).all(|w| w[0] < w[1]));
    }
}
