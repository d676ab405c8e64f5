//! A refusal written by the connection layer itself, in the shape of every other error: the ACS
//! JSON body, `Content-Type: application/json`, the service headers (docs/protocol.md §2.4), and
//! `Connection: close`.

use crate::http::error::ApiError;
use crate::http::headers::correlation_vector;

/// The whole HTTP/1.1 response for `error`, echoing the client request id when there is one.
pub(crate) fn http1_response(error: &ApiError, request_id: Option<&[u8]>) -> Vec<u8> {
    let body = error.body();
    let status = error.status;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nms-cv: {}\r\nx-processing-time: 0ms\r\ndate: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        correlation_vector()
            .to_str()
            .expect("a correlation vector is ASCII"),
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
    )
    .into_bytes();
    if let Some(id) = request_id {
        head.extend_from_slice(b"x-ms-client-request-id: ");
        head.extend_from_slice(id);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(&body);
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_whole_acs_error_response() {
        let bytes = http1_response(&ApiError::header_too_large(), Some(b"id-1"));
        let text = String::from_utf8(bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains("\r\nx-ms-client-request-id: id-1"));
        assert!(head.contains("\r\nms-cv: "));
        assert_eq!(
            body,
            r#"{"error":{"code":"RequestHeaderFieldsTooLarge","message":"The request headers are too large."}}"#
        );
    }
}
