//! Go's `strconv.ParseFloat(s, 64)`, which Flux's numerical policy applies to each tag.
//!
//! Rust's `f64::from_str` differs in ways that change answers: Go accepts hexadecimal
//! floats (`0x1p-2`) and `_` digit separators (`1_000`), rejects a signed NaN, and reports
//! overflow (`1e400`) as an error where Rust returns infinity. Decimal digits themselves
//! are handed to Rust's correctly rounded parser once the syntax is Go's.

/// Parses `s` as Go's `strconv.ParseFloat(s, 64)` does; `None` where Go returns an error.
///
/// ```
/// use tagsmith_image_policy_core::parse_go_float;
/// assert_eq!(parse_go_float("1.5"), Some(1.5));
/// assert_eq!(parse_go_float("1_000"), Some(1000.0));
/// assert_eq!(parse_go_float("0x1p-2"), Some(0.25));
/// assert_eq!(parse_go_float("1e400"), None);      // out of range is an error in Go
/// assert_eq!(parse_go_float("1.0.0"), None);
/// ```
pub fn parse_go_float(s: &str) -> Option<f64> {
    if let Some(n) = small_integer(s.as_bytes()) {
        return Some(n as f64);
    }
    parse_go_float_slow(s)
}

/// The value of `b` when it is 1 to 15 ASCII digits and nothing else: build numbers, the
/// common numerical tag. Such values convert to `f64` exactly, so this is Go's answer too.
/// Up to eight digits are checked and converted in one 64-bit word, without a loop.
#[inline]
pub(crate) fn small_integer(b: &[u8]) -> Option<u64> {
    match b.len() {
        1..=8 => eight_digits(b),
        9..=15 => {
            let (high, low) = b.split_at(b.len() - 8);
            Some(eight_digits(high)? * 100_000_000 + eight_digits(low)?)
        }
        _ => None,
    }
}

/// Up to eight ASCII digits as a number (SWAR: the bytes are right-aligned in a word padded
/// with `'0'`, checked for digits and combined pairwise, as simdjson does).
#[inline]
fn eight_digits(b: &[u8]) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let len = b.len();
    let word = if len >= 4 {
        // Two overlapping 4-byte reads instead of a variable-length copy (a memcpy call
        // that cost more than the parse): the overlap holds the same bytes in both.
        let first = u64::from(u32::from_le_bytes(b[..4].try_into().ok()?));
        let last = u64::from(u32::from_le_bytes(b[len - 4..].try_into().ok()?));
        let pad = 8 * (8 - len as u32);
        (ZEROS & ((1u64 << pad) - 1)) | first << pad | last << 32
    } else {
        // Shift each byte in at the top; the '0' padding slides down below them.
        b.iter()
            .fold(ZEROS, |word, &c| word >> 8 | u64::from(c) << 56)
    };
    // Every byte is 0x30..=0x39: its high nibble is 3, and adding 6 keeps it 3.
    let high = word & 0xF0F0_F0F0_F0F0_F0F0;
    let carried = (word.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if high | carried != 0x3333_3333_3333_3333 {
        return None;
    }
    // The first byte is the most significant digit and the lowest byte of the word.
    let digits = word & 0x0F0F_0F0F_0F0F_0F0F;
    let pairs = (digits.wrapping_mul((10 << 8) + 1) >> 8) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul((100 << 16) + 1) >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(quads.wrapping_mul((10_000 << 32) + 1) >> 32)
}

fn parse_go_float_slow(s: &str) -> Option<f64> {
    let (negative, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if body.eq_ignore_ascii_case("nan") {
        // Go's parser takes no sign before NaN.
        return (body.len() == s.len()).then_some(f64::NAN);
    }
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let bytes = body.as_bytes();
    let value = if bytes.len() > 2 && bytes[0] == b'0' && (bytes[1] | 0x20) == b'x' {
        parse_hex(&body[2..])?
    } else {
        parse_decimal(body)?
    };
    if value.is_infinite() {
        return None; // Go: ErrRange
    }
    Some(if negative { -value } else { value })
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if matches!(b.first(), Some(b'+' | b'-')) {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (b[1] | 0x20) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&(c | 0x20))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `digits [. digits] [e [+-] digits]` with at least one mantissa digit.
fn parse_decimal(body: &str) -> Option<f64> {
    let cleaned: String;
    let text = if body.contains('_') {
        cleaned = body.replace('_', "");
        cleaned.as_str()
    } else {
        body
    };
    let b = text.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.parse().ok()
}

/// `hexdigits [. hexdigits] p [+-] digits` (Go requires the `p` exponent).
fn parse_hex(body: &str) -> Option<f64> {
    let b: Vec<u8> = body.bytes().filter(|&c| c != b'_').collect();
    let mut i = 0;
    let mut mantissa = 0f64;
    let mut digits = 0;
    let mut scale = 0i64;
    let mut seen_point = false;
    while i < b.len() {
        let c = b[i];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            mantissa = mantissa * 16.0 + f64::from(d);
            digits += 1;
            if seen_point {
                scale -= 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 || i >= b.len() || (b[i] | 0x20) != b'p' {
        return None;
    }
    let exponent: i64 = std::str::from_utf8(&b[i + 1..]).ok().and_then(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()))
            .then(|| e.parse().ok())
            .flatten()
    })?;
    let total = i32::try_from(exponent.checked_add(scale)?.clamp(-2000, 2000)).ok()?;
    Some(mantissa * 2f64.powi(total))
}

#[cfg(test)]
mod tests {
    use super::{parse_go_float, small_integer};

    #[test]
    fn accepts_what_go_accepts() {
        assert_eq!(parse_go_float("42"), Some(42.0));
        assert_eq!(parse_go_float("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_go_float(".5"), Some(0.5));
        assert_eq!(parse_go_float("5."), Some(5.0));
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("-infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go_float("0x1.8p1"), Some(3.0));
        assert_eq!(parse_go_float("1_000.5"), Some(1000.5));
    }

    #[test]
    fn integers_take_the_word_path_exactly() {
        for n in [
            0u64,
            7,
            10,
            99,
            1234,
            98_765_432,
            100_000_000,
            123_456_789_012_345,
        ] {
            let text = n.to_string();
            assert_eq!(small_integer(text.as_bytes()), Some(n), "{text}");
            assert_eq!(parse_go_float(&text), Some(n as f64), "{text}");
        }
        // Leading zeros are digits like any other (Go: "007" is 7).
        assert_eq!(small_integer(b"00000007"), Some(7));
        assert_eq!(small_integer(b"0000000000000007"), None); // 16 digits: the slow path
        assert_eq!(parse_go_float("0000000000000007"), Some(7.0));
        // Every byte that is not a digit, at every position, falls through.
        for bad in 0u8..=255 {
            if bad.is_ascii_digit() {
                continue;
            }
            for at in 0..8 {
                let mut text = *b"12345678";
                text[at] = bad;
                assert_eq!(small_integer(&text), None, "{bad:#x} at {at}");
                assert_eq!(small_integer(&text[at..]), None, "{bad:#x} leading");
            }
        }
    }

    proptest::proptest! {
        /// The word path agrees with a plain digit loop on every length and byte mix
        /// (digits mostly, so that long all-digit strings are common).
        #[test]
        fn word_path_matches_a_digit_loop(text in "[0-9]{0,17}|[0-9/:a.+-]{0,17}") {
            let b = text.as_bytes();
            let expected = (!b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit))
                .then(|| b.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')));
            proptest::prop_assert_eq!(small_integer(b), expected);
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "", "+", "abc", "1.2.3", "1e", "1e+", "+nan", "-NaN", "infin", "0x1", "1__0", "_1",
            "1_", "1e400", "-1e400", "1.0-rc1", " 1", "0x", "v1",
        ] {
            assert_eq!(parse_go_float(bad), None, "{bad:?}");
        }
    }
}
