//! Placeholder: the policy bench lands with its issue.
fn main() {}
