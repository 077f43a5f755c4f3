//! The remote-name rules fed arbitrary strings: a name that passes never
//! holds anything that could leave the root or confuse a terminal, and its
//! parts put back together give the same name.
#![no_main]

use ftx::proto::limits::{MAX_COMPONENT_LEN, MAX_PATH_LEN, RESERVED_PREFIX};
use ftx::proto::path::RemotePath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = RemotePath::parse(name) else {
        return;
    };
    let s = p.as_str();
    assert_eq!(s, name);
    assert!(s.len() <= MAX_PATH_LEN);
    assert!(!s.starts_with('/') && !s.ends_with('/'));
    assert!(!s.contains('\\') && !s.chars().any(char::is_control));
    for c in p.components() {
        assert!(!c.is_empty() && c != "." && c != "..", "{s:?}");
        assert!(c.len() <= MAX_COMPONENT_LEN);
        assert!(!c.starts_with(RESERVED_PREFIX));
    }
    let joined: Vec<&str> = p.components().collect();
    assert_eq!(joined.join("/"), s);
    if let Some(last) = p.file_name() {
        let parent = p.parent();
        let rebuilt = parent.join(last).expect("a name and its parent rejoin");
        assert_eq!(rebuilt, p);
    }
});
