//! Writing a new value into a scalar's existing style, and the YAML 1.1 typing rule that
//! decides when a plain scalar must become quoted.

/// The quoting style of the scalar being replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
}

/// The bytes to write in place of the old scalar.
///
/// Plain stays plain unless the new value would read as something other than a string
/// (Flux's kyaml double-quotes those, as Kubernetes parses YAML 1.1) or could not be written
/// plain at all; quoted scalars keep their quotes and escape only what the style needs.
pub(crate) fn encode(value: &str, style: Style) -> String {
    match style {
        Style::Plain if yaml11_non_string(value) || !plain_safe(value) => double_quote(value),
        Style::Plain => value.to_string(),
        Style::SingleQuoted => format!("'{}'", value.replace('\'', "''")),
        Style::DoubleQuoted => double_quote(value),
    }
}

fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` can stand as a plain scalar in block context and read back the same.
fn plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let starts_badly = matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    ) && !(first == '-' && value.len() > 1 && !value[1..].starts_with(' '));
    !starts_badly
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.ends_with(':')
        && !value.ends_with(' ')
        && !value.starts_with(' ')
        && !value.chars().any(|c| c.is_control())
}

/// Go's yaml.v2 (YAML 1.1) would not read `value` as a string when unquoted: booleans
/// (`yes`, `on`, ...), nulls, ints (also hex, octal, binary, `_`), floats, `.inf`/`.nan`,
/// and timestamps. Mirrors kyaml's `IsValueNonString`.
pub(crate) fn yaml11_non_string(value: &str) -> bool {
    if value.is_empty() || value.contains('\n') {
        return false;
    }
    const KEYWORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
    ];
    if KEYWORDS.contains(&value) {
        return true;
    }
    let first = value.as_bytes()[0];
    if first == b'.' {
        return value[1..].bytes().all(|c| c.is_ascii_digit()) && value.len() > 1
            || value.parse::<f64>().is_ok() && !value.contains(['i', 'n', 'I', 'N']);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return false;
    }
    if is_timestamp(value) {
        return true;
    }
    let plain: String = value.chars().filter(|&c| c != '_').collect();
    is_go_int(&plain) || is_yaml_float(&plain)
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint` would accept it.
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let unsigned_only = s.starts_with('+') || s.starts_with('-');
    let (digits, radix) =
        if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (h, 16)
        } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (o, 8)
        } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (b, 2)
        } else if body.len() > 1 && body.starts_with('0') {
            (&body[1..], 8)
        } else {
            (body, 10)
        };
    let _ = unsigned_only;
    !digits.is_empty() && u64::from_str_radix(digits, radix).is_ok()
}

/// yaml.v2's float form `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, in range.
fn is_yaml_float(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    if int_digits == 0 {
        if b.first() != Some(&b'.') {
            return false;
        }
        i += 1;
        let frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return false;
        }
        i += frac;
    } else if b.get(i) == Some(&b'.') {
        i += 1;
        i += b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// yaml.v2 timestamps: `2006-1-2`, optionally followed by `T`/`t`/space and a time.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, min: usize, max: usize| -> Option<usize> {
        let n = b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        (min..=max).contains(&n).then_some(from + n)
    };
    let Some(i) = digits(0, 4, 4) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    let Some(i) = digits(i + 1, 1, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    let Some(i) = digits(i + 1, 1, 2) else {
        return false;
    };
    if i == b.len() {
        return true;
    }
    if !matches!(b[i], b'T' | b't' | b' ') {
        return false;
    }
    let Some(j) = digits(i + 1, 1, 2) else {
        return false;
    };
    b.get(j) == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_types() {
        for non_string in [
            "1",
            "42",
            "-3",
            "0x1F",
            "017",
            "0b101",
            "1_000",
            "1.5",
            "2025.01",
            "1e5",
            ".5",
            "yes",
            "on",
            "Off",
            "~",
            "null",
            ".inf",
            "-.Inf",
            "2025-01-02",
            "2025-1-2 10:00:00",
        ] {
            assert!(yaml11_non_string(non_string), "{non_string}");
        }
        for string in [
            "1.2.3",
            "v1",
            "1.0.0-rc.1",
            "app:1.2.3",
            "latest",
            "2025.01.02-abc",
            "0x",
            "1e",
            "sha256:abc",
            "",
            "2025-01-02-abc",
            "08a",
        ] {
            assert!(!yaml11_non_string(string), "{string}");
        }
    }

    #[test]
    fn styles_are_kept() {
        assert_eq!(encode("1.2.3", Style::Plain), "1.2.3");
        assert_eq!(encode("42", Style::Plain), "\"42\"");
        assert_eq!(encode("a'b", Style::SingleQuoted), "'a''b'");
        assert_eq!(encode("a\"b", Style::DoubleQuoted), "\"a\\\"b\"");
        assert_eq!(encode("reg.io/app:1", Style::Plain), "reg.io/app:1");
    }
}
