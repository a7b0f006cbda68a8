//! Placeholder: the setter bench lands with its issue.
fn main() {}
