//! Local OCI registry harness (issue 4 fills this in).
