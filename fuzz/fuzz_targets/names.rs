#![no_main]
//! The name grammar never panics, and nothing it accepts could step outside a registry URL path.

use libfuzzer_sys::fuzz_target;
use registry_admin::registry::names;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if names::repository(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= names::MAX_NAME_LEN);
        assert!(!s.contains("..") && !s.contains("//") && !s.starts_with('/') && !s.ends_with('/'));
        assert!(s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/".contains(&c)));
    }
    if names::tag(s).is_ok() {
        assert!(!s.contains('/') && !s.starts_with('.') && !s.starts_with('-'));
        assert!(s.len() <= names::MAX_TAG_LEN);
    }
    if names::digest(s).is_ok() {
        assert!(s.starts_with("sha256:") || s.starts_with("sha512:"));
        assert!(!s.contains('/'));
    }
});
