//! Fuzzes the attachment description decoder (the body of an attachment message): a
//! description that decodes must encode back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(attachment) = common::attachment::AttachmentRef::from_bytes(data) {
        assert_eq!(attachment.to_bytes(), data);
    }
});
