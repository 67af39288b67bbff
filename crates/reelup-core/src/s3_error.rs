/// The `<Code>` and `<Message>` of an S3 XML error body, where there is one.
///
/// S3 error documents are flat and these two elements never nest or carry attributes, so
/// a tag search is enough; anything else yields `None` and the caller reports the status.
pub(crate) fn parse(body: &str) -> Option<(String, String)> {
    let code = between(body, "<Code>", "</Code>")?;
    let message = between(body, "<Message>", "</Message>").unwrap_or_default();
    Some((code.to_owned(), message.to_owned()))
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_code_and_message() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><RequestId>1</RequestId></Error>"#;
        let (code, msg) = super::parse(xml).expect("parsed");
        assert_eq!(code, "SignatureDoesNotMatch");
        assert!(msg.starts_with("The request signature"));
        assert!(super::parse("<html>bad gateway</html>").is_none());
    }
}
