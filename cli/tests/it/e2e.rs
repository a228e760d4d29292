//! The whole pipeline, end to end: upload through the API, drain the queue
//! with the worker, then look at what a user would see: objects, rows,
//! events, and an empty queue. The same scenarios run on the AWS adapters
//! (emulator + Postgres) and on the embedded defaults (SQLite, disk, table
//! queue, webhook).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aws_sdk_s3::types::ServerSideEncryption;
use entities::prelude::QueueMessages;
use pipeline::Settings;
use pipeline::event::{Event, EventKind};
use pipeline::keys;
use sea_orm::{EntityTrait, PaginatorTrait};
use tempfile::TempDir;
use uuid::Uuid;

use crate::support::aws::AwsFixture;
use crate::support::{TestApp, WebhookSink, base_settings, db};

/// Where the scenario's outputs can be inspected, per backend set.
enum Backend {
    Aws(AwsFixture),
    Embedded { sink: WebhookSink, objects: PathBuf },
}

impl Backend {
    /// Reads a stored object, checking the headers S3 keeps with it.
    async fn read_object(&self, key: &str, content_type: &str) -> Vec<u8> {
        match self {
            Self::Aws(aws) => {
                let head = aws.s3.head_object().bucket(&aws.bucket).key(key).send().await.expect("variant exists");
                assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms), "{key} SSE");
                assert_eq!(head.ssekms_key_id(), Some(aws.kms_key_arn.as_str()), "{key} KMS key");
                assert_eq!(head.content_type(), Some(content_type), "{key} content type");
                assert_eq!(head.cache_control(), Some(keys::VARIANT_CACHE_CONTROL), "{key} cache control");
                let object = aws.s3.get_object().bucket(&aws.bucket).key(key).send().await.expect("variant readable");
                object.body.collect().await.expect("variant body").to_vec()
            }
            Self::Embedded { objects, .. } => std::fs::read(objects.join(key)).expect("variant file exists"),
        }
    }

    async fn take_events(&mut self, n: usize) -> Vec<Event> {
        match self {
            Self::Aws(aws) => aws
                .take_events(n)
                .await
                .into_iter()
                .map(|(event, attribute)| {
                    assert_eq!(attribute, event.event.as_str(), "the `event` message attribute matches the body");
                    event
                })
                .collect(),
            Self::Embedded { sink, .. } => sink.take_exactly(n).await,
        }
    }

    /// Keys of the objects stored under `prefix`.
    async fn keys_under(&self, prefix: &str) -> BTreeSet<String> {
        match self {
            Self::Aws(aws) => {
                let listed = aws.s3.list_objects_v2().bucket(&aws.bucket).prefix(prefix).send().await.expect("list");
                listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
            }
            Self::Embedded { objects, .. } => {
                // Every file below the prefix, as its key, like a listing of S3.
                let mut keys = BTreeSet::new();
                let mut dirs = vec![prefix.to_owned()];
                while let Some(dir) = dirs.pop() {
                    let Ok(entries) = std::fs::read_dir(objects.join(&dir)) else { continue };
                    for entry in entries {
                        let entry = entry.expect("dir entry");
                        let key = format!("{dir}{}", entry.file_name().to_string_lossy());
                        if entry.file_type().expect("file type").is_dir() {
                            dirs.push(format!("{key}/"));
                        } else {
                            keys.insert(key);
                        }
                    }
                }
                keys
            }
        }
    }

    /// Messages left anywhere in the job queue or its dead-letter queue.
    async fn messages_left(&self, app: &TestApp) -> u64 {
        match self {
            Self::Aws(aws) => aws.depth(&aws.queue_url).await + aws.depth(&aws.dlq_url).await,
            Self::Embedded { .. } => QueueMessages::find().count(&app.backends.db).await.expect("count queue rows"),
        }
    }
}

async fn aws_app() -> (TestApp, Backend, TempDir) {
    aws_app_with(|_| {}).await
}

async fn aws_app_with(configure: impl FnOnce(&mut Settings)) -> (TestApp, Backend, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let aws = AwsFixture::create().await;
    let mut settings = base_settings(dir.path(), db::postgres().await);
    aws.configure(&mut settings);
    configure(&mut settings);
    let app = TestApp::spawn(&settings).await;
    (app, Backend::Aws(aws), dir)
}

async fn embedded_app() -> (TestApp, Backend, TempDir) {
    embedded_app_with(|_| {}).await
}

async fn embedded_app_with(configure: impl FnOnce(&mut Settings)) -> (TestApp, Backend, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    let sink = WebhookSink::start().await;
    let mut settings = base_settings(dir.path(), db::sqlite(&dir));
    settings.webhook_url = Some(sink.url.clone().into());
    configure(&mut settings);
    let app = TestApp::spawn(&settings).await;
    (app, Backend::Embedded { sink, objects: settings.storage_dir() }, dir)
}

/// An upload and what must come of it.
struct Case {
    file: &'static str,
    content_type: &'static str,
    multipart: bool,
    format: &'static str,
    size: (u32, u32),
    /// Expected (width, height) per preset; originals are never upscaled.
    variants: [(&'static str, (u32, u32)); 3],
    has_alpha: bool,
}

const GOOD: [Case; 3] = [
    Case {
        file: "orient3.jpg",
        content_type: "image/jpeg",
        multipart: false,
        format: "jpeg",
        size: (1800, 1200),
        variants: [("large", (1800, 1200)), ("medium", (1024, 683)), ("thumb", (256, 171))],
        has_alpha: false,
    },
    Case {
        file: "astronaut.png",
        content_type: "image/png",
        multipart: true,
        format: "png",
        size: (512, 512),
        variants: [("large", (512, 512)), ("medium", (512, 512)), ("thumb", (256, 256))],
        has_alpha: false,
    },
    Case {
        file: "dice_rgba.png",
        content_type: "image/png",
        multipart: false,
        format: "png",
        size: (200, 150),
        variants: [("large", (200, 150)), ("medium", (200, 150)), ("thumb", (200, 150))],
        has_alpha: true,
    },
];

async fn upload(app: &TestApp, file: &str, content_type: &str, multipart: bool) -> Uuid {
    let response = if multipart {
        app.upload_multipart(file, content_type).await
    } else {
        app.upload_raw(file, content_type).await
    };
    app.accepted(response).await
}

async fn uploads_become_variants_rows_and_one_event_each(app: TestApp, mut backend: Backend) {
    // Arrange
    let mut jobs = BTreeMap::new();
    for case in &GOOD {
        jobs.insert(upload(&app, case.file, case.content_type, case.multipart).await, case);
    }

    // Act
    let handled = app.worker.drain().await.expect("worker drains the queue");

    // Assert
    assert_eq!(handled, 3);
    for (job_id, case) in &jobs {
        let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
        assert_eq!(job["status"], "succeeded", "{}: {job}", case.file);
        assert_eq!(job["attempts"], 1);
        assert!(job["error"].is_null());

        let image = app.get_json(job["links"]["image"].as_str().expect("image link"), 200).await;
        assert_eq!(image["format"], case.format, "{}", case.file);
        assert_eq!(
            (image["width"].as_u64(), image["height"].as_u64()),
            (Some(case.size.0.into()), Some(case.size.1.into()))
        );
        let variants = image["variants"].as_array().expect("variants");
        assert_eq!(variants.len(), 3, "{}: {image}", case.file);
        // Presets that come out the same size are the same bytes, stored
        // once: the rows share the object, and nothing else is stored.
        let sizes: BTreeSet<(u32, u32)> = case.variants.iter().map(|(_, size)| *size).collect();
        let shared: BTreeSet<String> = variants.iter().map(|v| v["key"].as_str().expect("key").to_owned()).collect();
        assert_eq!(shared.len(), sizes.len(), "{}: one object per distinct output: {image}", case.file);
        let image_id = image["id"].as_str().expect("image id");
        let stored = backend.keys_under(&format!("{}{image_id}/", keys::VARIANTS_PREFIX)).await;
        assert_eq!(stored, shared, "{}: the objects stored are exactly those the rows name", case.file);
        for (preset, (width, height)) in case.variants {
            let row = variants.iter().find(|v| v["preset"] == preset).expect("variant row for preset");
            assert_eq!(
                (row["width"].as_u64(), row["height"].as_u64()),
                (Some(width.into()), Some(height.into())),
                "{} {preset}",
                case.file
            );
            assert_eq!(row["format"], "webp");
            let key = row["key"].as_str().expect("key");
            let bytes = backend.read_object(key, "image/webp").await;
            assert_eq!(row["bytes"].as_u64(), Some(bytes.len() as u64));
            assert_eq!(image::guess_format(&bytes).expect("known format"), image::ImageFormat::WebP);
            let decoded = image::load_from_memory(&bytes).expect("variant decodes");
            assert_eq!((decoded.width(), decoded.height()), (width, height), "{} {preset}", case.file);
            assert_eq!(decoded.color().has_alpha(), case.has_alpha, "{} {preset} alpha", case.file);
        }
    }

    // The variant URL redirects to a short-lived S3 URL, or serves the file from disk.
    let (job_id, case) = jobs.iter().next().expect("a job");
    let image_id = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await["image_id"]
        .as_str()
        .map(str::to_owned)
        .expect("image id");
    // `app.http` follows no redirects.
    let response = app
        .http
        .get(format!("{}/v1/images/{image_id}/variants/thumb", app.address))
        .send()
        .await
        .expect("variant request");
    let bytes = match (&backend, response.status().as_u16()) {
        (Backend::Aws(_), 302) => {
            let location = response.headers()["location"].to_str().expect("location").to_owned();
            assert!(location.contains("X-Amz-Expires=300"), "{location}");
            reqwest::get(location).await.expect("presigned get").bytes().await.expect("body")
        }
        (Backend::Embedded { .. }, 200) => {
            assert_eq!(response.headers()["content-type"], "image/webp");
            response.bytes().await.expect("body")
        }
        (_, status) => panic!("unexpected variant answer {status}"),
    };
    let thumb = image::load_from_memory(&bytes).expect("thumb decodes");
    let (_, expected) = case.variants[2];
    assert_eq!((thumb.width(), thumb.height()), expected);

    let events = backend.take_events(3).await;
    let announced: BTreeSet<Uuid> = events.iter().filter_map(|e| e.job_id).collect();
    assert_eq!(announced, jobs.keys().copied().collect(), "one event per job");
    for event in &events {
        assert_eq!(event.event, EventKind::ImageProcessed);
        assert_eq!(event.status, "succeeded");
        assert_eq!(event.variants.len(), 3);
        assert!(event.error.is_none());
    }
    assert_eq!(backend.messages_left(&app).await, 0, "every message acknowledged");
}

async fn corrupt_uploads_fail_once_with_a_reason(app: TestApp, mut backend: Backend) {
    // Arrange
    let not_an_image = app.ingest("notimage.jpg").await;
    let truncated = upload(&app, "truncated_prog.jpg", "image/jpeg", true).await;

    // Act
    let handled = app.worker.drain().await.expect("worker drains the queue");

    // Assert
    assert_eq!(handled, 2, "each message is handled once, not retried");
    for (job_id, code) in [(not_an_image, "unsupported-format"), (truncated, "truncated-image")] {
        let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
        assert_eq!(job["status"], "failed", "{job}");
        assert_eq!(job["attempts"], 1);
        assert_eq!(job["error"]["code"], code);
        assert!(!job["error"]["message"].as_str().unwrap_or_default().is_empty());
        let image = app.get_json(job["links"]["image"].as_str().expect("image link"), 200).await;
        assert_eq!(image["variants"].as_array().map(Vec::len), Some(0));
    }

    let events = backend.take_events(2).await;
    let codes: BTreeMap<Uuid, String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.event, EventKind::ImageFailed);
            assert_eq!(e.status, "failed");
            (e.job_id.unwrap_or_default(), e.error.as_ref().map(|err| err.code.clone()).unwrap_or_default())
        })
        .collect();
    assert_eq!(codes.get(&not_an_image).map(String::as_str), Some("unsupported-format"));
    assert_eq!(codes.get(&truncated).map(String::as_str), Some("truncated-image"));
    assert_eq!(backend.messages_left(&app).await, 0, "poison uploads do not cycle or reach the DLQ");
}

/// Presets that ask for AVIF beside WebP: the shipped build encodes it.
const AVIF_AND_WEBP: &str = r#"[{"name":"medium","max_edge":1024,"format":"avif","quality":60},
    {"name":"thumb","max_edge":256,"format":"webp","quality":60}]"#;

/// The size an AVIF file's image declares (its `ispe` property), read
/// after checking that the file is AVIF at all.
fn avif_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[4..12], b"ftypavif", "an AVIF file");
    let at = bytes.windows(4).position(|w| w == b"ispe").expect("an ispe property") + 8;
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("four bytes"));
    (word(at), word(at + 4))
}

async fn avif_presets_become_avif_variants(app: TestApp, mut backend: Backend) {
    // Arrange
    let job_id = upload(&app, "orient3.jpg", "image/jpeg", false).await;

    // Act
    let handled = app.worker.drain().await.expect("worker drains the queue");

    // Assert
    assert_eq!(handled, 1);
    let job = app.get_json(&format!("/v1/jobs/{job_id}"), 200).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let image = app.get_json(job["links"]["image"].as_str().expect("image link"), 200).await;
    let variant = |preset: &str| {
        let variants = image["variants"].as_array().expect("variants");
        variants.iter().find(|v| v["preset"] == preset).cloned().unwrap_or_else(|| panic!("{preset}: {image}"))
    };
    let avif = variant("medium");
    assert_eq!((avif["format"].as_str(), avif["mime_type"].as_str()), (Some("avif"), Some("image/avif")), "{avif}");
    assert_eq!((avif["width"].as_u64(), avif["height"].as_u64()), (Some(1024), Some(683)), "{avif}");
    let key = avif["key"].as_str().expect("key");
    assert!(key.ends_with(".avif"), "{key}");
    let bytes = backend.read_object(key, "image/avif").await;
    assert_eq!(avif["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(avif_size(&bytes), (1024, 683));
    assert_eq!(variant("thumb")["mime_type"], "image/webp");
    // A page can offer both: one srcset per media type.
    let srcset = image["srcset"].as_object().expect("srcset");
    assert_eq!(srcset.keys().collect::<Vec<_>>(), ["image/avif", "image/webp"], "{image}");
    assert!(srcset["image/avif"].as_str().is_some_and(|s| s.contains(".avif 1024w")), "{srcset:?}");

    let event = backend.take_events(1).await.remove(0);
    assert_eq!((event.status.as_str(), event.variants.len()), ("succeeded", 2), "{event:?}");
    assert_eq!(backend.messages_left(&app).await, 0, "every message acknowledged");
}

#[tokio::test]
async fn aws_uploads_become_variants_rows_and_one_event_each() {
    let (app, backend, _dir) = aws_app().await;
    uploads_become_variants_rows_and_one_event_each(app, backend).await;
}

#[tokio::test]
async fn aws_corrupt_uploads_fail_once_with_a_reason() {
    let (app, backend, _dir) = aws_app().await;
    corrupt_uploads_fail_once_with_a_reason(app, backend).await;
}

#[tokio::test]
async fn embedded_uploads_become_variants_rows_and_one_event_each() {
    let (app, backend, _dir) = embedded_app().await;
    uploads_become_variants_rows_and_one_event_each(app, backend).await;
}

#[tokio::test]
async fn embedded_corrupt_uploads_fail_once_with_a_reason() {
    let (app, backend, _dir) = embedded_app().await;
    corrupt_uploads_fail_once_with_a_reason(app, backend).await;
}

#[tokio::test]
async fn aws_avif_presets_become_avif_variants() {
    let (app, backend, _dir) = aws_app_with(|s| s.presets = Some(AVIF_AND_WEBP.into())).await;
    avif_presets_become_avif_variants(app, backend).await;
}

#[tokio::test]
async fn embedded_avif_presets_become_avif_variants() {
    let (app, backend, _dir) = embedded_app_with(|s| s.presets = Some(AVIF_AND_WEBP.into())).await;
    avif_presets_become_avif_variants(app, backend).await;
}
