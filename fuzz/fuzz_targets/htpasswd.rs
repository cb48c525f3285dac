#![no_main]
//! The htpasswd parser never panics, and what it renders parses back to the same accounts.

use libfuzzer_sys::fuzz_target;
use registry_admin::users::htpasswd::Htpasswd;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = Htpasswd::parse(text) {
        let rendered = parsed.render();
        let again = Htpasswd::parse(&rendered).expect("a rendered file must parse");
        assert_eq!(again.entries(), parsed.entries());
        assert!(rendered.is_empty() || rendered.ends_with('\n'));
    }
});
