//! HTTP/1 request heads and bodies as the connection layer sees them: where a head ends, whether
//! hyper would accept it (checked with the same parser, httparse, and the same rules hyper 1.x
//! applies, so that every refusal can be answered in the ACS shape instead of hyper's empty
//! one), and where the body ends, so that the next request's head is checked too.

use crate::http::error::ApiError;

/// Most header fields in a head (hyper's default, which it is also given).
pub(crate) const MAX_HEADERS: usize = 100;

/// hyper refuses longer request targets (414).
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;

/// hyper refuses bodies declared longer (`u64::MAX - 2`).
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// hyper refuses chunk extensions longer than this, over a whole body.
const MAX_CHUNK_EXTENSIONS: u64 = 16 * 1024;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A complete, acceptable request head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Its length in bytes, the blank line included.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
}

/// A head that is refused, with the client request id to echo when it could be read.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) error: ApiError,
    pub(crate) request_id: Option<Vec<u8>>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            request_id: None,
        }
    }
}

/// Reads a head from the start of `bytes`: `Ok(None)` while it is incomplete and within
/// `max_bytes`.
pub(crate) fn parse(bytes: &[u8], max_bytes: usize) -> Result<Option<Head>, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Partial) if bytes.len() > max_bytes => {
            return Err(ApiError::header_too_large().into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) if len > max_bytes => {
            return Err(ApiError::header_too_large().into())
        }
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return Err(ApiError::header_too_large().into()),
        Err(_) if request_line_is_valid(bytes) => {
            return Err(ApiError::bad_request("A request header is not valid.").into())
        }
        Err(_) => return Err(ApiError::bad_request("The request line is not valid.").into()),
    };
    let request_id = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-ms-client-request-id"))
        .filter(|h| h.value.len() <= 256 && h.value.iter().all(|b| (0x20..0x7f).contains(b)))
        .map(|h| h.value.to_vec());
    let refuse = |message| Refused {
        error: ApiError::bad_request(message),
        request_id: request_id.clone(),
    };
    let path = request.path.expect("a complete head has a target");
    if path.len() > MAX_URI_LEN {
        return Err(Refused {
            error: ApiError::uri_too_long(),
            request_id,
        });
    }
    let method = request.method.expect("a complete head has a method");
    if http::Method::from_bytes(method.as_bytes()).is_err()
        || http::Uri::try_from(path.as_bytes()).is_err()
    {
        return Err(refuse("The request line is not valid."));
    }
    let http11 = request.version == Some(1);

    // As hyper reads them (RFC 9112 §6.3): the last Transfer-Encoding line decides whether the
    // body is chunked, and Content-Length lines must all agree.
    let mut chunked = None;
    let mut length = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(refuse("Transfer-Encoding is not allowed in HTTP/1.0."));
            }
            chunked = Some(ends_with_chunked(header.value));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let n = digits(header.value)
                .filter(|n| *n <= MAX_CONTENT_LENGTH)
                .ok_or_else(|| refuse("The Content-Length header is not valid."))?;
            if length.is_some_and(|m| m != n) {
                return Err(refuse("The Content-Length header is not valid."));
            }
            length = Some(n);
        }
    }
    let framing = match (chunked, length) {
        (Some(false), _) => return Err(refuse("The Transfer-Encoding header is not valid.")),
        // hyper would let Transfer-Encoding win; callsign refuses the ambiguity (RFC 9112
        // §6.1 allows either), the classic way to smuggle one request inside another.
        (Some(true), Some(_)) => {
            return Err(refuse(
                "A request must not have both Content-Length and Transfer-Encoding.",
            ))
        }
        (Some(true), None) => Framing::Chunked,
        (None, Some(0) | None) => Framing::Empty,
        (None, Some(n)) => Framing::Length(n),
    };
    Ok(Some(Head { len, framing }))
}

/// Whether the head's first line parses on its own (which part of a refused head to blame).
fn request_line_is_valid(bytes: &[u8]) -> bool {
    let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
        return false;
    };
    let mut line = bytes[..=end].to_vec();
    line.extend_from_slice(b"\r\n");
    httparse::Request::new(&mut []).parse(&line).is_ok()
}

/// Whether the last coding listed is `chunked` (hyper's `is_chunked_`).
fn ends_with_chunked(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|s| {
        s.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// A Content-Length value: digits only, no sign, no overflow (hyper's `from_digits`).
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

/// Follows a chunked body to its end, byte for byte as hyper's decoder does.
#[derive(Debug, Clone)]
pub(crate) struct Chunks {
    state: ChunkState,
    size: u64,
    extensions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
    End,
}

/// The body is not valid chunked encoding (hyper will refuse it too).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadChunk;

impl Chunks {
    pub(crate) fn new() -> Self {
        Self {
            state: ChunkState::Start,
            size: 0,
            extensions: 0,
        }
    }

    /// Consumes the start of `bytes`: how many bytes belong to the body, and whether it ended.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Result<(usize, bool), BadChunk> {
        use ChunkState::*;
        let mut i = 0;
        while i < bytes.len() && self.state != End {
            if self.state == Data {
                let take = usize::try_from(self.size)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                i += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match (self.state, b) {
                (Start | Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    let digit = (b as char).to_digit(16).expect("a hex digit") as u64;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or(BadChunk)?;
                    Size
                }
                (Size | SizeLws, b'\t' | b' ') => SizeLws,
                (Size | SizeLws, b';') => Extension,
                (Size | SizeLws, b'\r') => SizeLf,
                (Extension, b'\r') => SizeLf,
                (Extension, b'\n') => return Err(BadChunk),
                (Extension, _) => {
                    self.extensions += 1;
                    if self.extensions >= MAX_CHUNK_EXTENSIONS {
                        return Err(BadChunk);
                    }
                    Extension
                }
                (SizeLf, b'\n') if self.size == 0 => EndCr,
                (SizeLf, b'\n') => Data,
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => {
                    self.size = 0;
                    Start
                }
                (Trailer, b'\r') => TrailerLf,
                (Trailer, _) => Trailer,
                (TrailerLf, b'\n') => EndCr,
                (EndCr, b'\r') => EndLf,
                (EndCr, _) => Trailer,
                (EndLf, b'\n') => End,
                _ => return Err(BadChunk),
            };
        }
        Ok((i, self.state == End))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, Refused> {
        parse(text.as_bytes(), 1024)
    }

    fn refused(text: &str) -> (u16, String) {
        let e = head(text).unwrap_err().error;
        (e.status.as_u16(), e.message)
    }

    #[test]
    fn complete_heads_and_their_bodies() {
        let get = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(
            head(get).unwrap(),
            Some(Head {
                len: get.len(),
                framing: Framing::Empty
            })
        );
        assert_eq!(head(&get[..get.len() - 1]).unwrap(), None);
        // Empty lines before the request line are skipped, as hyper does.
        assert!(head(&format!("\r\n{get}")).unwrap().is_some());
        let post =
            "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(head(post).unwrap().unwrap().framing, Framing::Length(12));
        let chunked = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n";
        assert_eq!(head(chunked).unwrap().unwrap().framing, Framing::Chunked);
    }

    #[test]
    fn refusals() {
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(1100));
        assert_eq!(refused(&big).0, 431);
        assert_eq!(
            refused(&big[..1050]).0,
            431,
            "incomplete but already too big"
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            parse(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 1 << 20)
                .unwrap_err()
                .error
                .status,
            431
        );
        for (text, message) in [
            (
                "GET / HTTP/1.1 extra\r\n\r\n",
                "The request line is not valid.",
            ),
            ("GET / HTTP/3.0\r\n\r\n", "The request line is not valid."),
            ("G(T / HTTP/1.1\r\n\r\n", "The request line is not valid."),
            (
                "GET / HTTP/1.1\r\nbad header\r\n\r\n",
                "A request header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                "The Content-Length header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
                "The Content-Length header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n",
                "The Content-Length header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "The Content-Length header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                "The Content-Length header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                "The Transfer-Encoding header is not valid.",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                "The Transfer-Encoding header is not valid.",
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding is not allowed in HTTP/1.0.",
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                "A request must not have both Content-Length and Transfer-Encoding.",
            ),
        ] {
            assert_eq!(refused(text), (400, message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn the_request_id_is_echoed_when_the_head_could_be_read() {
        let e =
            head("POST / HTTP/1.1\r\nX-Ms-Client-Request-Id: abc-1\r\nContent-Length: x\r\n\r\n")
                .unwrap_err();
        assert_eq!(e.request_id.as_deref(), Some(&b"abc-1"[..]));
    }

    #[test]
    fn chunked_bodies_end_where_hyper_ends_them() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\n";
        let end = body.len() - "GET / HTTP/1.1\r\n".len();
        // Whole, and one byte at a time.
        assert_eq!(Chunks::new().scan(body), Ok((end, true)));
        let mut chunks = Chunks::new();
        let mut seen = 0;
        for (i, b) in body.iter().enumerate() {
            let (n, done) = chunks.scan(std::slice::from_ref(b)).unwrap();
            seen += n;
            if done {
                assert_eq!(i + 1, end);
                break;
            }
        }
        assert_eq!(seen, end);
        assert_eq!(Chunks::new().scan(b"0\r\n\r\n"), Ok((5, true)));
        assert_eq!(Chunks::new().scan(b"A \t\r\n"), Ok((5, false)));
        for bad in [
            &b"x\r\n"[..],
            b"5\n",
            b"1\r\nab",
            b"1;a\nb",
            b"fffffffffffffffff\r\n",
        ] {
            assert_eq!(Chunks::new().scan(bad), Err(BadChunk), "{bad:?}");
        }
    }
}
