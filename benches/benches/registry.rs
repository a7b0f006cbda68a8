//! Placeholder: the registry bench lands with its issue.
fn main() {}
