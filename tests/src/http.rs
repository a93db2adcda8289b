//! HTTP/1.1 as a browser or a hostile script speaks it to the leaderboard's public port, over
//! plain sockets: a GET, a response head, chunked bodies, and Server-Sent Events, from any local
//! address (127.0.0.2 plays the attacker while 127.0.0.1 acts).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `addr` from the local address `from` (any port).
///
/// # Errors
/// When the connection cannot be made.
pub async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// A GET over a fresh HTTP/1.1 connection: (status, content type, body).
///
/// # Panics
/// When the server does not answer with HTTP.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: screen\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send");
    let (status, headers) = head(&mut reader).await;
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        while let Some(chunk) = chunk(&mut reader).await {
            body.extend(chunk);
        }
    } else {
        reader.read_to_end(&mut body).await.expect("body");
    }
    (
        status,
        headers.get("content-type").cloned().unwrap_or_default(),
        String::from_utf8(body).expect("utf-8"),
    )
}

/// Reads a response head: (status, lower-cased headers).
///
/// # Panics
/// When what arrives is not an HTTP response head.
pub async fn head(reader: &mut BufReader<TcpStream>) -> (u16, HashMap<String, String>) {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {line:?}"));
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    (status, headers)
}

/// One chunk of a chunked body; `None` at its end (or when the connection closes).
pub async fn chunk(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim(), 16).ok()?;
    if size == 0 {
        return None;
    }
    let mut data = vec![0; size + 2];
    reader.read_exact(&mut data).await.ok()?;
    data.truncate(size);
    Some(data)
}

/// Asks for an SSE stream on `stream`: the response head, and the reader to go on with.
///
/// # Panics
/// When the request cannot be sent or no HTTP answer comes.
pub async fn ask_stream(
    stream: TcpStream,
    path: &str,
    headers: &str,
) -> (u16, HashMap<String, String>, BufReader<TcpStream>) {
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(
            format!(
                "GET {path} HTTP/1.1\r\nHost: screen\r\nAccept: text/event-stream\r\n{headers}\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("send");
    let (status, headers) = head(&mut reader).await;
    (status, headers, reader)
}

/// An open SSE stream: reads `data:` messages.
#[derive(Debug)]
pub struct Sse {
    reader: BufReader<TcpStream>,
    pending: String,
}

impl Sse {
    /// Opens a stream from 127.0.0.1.
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        Self::open_with(addr, path, "").await
    }

    /// Opens a stream sending `headers` (each line ending in CRLF) too.
    pub async fn open_with(addr: SocketAddr, path: &str, headers: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self::on(stream, path, headers).await
    }

    /// Opens a stream on `stream`; the answer must be 200 with `text/event-stream`.
    ///
    /// # Panics
    /// When the server answers otherwise.
    pub async fn on(stream: TcpStream, path: &str, headers: &str) -> Self {
        let (status, headers, reader) = ask_stream(stream, path, headers).await;
        assert_eq!(status, 200, "{headers:?}");
        assert!(
            headers
                .get("content-type")
                .is_some_and(|t| t.starts_with("text/event-stream")),
            "{headers:?}"
        );
        Self {
            reader,
            pending: String::new(),
        }
    }

    /// The next message's data as JSON; `None` when the stream ends.
    ///
    /// # Panics
    /// When a message is not JSON.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let event: String = self.pending.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect::<Vec<_>>()
                    .join("\n");
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(serde_json::from_str(&data).expect("JSON data"));
            }
            let bytes = chunk(&mut self.reader).await?;
            self.pending
                .push_str(&String::from_utf8(bytes).expect("utf-8"));
        }
    }

    /// The next message within `wait`, or `None`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }
}

/// One request over a fresh HTTP/1.1 connection (`Connection: close`): `headers` are extra
/// header lines, each ending in CRLF; a `Content-Length` is added for `body` unless `headers`
/// give one. Answers (status, lower-cased headers, body).
///
/// # Panics
/// When the server does not answer with HTTP.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, HashMap<String, String>, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut reader = BufReader::new(stream);
    let length = if headers.to_ascii_lowercase().contains("content-length:") {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let mut sent = format!(
        "{method} {path} HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n{length}{headers}\r\n"
    )
    .into_bytes();
    sent.extend_from_slice(body);
    // The server may answer (413) and close before it reads the whole body.
    drop(reader.get_mut().write_all(&sent).await);
    let (status, headers) = head(&mut reader).await;
    let mut text = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        while let Some(chunk) = chunk(&mut reader).await {
            text.extend(chunk);
        }
    } else {
        drop(reader.read_to_end(&mut text).await);
    }
    (status, headers, String::from_utf8_lossy(&text).into_owned())
}
