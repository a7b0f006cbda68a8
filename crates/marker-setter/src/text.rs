//! Bounds on the text that messages quote: a value taken from a stranger's file (a 1 MB
//! tag, a huge scalar, a long link target) must not become a 1 MB error line.

use std::borrow::Cow;

/// The most bytes of one quoted value a message carries.
pub(crate) const MAX_QUOTED: usize = 200;

/// The most bytes of a whole warning message.
pub(crate) const MAX_MESSAGE: usize = 500;

/// `s` cut to at most `max` bytes on a char boundary, with how much was left out.
pub(crate) fn clip_to(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}... ({} bytes)", &s[..end], s.len()))
}

/// A value quoted in a message, cut to [`MAX_QUOTED`] bytes.
pub(crate) fn clip(s: &str) -> Cow<'_, str> {
    clip_to(s, MAX_QUOTED)
}

/// A path quoted in a message (a symlink target, a path given by a caller), clipped.
pub(crate) fn clip_path(p: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(clip(&p.to_string_lossy()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_char_boundaries_and_says_how_long() {
        let s = "é".repeat(300);
        let c = clip(&s);
        assert!(c.len() < MAX_QUOTED + 20, "{}", c.len());
        assert!(c.ends_with("... (600 bytes)"));
        assert_eq!(clip("short"), "short");
    }
}
