//! Git remote harnesses (issue 5 fills this in).
