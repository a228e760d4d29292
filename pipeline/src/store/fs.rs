//! [`BlobStore`] on a local directory.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{BlobStore, ByteStream, ObjectMeta, PresignedRequest, StoreError};

/// Objects as files under a root directory; keys map to relative paths.
/// Writes go to a temporary file that is renamed into place, so a reader
/// never sees half an object.
#[derive(Clone, Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// A store rooted at `root`, which is created on first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file that holds `key`.
    ///
    /// # Errors
    /// When the key is empty or would escape the root.
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        let safe = !key.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(StoreError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }

    async fn temp_file_for(&self, path: &Path) -> Result<(PathBuf, tokio::fs::File), StoreError> {
        let dir = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
        let temp = dir.join(format!(".tmp-{}", Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&temp).await.map_err(io_error)?;
        // tokio copies each write into a buffer of its own for the blocking
        // pool, by default up to 2 MiB; a streamed body needs no more than a
        // chunk's worth of it in flight.
        file.set_max_buf_size(WRITE_BUFFER_BYTES);
        Ok((temp, file))
    }
}

/// The most of a streamed body that waits in tokio's buffer for the disk.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Bodies up to this size are gathered in memory and written in one go. A
/// larger body's first bytes wait in this buffer too, so it is no bigger
/// than the write buffer that takes over from it.
const SMALL_BODY: usize = WRITE_BUFFER_BYTES;

fn io_error(err: std::io::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

async fn finish(mut file: tokio::fs::File, temp: &Path, path: &Path) -> Result<(), StoreError> {
    // tokio's `write_all` returns once the last chunk is handed to a
    // blocking write, and `sync_all` waits for that write but drops its
    // error: a disk that filled during it would leave a short file to be
    // renamed into place. `flush` reports it.
    file.flush().await.map_err(io_error)?;
    file.sync_all().await.map_err(io_error)?;
    drop(file);
    tokio::fs::rename(temp, path).await.map_err(io_error)
}

/// Writes `body` to a temporary file beside `path`, syncs it and renames it
/// into place; on failure the temporary file is removed.
fn write_atomically(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| StoreError::InvalidKey(path.display().to_string()))?;
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let temp = dir.join(format!(".tmp-{}", Uuid::new_v4()));
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(body)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io_error)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, body: Bytes, _meta: &ObjectMeta) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        // One trip to the blocking pool for the whole write, not one per
        // step: a tiny variant's put was five thread hand-offs.
        tokio::task::spawn_blocking(move || write_atomically(&path, &body))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream<'_>,
        length: Option<u64>,
        meta: &ObjectMeta,
    ) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        // A small body is gathered and written in one trip to the blocking
        // pool, as `put` does; only a larger one streams through a file
        // handle, whose every step is a trip of its own.
        let mut head = Vec::new();
        let mut rest = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if head.len() + chunk.len() > SMALL_BODY {
                rest = Some(chunk);
                break;
            }
            head.extend_from_slice(&chunk);
        }
        let Some(next) = rest else {
            super::check_length(head.len() as u64, length)?;
            return self.put(key, Bytes::from(head), meta).await;
        };
        let (temp, mut file) = self.temp_file_for(&path).await?;
        let written = async {
            let mut received = (head.len() + next.len()) as u64;
            file.write_all(&head).await.map_err(io_error)?;
            file.write_all(&next).await.map_err(io_error)?;
            drop(head);
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                received += chunk.len() as u64;
                file.write_all(&chunk).await.map_err(io_error)?;
            }
            super::check_length(received, length)?;
            finish(file, &temp, &path).await
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let source = self.path_of(from)?;
        let target = self.path_of(to)?;
        let (temp, file) = self.temp_file_for(&target).await?;
        drop(file);
        let copied = match tokio::fs::copy(&source, &temp).await {
            Ok(_) => tokio::fs::rename(&temp, &target).await.map_err(io_error),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(from.to_owned())),
            Err(e) => Err(io_error(e)),
        };
        if copied.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        copied
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn probe(&self) -> Result<(), StoreError> {
        // The root is made on the first write; before that, its parent must be there.
        let path = if self.root.exists() { self.root.clone() } else { self.root.parent().unwrap_or(&self.root).into() };
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            Ok(_) => Err(StoreError::Unavailable(format!("{} is not a directory", path.display()))),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn delete_tree(&self, key: &str) -> Result<u64, StoreError> {
        let path = self.path_of(key.trim_end_matches('/'))?;
        let metadata = match tokio::fs::symlink_metadata(&path).await {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(e)),
        };
        if !metadata.is_dir() {
            return match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(1),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(io_error(e)),
            };
        }
        let mut deleted = 0;
        let mut pending = vec![path.clone()];
        while let Some(dir) = pending.pop() {
            let mut entries = tokio::fs::read_dir(&dir).await.map_err(io_error)?;
            while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
                if entry.file_type().await.map_err(io_error)?.is_dir() {
                    pending.push(entry.path());
                } else {
                    deleted += 1;
                }
            }
        }
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(deleted),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(deleted),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn presigned_get(&self, _key: &str, _expires_in: std::time::Duration) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn presigned_put(
        &self,
        _key: &str,
        _content_type: &str,
        _content_length: u64,
        _expires_in: std::time::Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        Ok(None)
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(key.to_owned())),
            Err(e) => Err(io_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tree_is_deleted_with_everything_under_it_and_nothing_beside_it() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let store = FsBlobStore::new(dir.path());
        let meta = ObjectMeta { content_type: "image/webp".into(), cache_control: None };
        for key in ["variants/a/thumb-1.webp", "variants/a/large-1.webp", "variants/ab/thumb-1.webp", "originals/a"] {
            store.put(key, Bytes::from_static(b"x"), &meta).await.expect("put");
        }

        assert_eq!(store.delete_tree("variants/a/").await.expect("delete"), 2);
        assert_eq!(store.delete_tree("originals/a").await.expect("delete"), 1);
        assert_eq!(store.delete_tree("variants/a/").await.expect("again"), 0, "a second delete finds nothing");
        store.delete("variants/ab/thumb-1.webp").await.expect("delete one");
        store.delete("variants/ab/thumb-1.webp").await.expect("deleting a missing object is no error");
        store.put("variants/ab/thumb-1.webp", Bytes::from_static(b"x"), &meta).await.expect("put");
        assert!(store.get("variants/ab/thumb-1.webp").await.is_ok(), "a sibling with the same prefix stays");
        assert!(matches!(store.delete_tree("../x").await, Err(StoreError::InvalidKey(_))));
    }

    #[test]
    fn keys_cannot_escape_the_root() {
        let store = FsBlobStore::new("/srv/objects");
        assert!(store.path_of("variants/a/b.webp").is_ok());
        for bad in ["", "../etc/passwd", "/etc/passwd", "a/../../b", "./a"] {
            assert!(matches!(store.path_of(bad), Err(StoreError::InvalidKey(_))), "{bad}");
        }
    }
}
