//! Reading the few flat S3 XML documents Reelup needs (errors, ListParts). They never nest an
//! element inside one of the same name and carry no attributes on these elements, so
//! finding tags is enough; a strict parser rejects stores that omit optional elements.

/// The `<Code>` and `<Message>` of an S3 error body, if it is one.
pub fn error(body: &str) -> Option<(String, String)> {
    let code = text_of(body, "Code")?;
    let message = text_of(body, "Message").unwrap_or_default();
    Some((code.to_owned(), message.to_owned()))
}

/// The text of the first `<tag>` in `xml`.
pub fn text_of<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

/// The contents of every `<tag>...</tag>` in `xml`, in order.
pub fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ListParts response from AWS's API reference.
    const AWS_LIST_PARTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>example-bucket</Bucket>
  <Key>example-object</Key>
  <UploadId>XXBsb2FkIElEIGZvciBlbHZpbmcncyVcdS1tb3ZpZS5tMnRzEEEwbG9hZA</UploadId>
  <PartNumberMarker>1</PartNumberMarker>
  <NextPartNumberMarker>3</NextPartNumberMarker>
  <MaxParts>2</MaxParts>
  <IsTruncated>true</IsTruncated>
  <Part>
    <PartNumber>2</PartNumber>
    <LastModified>2010-11-10T20:48:34.000Z</LastModified>
    <ETag>"7778aef83f66abc1fa1e8477f296d394"</ETag>
    <Size>10485760</Size>
  </Part>
  <Part>
    <PartNumber>3</PartNumber>
    <LastModified>2010-11-10T20:48:33.000Z</LastModified>
    <ETag>"aaaa18db4cc2f85cedef654fccc4a4x8"</ETag>
    <Size>10485760</Size>
  </Part>
</ListPartsResult>"#;

    #[test]
    fn reads_code_and_message() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><RequestId>1</RequestId></Error>"#;
        let (code, msg) = error(xml).expect("parsed");
        assert_eq!(code, "SignatureDoesNotMatch");
        assert!(msg.starts_with("The request signature"));
        assert!(error("<html>bad gateway</html>").is_none());
    }

    #[test]
    fn reads_aws_list_parts() {
        let parts = elements(AWS_LIST_PARTS, "Part");
        assert_eq!(parts.len(), 2);
        assert_eq!(text_of(parts[1], "PartNumber"), Some("3"));
        assert_eq!(
            text_of(parts[0], "ETag"),
            Some("\"7778aef83f66abc1fa1e8477f296d394\"")
        );
        assert_eq!(text_of(AWS_LIST_PARTS, "IsTruncated"), Some("true"));
        assert_eq!(text_of(AWS_LIST_PARTS, "NextPartNumberMarker"), Some("3"));
        assert_eq!(text_of(parts[0], "Missing"), None);
    }
}
