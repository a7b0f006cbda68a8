//! Listing the tags of container images (`ImageRepository`).
//!
//! This crate will hold the `TagSource` trait, its OCI implementation on `oci-client`
//! (auth, paging, 429 backoff, digests) and an offline snapshot source.
