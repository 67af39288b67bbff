//! `reelup_core::s3_xml` reads error and ListParts bodies from whatever answers as the store.
//! Input: the tag on the first line, the document after it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reelup_core::s3_xml::{elements, error, text_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (tag, xml) = text.split_once('\n').unwrap_or(("Part", text));
    let close = format!("</{tag}>");
    let first = text_of(xml, tag);
    if let Some(t) = first {
        // What is returned is exactly what sits between the first open tag and its close.
        assert!(!t.contains(&close), "{t:?} runs past {close}");
        assert!(xml.contains(&format!("<{tag}>{t}{close}")));
    }
    let all = elements(xml, tag);
    assert_eq!(all.first().copied(), first, "elements and text_of disagree");
    for e in &all {
        assert!(!e.contains(&close));
    }
    if let Some((code, message)) = error(xml) {
        assert_eq!(Some(code.as_str()), text_of(xml, "Code"));
        assert!(message.is_empty() || xml.contains(&message));
    }
});
