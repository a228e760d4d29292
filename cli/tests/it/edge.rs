//! The API's edge, before it knows who calls: slow clients, connection and
//! request limits, and callers without a valid key (issue #26).

use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, base_settings, db};

async fn app_with(edit: impl FnOnce(&mut pipeline::Settings)) -> (TestApp, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    edit(&mut settings);
    (TestApp::spawn(&settings).await, dir)
}

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; returns what it sent and
/// how long that took.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), started.elapsed()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    let (app, _dir) = app_with(|s| s.edge.header_read_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(host_port(&app)).await.expect("connect");
    // Half a request head, then a byte now and then, never the blank line.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(10), slow.read(&mut probe)).await {
            assert!(n == 0 || String::from_utf8_lossy(&probe[..n]).starts_with("HTTP/1.1 408"), "answered a head");
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled head held the connection for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3), "cut off after {:?}", started.elapsed());
    // Honest clients are served meanwhile.
    let answer = reqwest::get(format!("{}/healthz", app.address)).await.expect("healthz");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (app, _dir) = app_with(|s| s.edge.header_read_timeout_secs = 1).await;
    let mut idle = TcpStream::connect(host_port(&app)).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let (seen, after) = read_to_close(&mut idle, Duration::from_secs(5)).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(after >= Duration::from_millis(900), "closed after {after:?}, before the client was idle");
}

#[tokio::test]
async fn a_connection_closes_after_its_request_allowance() {
    let (app, _dir) = app_with(|s| s.edge.max_requests_per_connection = 3).await;
    let mut conn = TcpStream::connect(host_port(&app)).await.expect("connect");
    for _ in 0..3 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    }
    let (seen, _) = read_to_close(&mut conn, Duration::from_secs(5)).await;
    let answers: Vec<&str> = seen.split("HTTP/1.1 ").filter(|a| !a.is_empty()).collect();
    assert_eq!(answers.len(), 3, "{seen}");
    assert!(answers[..2].iter().all(|a| !a.to_ascii_lowercase().contains("connection: close")), "{seen}");
    assert!(answers[2].to_ascii_lowercase().contains("connection: close"), "{seen}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let (app, _dir) = app_with(|s| s.edge.max_connections = 2).await;
    let first = TcpStream::connect(host_port(&app)).await.expect("connect");
    let _second = TcpStream::connect(host_port(&app)).await.expect("connect");
    let address = app.address.clone();
    let third = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let answer = client.get(format!("{address}/healthz")).send().await.expect("healthz");
        (answer.status(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served beside two open ones");
    drop(first);
    let (status, waited) = tokio::time::timeout(Duration::from_secs(5), third).await.expect("served").expect("task");
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
}

/// `image_api_key_lookups_total`, both results together.
async fn key_lookups(app: &TestApp) -> u64 {
    let text = reqwest::get(format!("{}/metrics", app.address)).await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|l| l.starts_with("image_api_key_lookups_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_flood_of_made_up_keys_is_limited_per_address_and_spares_honest_keys() {
    let (app, _dir) = app_with(|s| {
        s.edge.anonymous_rate_limit_per_second = 1;
        s.edge.anonymous_rate_limit_burst = 5;
    })
    .await;
    let honest = app.http.get(format!("{}/v1/jobs", app.address)).send().await.expect("jobs");
    assert_eq!(honest.status(), 200);
    let before = key_lookups(&app).await;
    let anonymous = reqwest::Client::new();
    let (mut refused, mut limited) = (0, 0);
    let started = Instant::now();
    for n in 0..200 {
        let answer = anonymous
            .get(format!("{}/v1/jobs", app.address))
            .bearer_auth(format!("made-up-key-{n}"))
            .send()
            .await
            .expect("request");
        match answer.status().as_u16() {
            401 => refused += 1,
            429 => {
                assert!(answer.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("a made-up key got {other}"),
        }
        // The honest key keeps working throughout, from the same address.
        if n % 50 == 0 {
            let answer = app.http.get(format!("{}/v1/jobs", app.address)).send().await.expect("jobs");
            assert_eq!(answer.status(), 200, "an honest key was refused during the flood");
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    // The bucket's burst of 5, less the honest key's own first lookup (any
    // key this process does not remember is paid for), plus its refill.
    assert!(refused >= 4 && refused <= 4 + seconds, "{refused} made-up keys were looked at");
    assert_eq!(refused + limited, 200);
    // Every lookup the flood caused was paid for from the address's bucket.
    let lookups = key_lookups(&app).await - before;
    assert!(lookups <= 4 + seconds, "{lookups} database lookups for 200 made-up keys");
    // Requests without any key are charged to the same bucket.
    let bare = anonymous.get(format!("{}/v1/jobs", app.address)).send().await.expect("request");
    assert_eq!(bare.status(), 429);
}

#[tokio::test]
async fn a_form_is_limited_as_a_whole_not_only_its_file() {
    let (app, _dir) = app_with(|s| s.max_upload_bytes = 1024 * 1024).await;
    // A preamble before the first boundary is no field at all, so nothing
    // else would count it: 3 MiB of it, then a tiny file.
    let mut body = vec![b'x'; 3 * 1024 * 1024];
    body.extend_from_slice(b"\r\n--edge\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n");
    body.extend_from_slice(b"Content-Type: image/png\r\n\r\n");
    body.extend_from_slice(&std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata"));
    body.extend_from_slice(b"\r\n--edge--\r\n");
    let answer = app
        .http
        .post(format!("{}/v1/images", app.address))
        .header("content-type", "multipart/form-data; boundary=edge")
        .body(body)
        .send()
        .await
        .expect("upload");
    crate::support::assert_problem(answer, 413, "payload-too-large").await;
}

/// Sends a PUT's head and the first `sent` bytes of its body on a raw
/// connection; the caller sends the rest.
async fn start_put(url: &str, content_type: &str, body: &[u8], sent: usize) -> TcpStream {
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..sent]).await.expect("body");
    stream
}

async fn finish_put(mut stream: TcpStream, body: &[u8], sent: usize) -> u16 {
    stream.write_all(&body[sent..]).await.expect("body");
    let mut answer = vec![0u8; 1024];
    let n = stream.read(&mut answer).await.expect("answer");
    let status = String::from_utf8_lossy(&answer[..n]).split(' ').nth(1).unwrap_or_default().to_owned();
    status.parse().expect("a status code")
}

#[tokio::test]
async fn two_puts_on_one_upload_url_keep_exactly_the_accepted_ones_bytes() {
    let (app, dir) = app_with(|s| s.max_upload_bytes = 1024 * 1024).await;
    let first = std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata");
    // The same length (the URL's signature covers it), other bytes.
    let mut second = first.clone();
    let last = second.len() - 1;
    second[last] ^= 0xff;
    let (url, job_id) = app.upload_ticket(&app.address, first.len()).await;
    // Both are past the API's checks and streaming before either finishes;
    // the one that started last finishes first.
    let half = first.len() / 2;
    let slow = start_put(&url, "image/png", &first, half).await;
    let fast = start_put(&url, "image/png", &second, half).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fast_status = finish_put(fast, &second, half).await;
    let slow_status = finish_put(slow, &first, half).await;
    assert_eq!((fast_status, slow_status), (200, 409));
    let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    let image_id: uuid::Uuid = job["image_id"].as_str().expect("image id").parse().expect("uuid");
    let stored = app.backends.store.get(&pipeline::keys::original(image_id)).await.expect("the original");
    assert!(stored[..] == second[..], "the original is not the accepted upload's bytes");
    let leftovers = std::fs::read_dir(dir.path().join("objects/uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "staged uploads were left behind");
}

#[tokio::test]
async fn an_upload_whose_bytes_cannot_be_placed_is_a_503_its_retry_can_finish() {
    use std::sync::Arc;
    // Arrange: an API whose store fails the first copy of a staged upload.
    let (app, dir) = app_with(|s| s.max_upload_bytes = 1024 * 1024).await;
    let mut backends = app.backends.clone();
    let store = crate::support::faults::FlakyStore::new(backends.store.clone(), 0, false);
    store.failing_copies.store(1, std::sync::atomic::Ordering::SeqCst);
    backends.store = Arc::new(store);
    let address = TestApp::serve_api(&base_settings(dir.path(), db::sqlite(&dir)), backends).await;
    let body = std::fs::read(crate::support::testdata("dice_rgba.png")).expect("testdata");
    let (url, job_id) = app.upload_ticket(&address, body.len()).await;
    let put = || reqwest::Client::new().put(&url).header("content-type", "image/png").body(body.clone()).send();

    // Act: the first PUT is claimed but not placed; the client retries the same URL.
    let failed = put().await.expect("put");
    let waiting = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    let retried = put().await.expect("put");
    app.worker.drain().await.expect("drain");

    // Assert
    assert_eq!(failed.status(), 503);
    assert_eq!(waiting["status"], "awaiting_upload", "the claim was given back: {waiting}");
    assert_eq!(retried.status(), 200);
    let done = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let image_id: uuid::Uuid = done["image_id"].as_str().expect("image id").parse().expect("uuid");
    let stored = app.backends.store.get(&pipeline::keys::original(image_id)).await.expect("the original");
    assert!(stored[..] == body[..], "the original is the retried upload's bytes");
}
