//! A tiny HTTP client for tests ([`get`], [`post`]: the body read whole into a [`Resp`];
//! [`get_counted`]: only counted) and helpers to read exposition text.

use axum::http::HeaderMap;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A response, body read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, gunzipped if it says it is gzip.
    pub fn decoded(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut d = flate2::read::GzDecoder::new(&self.body[..]);
            let mut s = String::new();
            std::io::Read::read_to_string(&mut d, &mut s).unwrap();
            s
        } else {
            self.text()
        }
    }
}

/// GET with extra headers; the body is read whole.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    let resp = send_get(url, headers).await;
    let (parts, body) = resp
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// GET with extra headers; the body's bytes are counted as they arrive and not kept (a client
/// that collects a large body into one buffer spends longer copying it than the server takes
/// to send it). Returns the status and the body's length (as sent: gzip is not decoded).
pub async fn get_counted(url: &str, headers: &[(&str, &str)]) -> (u16, usize) {
    let resp = send_get(url, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("body").into_data() {
            len += data.len();
        }
    }
    (status, len)
}

/// Sends a GET with extra headers; the response comes with its body unread.
fn send_get(url: &str, headers: &[(&str, &str)]) -> hyper_util::client::legacy::ResponseFuture {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    client.request(req.body(Empty::new()).unwrap())
}

/// POST with an empty body; the response body is read whole.
pub async fn post(url: &str) -> Resp {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::post(url).body(Empty::new()).unwrap();
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// Sample lines (not comments) of a text body, sorted.
pub fn samples(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// The value of the first sample of `name` (with its labels, e.g. `x_total{a="b"}`) in a text
/// body.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
