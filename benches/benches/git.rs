//! Placeholder: the git bench lands with its issue.
fn main() {}
