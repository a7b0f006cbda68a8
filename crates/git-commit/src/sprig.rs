//! The Sprig functions Flux's message templates use most, for `gotmpl`.
//!
//! Flux renders `messageTemplate` with Sprig's hermetic function map
//! (`sprig.HermeticTxtFuncMap()`), and its documentation shows `lower`, `contains`,
//! `toString`, `sha256sum` and `trunc`. No Sprig port targets `gotmpl` (the `sprig` crate
//! is built on `gtmpl`, whose random map order we rejected), so this module carries the
//! string, list, default and hash functions, with Sprig's argument order (the piped value
//! comes last) and semantics; `tests/templates.rs` compares them with Go and Sprig v3 on
//! the vectors. Also the regex functions (Go RE2 syntax, which the `regex` crate shares),
//! integer math and `uniq`/`sortAlpha`/`has`. Not here: dates (a commit message that
//! changes with the clock would make every run differ), dicts, semver and crypto beyond
//! hashes; a template that calls one fails with "undefined function: NAME" when the message
//! is rendered, which `run` does before it writes any file.
//!
//! Budgets: a message template is user input, and nothing it does may panic, exhaust
//! memory or run unbounded. Every function's result is at most [`MAX_VALUE_BYTES`] (a
//! list at most [`MAX_LIST_ITEMS`] items), checked before the result is built where it
//! can grow faster than its input (`repeat`, `replace`, `join`, `splitList`, the regex
//! replacements, `printf` padding, whose width and precision are at most
//! [`MAX_PRINTF_WIDTH`]); all results of one render together are at most
//! [`MAX_WORK_BYTES`]. Go has no such limits; a template that hits one fails with a
//! template error that names the function and the limit.

use base64::Engine as _;
use gotmpl::{FuncMap, TemplateError, Value};
use sha2::Digest as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The largest string a template function may return: the message budget
/// ([`crate::MAX_MESSAGE_BYTES`]).
pub const MAX_VALUE_BYTES: usize = crate::MAX_MESSAGE_BYTES;
/// The longest list a template function may return.
pub const MAX_LIST_ITEMS: usize = 10_000;
/// What all function results of one render may add up to.
pub const MAX_WORK_BYTES: usize = 64 << 20;
/// The largest `printf` width or precision (`%65535d`); Go has no limit.
pub const MAX_PRINTF_WIDTH: usize = 65_535;
/// What a function may allocate on the way to a result that is then checked.
const MAX_TRANSIENT_BYTES: usize = 16 << 20;

type Result<T> = std::result::Result<T, TemplateError>;

fn err(name: &str, message: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("error calling {name}: {message}"))
}

/// The error for a result over a budget.
fn too_big(name: &str, size: u128, limit: usize, unit: &str) -> TemplateError {
    err(
        name,
        format!(
            "the result would be {size} {unit}, over the commit message budget of {limit} {unit}"
        ),
    )
}

/// Refuses a string result of `size` bytes before it is built.
fn fits(name: &str, size: u128) -> Result<()> {
    if size > MAX_VALUE_BYTES as u128 {
        Err(too_big(name, size, MAX_VALUE_BYTES, "bytes"))
    } else {
        Ok(())
    }
}

/// Refuses a list result of `items` items before it is built.
fn fits_list(name: &str, items: usize) -> Result<()> {
    if items > MAX_LIST_ITEMS {
        Err(too_big(name, items as u128, MAX_LIST_ITEMS, "items"))
    } else {
        Ok(())
    }
}

/// About how many bytes Go's `%v` prints for `value` (no allocation).
fn printed_len(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::List(items) => items
            .iter()
            .map(|v| printed_len(v).saturating_add(1))
            .fold(2usize, usize::saturating_add),
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| k.len().saturating_add(printed_len(v)).saturating_add(2))
            .fold(5usize, usize::saturating_add),
        _ => 24,
    }
}

/// Sprig's `strval`: strings as they are, everything else as Go's `%v` prints it (for
/// Flux's data, which Go holds in structs, maps print differently; see docs/git.md).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

/// Sprig's `toInt` for the counts `trunc` and `repeat` take.
fn int(name: &str, value: &Value) -> Result<i64> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Uint(n) => i64::try_from(*n).map_err(|e| err(name, e)),
        Value::Float(f) => Ok(*f as i64),
        Value::String(s) => Ok(s.trim().parse().unwrap_or(0)),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Ok(0),
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty collections.
fn is_empty(value: &Value) -> bool {
    !value.is_truthy()
}

fn arity<'a>(name: &str, args: &'a [Value], n: usize) -> Result<&'a [Value]> {
    if args.len() == n {
        Ok(args)
    } else {
        Err(err(
            name,
            format!("wrong number of args: want {n} got {}", args.len()),
        ))
    }
}

fn string_fn(
    map: &mut FuncMap,
    name: &'static str,
    f: impl Fn(&str) -> String + Send + Sync + 'static,
) {
    map.insert(
        name.into(),
        Arc::new(move |args: &[Value]| {
            let args = arity(name, args, 1)?;
            Ok(Value::String(f(&text(&args[0])).into()))
        }),
    );
}

fn two_strings_fn(
    map: &mut FuncMap,
    name: &'static str,
    f: impl Fn(&str, &str) -> Value + Send + Sync + 'static,
) {
    map.insert(
        name.into(),
        Arc::new(move |args: &[Value]| {
            let args = arity(name, args, 2)?;
            Ok(f(&text(&args[0]), &text(&args[1])))
        }),
    );
}

/// Go's `strings.Title`: the first letter of each word in upper case, where a word starts
/// after anything that is not a letter, digit, underscore or (outside ASCII) not a space.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous = ' ';
    for c in s.chars() {
        let separator = if previous.is_ascii() {
            !(previous.is_ascii_alphanumeric() || previous == '_')
        } else {
            previous.is_whitespace()
        };
        if separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// Sprig's `trunc`: the first `n` bytes, or the last `-n`; the whole string when shorter.
/// Go slices bytes; a cut inside a character leaves invalid UTF-8 there, which prints as
/// U+FFFD. Same here.
fn trunc(n: i64, s: &str) -> String {
    let b = s.as_bytes();
    let len = b.len() as i64;
    if n < 0 && len + n > 0 {
        String::from_utf8_lossy(&b[(len + n) as usize..]).into_owned()
    } else if n >= 0 && len > n {
        String::from_utf8_lossy(&b[..n as usize]).into_owned()
    } else {
        s.to_string()
    }
}

/// Go's `%q` for a string: double quotes, Go escapes, non-printable runes as `\u`/`\x`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list_of(value: &Value) -> Vec<Value> {
    match value {
        Value::List(items) => items.to_vec(),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The functions, keyed by their Sprig names.
pub fn functions() -> FuncMap {
    let mut map = FuncMap::new();
    string_fn(&mut map, "lower", str::to_lowercase);
    string_fn(&mut map, "upper", str::to_uppercase);
    string_fn(&mut map, "title", title);
    string_fn(&mut map, "trim", |s| s.trim().to_string());
    string_fn(&mut map, "nospace", |s| {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    });
    string_fn(&mut map, "toString", str::to_string);
    string_fn(&mut map, "sha256sum", |s| {
        format!("{:x}", sha2::Sha256::digest(s.as_bytes()))
    });
    string_fn(&mut map, "sha1sum", |s| {
        format!("{:x}", sha1::Sha1::digest(s.as_bytes()))
    });
    string_fn(&mut map, "b64enc", |s| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    string_fn(&mut map, "b64dec", |s| {
        match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // Sprig returns the decoder's error text as the value.
            Err(e) => e.to_string(),
        }
    });
    two_strings_fn(&mut map, "trimAll", |cutset, s| {
        Value::String(s.trim_matches(|c| cutset.contains(c)).into())
    });
    two_strings_fn(&mut map, "trimPrefix", |prefix, s| {
        Value::String(s.strip_prefix(prefix).unwrap_or(s).into())
    });
    two_strings_fn(&mut map, "trimSuffix", |suffix, s| {
        Value::String(s.strip_suffix(suffix).unwrap_or(s).into())
    });
    two_strings_fn(&mut map, "contains", |sub, s| Value::Bool(s.contains(sub)));
    two_strings_fn(&mut map, "hasPrefix", |prefix, s| {
        Value::Bool(s.starts_with(prefix))
    });
    two_strings_fn(&mut map, "hasSuffix", |suffix, s| {
        Value::Bool(s.ends_with(suffix))
    });
    map.insert(
        "splitList".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("splitList", args, 2)?;
            let (sep, s) = (text(&args[0]), text(&args[1]));
            // Go's strings.Split: an empty separator splits after each UTF-8 sequence
            // (none for an empty string).
            if sep.is_empty() {
                fits_list("splitList", s.chars().count())?;
                return Ok(strings(s.chars().map(String::from)));
            }
            fits_list(
                "splitList",
                s.matches(sep.as_str()).count().saturating_add(1),
            )?;
            Ok(strings(s.split(sep.as_str()).map(str::to_string)))
        }),
    );
    map.insert(
        "replace".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("replace", args, 3)?;
            let (old, new, s) = (text(&args[0]), text(&args[1]), text(&args[2]));
            let count = if old.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(old.as_str()).count()
            } as u128;
            fits(
                "replace",
                s.len() as u128 - count * old.len() as u128 + count * new.len() as u128,
            )?;
            Ok(Value::String(s.replace(&old, &new).into()))
        }),
    );
    map.insert(
        "trunc".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("trunc", args, 2)?;
            Ok(Value::String(
                trunc(int("trunc", &args[0])?, &text(&args[1])).into(),
            ))
        }),
    );
    map.insert(
        "repeat".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("repeat", args, 2)?;
            let count = int("repeat", &args[0])?;
            if count < 0 {
                return Err(err("repeat", "strings: negative Repeat count"));
            }
            let s = text(&args[1]);
            fits("repeat", count as u128 * s.len() as u128)?;
            Ok(Value::String(s.repeat(count as usize).into()))
        }),
    );
    map.insert(
        "quote".into(),
        Arc::new(|args: &[Value]| {
            let quoted: Vec<String> = args
                .iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| go_quote(&text(a)))
                .collect();
            Ok(Value::String(quoted.join(" ").into()))
        }),
    );
    map.insert(
        "squote".into(),
        Arc::new(|args: &[Value]| {
            let quoted: Vec<String> = args
                .iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| format!("'{}'", text(a)))
                .collect();
            Ok(Value::String(quoted.join(" ").into()))
        }),
    );
    map.insert(
        "join".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("join", args, 2)?;
            let sep = text(&args[0]);
            let items = list_of(&args[1]);
            let size = items.iter().map(|v| printed_len(v) as u128).sum::<u128>()
                + sep.len() as u128 * items.len().saturating_sub(1) as u128;
            fits("join", size)?;
            let parts: Vec<String> = items.iter().map(text).collect();
            Ok(Value::String(parts.join(&sep).into()))
        }),
    );
    map.insert(
        "first".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("first", args, 1)?;
            Ok(list_of(&args[0]).into_iter().next().unwrap_or(Value::Nil))
        }),
    );
    map.insert(
        "last".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("last", args, 1)?;
            Ok(list_of(&args[0]).pop().unwrap_or(Value::Nil))
        }),
    );
    map.insert(
        "default".into(),
        Arc::new(|args: &[Value]| match args {
            [fallback] => Ok(fallback.clone()),
            [fallback, given] if is_empty(given) => Ok(fallback.clone()),
            [_, given] => Ok(given.clone()),
            _ => Err(err("default", "wrong number of args: want 1 or 2")),
        }),
    );
    map.insert(
        "empty".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("empty", args, 1)?;
            Ok(Value::Bool(is_empty(&args[0])))
        }),
    );
    map.insert(
        "coalesce".into(),
        Arc::new(|args: &[Value]| {
            Ok(args
                .iter()
                .find(|a| !is_empty(a))
                .cloned()
                .unwrap_or(Value::Nil))
        }),
    );
    regex_functions(&mut map);
    math_functions(&mut map);
    list_functions(&mut map);
    output_functions(&mut map);
    map.insert(
        "ternary".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("ternary", args, 3)?;
            Ok(if args[2].is_truthy() {
                args[0].clone()
            } else {
                args[1].clone()
            })
        }),
    );
    budgeted(map)
}

/// Wraps every function so that its result is checked against the per-value budgets and
/// counted against the render's total, [`MAX_WORK_BYTES`] (a `range` may call a
/// function many times). Each call of [`functions`] starts a fresh total.
fn budgeted(map: FuncMap) -> FuncMap {
    let spent = Arc::new(AtomicUsize::new(0));
    map.into_iter()
        .map(|(name, f)| {
            let spent = Arc::clone(&spent);
            let label = name.clone();
            let wrapped: gotmpl::ValueFunc = Arc::new(move |args: &[Value]| {
                let value = f(args)?;
                let size = match &value {
                    Value::String(s) => {
                        fits(&label, s.len() as u128)?;
                        s.len()
                    }
                    Value::List(items) => {
                        fits_list(&label, items.len())?;
                        printed_len(&value)
                    }
                    _ => 8,
                };
                let total = spent.fetch_add(size, Ordering::Relaxed).saturating_add(size);
                if total > MAX_WORK_BYTES {
                    return Err(err(
                        &label,
                        format!("the template's functions produced more than {MAX_WORK_BYTES} bytes in all; a commit message needs far less"),
                    ));
                }
                Ok(value)
            });
            (name, wrapped)
        })
        .collect()
}

/// Go's output builtins (`print`, `println`, `printf`, `html`, `js`, `urlquery`), put
/// under the same budgets as Sprig's functions. `printf` is gotmpl's own, called once
/// its widths are checked: gotmpl clamps a width over 65535 silently, where Go pads.
fn output_functions(map: &mut FuncMap) {
    map.insert(
        "print".into(),
        Arc::new(|args: &[Value]| {
            transient("print", args)?;
            Ok(Value::String(sprint(args, false).into()))
        }),
    );
    map.insert(
        "println".into(),
        Arc::new(|args: &[Value]| {
            transient("println", args)?;
            Ok(Value::String(sprint(args, true).into()))
        }),
    );
    map.insert(
        "printf".into(),
        Arc::new(|args: &[Value]| {
            let Some(Value::String(format)) = args.first() else {
                return builtin("printf", args);
            };
            let padding = printf_padding(format, &args[1..])?;
            let bound = (format.len() as u128)
                + padding
                + 8 * args[1..]
                    .iter()
                    .map(|a| printed_len(a) as u128)
                    .sum::<u128>();
            if bound > MAX_TRANSIENT_BYTES as u128 {
                return Err(too_big(
                    "printf",
                    bound,
                    MAX_TRANSIENT_BYTES,
                    "bytes (at most)",
                ));
            }
            builtin("printf", args)
        }),
    );
    for (name, escape) in [
        ("html", gotmpl::html_escape as fn(&str) -> String),
        ("js", gotmpl::js_escape),
        ("urlquery", gotmpl::url_encode),
    ] {
        map.insert(
            name.into(),
            Arc::new(move |args: &[Value]| {
                let args = arity(name, args, 1)?;
                transient(name, args)?;
                let s = match &args[0] {
                    Value::Nil => "<no value>".to_string(),
                    other => text(other),
                };
                Ok(Value::String(escape(&s).into()))
            }),
        );
    }
}

/// Refuses arguments whose printed form would be too large to build at all.
fn transient(name: &str, args: &[Value]) -> Result<()> {
    let size = args.iter().map(|a| printed_len(a) as u128).sum::<u128>() * 6;
    if size > MAX_TRANSIENT_BYTES as u128 {
        return Err(too_big(name, size, MAX_TRANSIENT_BYTES, "bytes (at most)"));
    }
    Ok(())
}

/// Go's `fmt.Sprint` (spaces between operands when neither is a string) or
/// `fmt.Sprintln` (spaces always, and a newline), as gotmpl prints them.
fn sprint(args: &[Value], line: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        let space = i > 0
            && (line
                || !(matches!(args[i - 1], Value::String(_)) || matches!(arg, Value::String(_))));
        if space {
            out.push(' ');
        }
        let _ = write!(out, "{arg}");
    }
    if line {
        out.push('\n');
    }
    out
}

/// Calls gotmpl's own builtin `name` (which [`output_functions`] shadows) through a
/// one-action template over the arguments.
fn builtin(name: &str, args: &[Value]) -> Result<Value> {
    let call: String = (0..args.len()).map(|i| format!(" (index . {i})")).collect();
    let source = format!("{{{{ {name}{call} }}}}");
    let out = gotmpl::Template::new(name)
        .parse(&source)?
        .execute_to_string(&Value::List(args.to_vec().into()))?;
    Ok(Value::String(out.into()))
}

/// The padding a `printf` format asks for (widths and precisions, literal or `*`), each
/// at most [`MAX_PRINTF_WIDTH`].
fn printf_padding(format: &str, args: &[Value]) -> Result<u128> {
    let bytes = format.as_bytes();
    let mut total: u128 = 0;
    let mut next_arg = 0usize;
    let mut i = 0;
    let check = |n: u128, total: &mut u128| -> Result<()> {
        if n > MAX_PRINTF_WIDTH as u128 {
            return Err(err(
                "printf",
                format!("width or precision {n} is over the limit of {MAX_PRINTF_WIDTH}"),
            ));
        }
        *total += n;
        Ok(())
    };
    // Reads `[n]` (an explicit argument index) at `i`.
    let index = |i: &mut usize, next_arg: &mut usize| {
        if bytes.get(*i) == Some(&b'[') {
            let end = bytes[*i..].iter().position(|&b| b == b']').map(|p| *i + p);
            if let Some(end) = end {
                if let Ok(n) = format[*i + 1..end].parse::<usize>() {
                    *next_arg = n.saturating_sub(1);
                }
                *i = end + 1;
            }
        }
    };
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        while matches!(bytes.get(i), Some(b'+' | b'-' | b'#' | b' ' | b'0')) {
            i += 1;
        }
        for precision in [false, true] {
            if precision {
                if bytes.get(i) != Some(&b'.') {
                    break;
                }
                i += 1;
            }
            index(&mut i, &mut next_arg);
            if bytes.get(i) == Some(&b'*') {
                i += 1;
                let n = match args.get(next_arg) {
                    Some(Value::Int(n)) => n.unsigned_abs() as u128,
                    Some(Value::Uint(n)) => *n as u128,
                    _ => 0,
                };
                next_arg += 1;
                check(n, &mut total)?;
            } else {
                let start = i;
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if i > start {
                    // Digits beyond u128 are over the limit whatever they say.
                    let n = format[start..i].parse::<u128>().unwrap_or(u128::MAX);
                    check(n, &mut total)?;
                }
            }
        }
        index(&mut i, &mut next_arg);
        // The verb: one character (any UTF-8 length) that takes the next argument.
        if let Some(c) = format[i.min(format.len())..].chars().next() {
            i += c.len_utf8();
            next_arg += 1;
        }
    }
    Ok(total)
}

/// Compiles a Sprig regex argument (Go RE2 syntax, which the `regex` crate shares); an
/// invalid one fails the call, as Sprig's `MustCompile` panics inside the template.
fn compile(name: &str, pattern: &Value) -> Result<regex::Regex> {
    regex::Regex::new(&text(pattern)).map_err(|e| err(name, e))
}

fn strings(items: impl IntoIterator<Item = String>) -> Value {
    Value::List(
        items
            .into_iter()
            .map(|s| Value::String(s.into()))
            .collect::<Vec<_>>()
            .into(),
    )
}

/// Go's `Regexp.Split(s, n)`: the pieces between matches; `n > 0` at most n pieces (the
/// last holds the rest), `n == 0` none, `n < 0` all. An empty match at the start yields no
/// empty first piece.
fn go_split(re: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if s.is_empty() {
        return vec![String::new()];
    }
    let mut pieces = Vec::new();
    let (mut start, mut end) = (0, 0);
    for found in re.find_iter(s) {
        if n > 0 && pieces.len() as i64 == n - 1 {
            break;
        }
        end = found.start();
        if found.end() != 0 {
            pieces.push(s[start..end].to_string());
        }
        start = found.end();
    }
    if end != s.len() {
        pieces.push(s[start..].to_string());
    }
    pieces
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sprig's regex functions (the pattern comes first, the string after it).
fn regex_functions(map: &mut FuncMap) {
    map.insert(
        "regexMatch".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexMatch", args, 2)?;
            // Sprig ignores the compile error here (and only here): no match.
            let matched =
                compile("regexMatch", &args[0]).is_ok_and(|re| re.is_match(&text(&args[1])));
            Ok(Value::Bool(matched))
        }),
    );
    map.insert(
        "regexFind".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexFind", args, 2)?;
            let s = text(&args[1]);
            let found = compile("regexFind", &args[0])?
                .find(&s)
                .map(|m| m.as_str().to_string());
            Ok(Value::String(found.unwrap_or_default().into()))
        }),
    );
    map.insert(
        "regexFindAll".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexFindAll", args, 3)?;
            let s = text(&args[1]);
            let n = int("regexFindAll", &args[2])?;
            let re = compile("regexFindAll", &args[0])?;
            let limit = if n < 0 { usize::MAX } else { n as usize };
            let found: Vec<String> = re
                .find_iter(&s)
                .take(limit.min(MAX_LIST_ITEMS + 1))
                .map(|m| m.as_str().to_string())
                .collect();
            fits_list("regexFindAll", found.len())?;
            Ok(strings(found))
        }),
    );
    map.insert(
        "regexReplaceAll".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexReplaceAll", args, 3)?;
            let s = text(&args[1]);
            let re = compile("regexReplaceAll", &args[0])?;
            let replacement = text(&args[2]);
            // Each `$` reference expands to at most the whole input: a bound on what the
            // replacement may allocate before its size is checked.
            let matches = re.find_iter(&s).count() as u128;
            let dollars = replacement.matches('$').count() as u128;
            let bound =
                s.len() as u128 + matches * (replacement.len() as u128 + dollars * s.len() as u128);
            if bound > MAX_TRANSIENT_BYTES as u128 {
                return Err(too_big(
                    "regexReplaceAll",
                    bound,
                    MAX_TRANSIENT_BYTES,
                    "bytes (at most)",
                ));
            }
            // `$1`, `${name}` and `$$` expand as in Go's `Regexp.Expand`.
            let replaced = re.replace_all(&s, replacement.as_str()).into_owned();
            Ok(Value::String(replaced.into()))
        }),
    );
    map.insert(
        "regexReplaceAllLiteral".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexReplaceAllLiteral", args, 3)?;
            let s = text(&args[1]);
            let re = compile("regexReplaceAllLiteral", &args[0])?;
            let replacement = text(&args[2]);
            let (count, matched) = re
                .find_iter(&s)
                .fold((0u128, 0u128), |(n, len), m| (n + 1, len + m.len() as u128));
            fits(
                "regexReplaceAllLiteral",
                s.len() as u128 - matched + count * replacement.len() as u128,
            )?;
            let replaced = re
                .replace_all(&s, regex::NoExpand(&replacement))
                .into_owned();
            Ok(Value::String(replaced.into()))
        }),
    );
    map.insert(
        "regexSplit".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("regexSplit", args, 3)?;
            let re = compile("regexSplit", &args[0])?;
            let n = int("regexSplit", &args[2])?;
            // More pieces than the list budget fail anyway: stop splitting there.
            let cap = MAX_LIST_ITEMS as i64 + 1;
            let pieces = go_split(&re, &text(&args[1]), if n < 0 || n > cap { cap } else { n });
            if n >= 0 && n <= cap || pieces.len() <= MAX_LIST_ITEMS {
                fits_list("regexSplit", pieces.len())?;
            } else {
                return Err(too_big(
                    "regexSplit",
                    pieces.len() as u128,
                    MAX_LIST_ITEMS,
                    "items (at least)",
                ));
            }
            Ok(strings(pieces))
        }),
    );
    string_fn(map, "regexQuoteMeta", quote_meta);
}

/// Sprig's integer math (`int64`, arguments converted as `toInt64` does).
fn math_functions(map: &mut FuncMap) {
    fn fold(
        map: &mut FuncMap,
        name: &'static str,
        min_args: usize,
        f: fn(i64, i64) -> Option<i64>,
    ) {
        map.insert(
            name.into(),
            Arc::new(move |args: &[Value]| {
                if args.len() < min_args {
                    return Err(err(
                        name,
                        format!(
                            "wrong number of args: want at least {min_args} got {}",
                            args.len()
                        ),
                    ));
                }
                let mut numbers = args.iter().map(|a| int(name, a));
                let mut total = numbers.next().transpose()?.unwrap_or(0);
                for n in numbers {
                    // Go's int64 arithmetic wraps; a zero divisor panics in Go.
                    total = f(total, n?)
                        .ok_or_else(|| err(name, "runtime error: integer divide by zero"))?;
                }
                Ok(Value::Int(total))
            }),
        );
    }
    fold(map, "add", 0, |a, b| Some(a.wrapping_add(b)));
    fold(map, "mul", 1, |a, b| Some(a.wrapping_mul(b)));
    fold(map, "max", 1, |a, b| Some(a.max(b)));
    fold(map, "min", 1, |a, b| Some(a.min(b)));
    fold(map, "sub", 2, |a, b| Some(a.wrapping_sub(b)));
    fold(map, "div", 2, |a, b| {
        a.checked_div(b)
            .or_else(|| (b == -1).then(|| a.wrapping_neg()))
    });
    fold(map, "mod", 2, |a, b| {
        a.checked_rem(b).or_else(|| (b == -1).then_some(0))
    });
    map.insert(
        "add1".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("add1", args, 1)?;
            Ok(Value::Int(int("add1", &args[0])?.wrapping_add(1)))
        }),
    );
}

/// Sprig's list helpers that commit messages use: `uniq`, `sortAlpha`, `has`.
fn list_functions(map: &mut FuncMap) {
    map.insert(
        "uniq".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("uniq", args, 1)?;
            let items = list_of(&args[0]);
            // Quadratic, as Sprig's: bounded by the list budget.
            fits_list("uniq", items.len())?;
            let mut kept: Vec<Value> = Vec::new();
            for item in items {
                if !kept.contains(&item) {
                    kept.push(item);
                }
            }
            Ok(Value::List(kept.into()))
        }),
    );
    map.insert(
        "sortAlpha".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("sortAlpha", args, 1)?;
            let mut items: Vec<String> = list_of(&args[0]).iter().map(text).collect();
            items.sort();
            Ok(strings(items))
        }),
    );
    map.insert(
        "has".into(),
        Arc::new(|args: &[Value]| {
            let args = arity("has", args, 2)?;
            Ok(Value::Bool(list_of(&args[1]).contains(&args[0])))
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_string_helpers() {
        assert_eq!(title("hello wORLD-foo_bar 1st"), "Hello WORLD-Foo_bar 1st");
        assert_eq!(trunc(3, "abcdef"), "abc");
        assert_eq!(trunc(-2, "abcdef"), "ef");
        assert_eq!(trunc(10, "abc"), "abc");
        assert_eq!(trunc(-10, "abc"), "abc");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
    }

    #[test]
    fn unknown_functions_fail_when_rendered() {
        // gotmpl resolves functions when it executes (Go does when it parses); `run` renders
        // the message before it writes any file, so the failure still comes first.
        let data = crate::TemplateData::new("ns", "a", &[], Default::default());
        let t = crate::MessageTemplate::parse("{{ now | date \"2006\" }}").expect("parses");
        let err = t.render(&data).unwrap_err();
        assert!(err.to_string().contains("undefined function: now"), "{err}");
        let t = crate::MessageTemplate::parse("{{ \"X\" | lower }}").expect("parses");
        assert_eq!(t.render(&data).expect("renders"), "x");
    }
}
